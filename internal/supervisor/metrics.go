package supervisor

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/tend-pm/tend/internal/api"
)

// App metrics: an instance reports its own numbers with a line
//
//	METRIC=<name> <value> [gauge|counter]
//
// in an sd_notify message (a datagram on NOTIFY_SOCKET, or the body of
// POST /v1/notify), any number of lines per message. A gauge (the
// default) is set to the value; a counter is increased by it, so a
// sender needs no state of its own and a lost datagram loses only its
// increment. They are shown by `tend monit` and served on /metrics
// (docs/monitoring.md). A process's metrics start afresh with it.

// Bounds on what an instance may report, so a runaway sender cannot grow
// the daemon's memory.
const (
	maxMetrics       = 64
	maxMetricNameLen = 64
)

type appMetric struct {
	typ   string
	value float64
}

// metricLocked applies one METRIC= value to in.
func (in *instance) metricLocked(v string) error {
	f := strings.Fields(v)
	if len(f) < 2 || len(f) > 3 {
		return fmt.Errorf("METRIC=%s: want METRIC=<name> <value> [gauge|counter]: %w", v, api.ErrInvalid)
	}
	name := f[0]
	if !validMetricName(name) {
		return fmt.Errorf("METRIC=%s: the name must be letters, digits, _ or : (not first a digit), at most %d bytes: %w", v, maxMetricNameLen, api.ErrInvalid)
	}
	val, err := strconv.ParseFloat(f[1], 64)
	if err != nil || math.IsNaN(val) || math.IsInf(val, 0) {
		return fmt.Errorf("METRIC=%s: %q is not a finite number: %w", v, f[1], api.ErrInvalid)
	}
	typ := api.MetricGauge
	if len(f) == 3 {
		typ = f[2]
	}
	if typ != api.MetricGauge && typ != api.MetricCounter {
		return fmt.Errorf("METRIC=%s: the type must be gauge or counter, got %q: %w", v, typ, api.ErrInvalid)
	}
	if typ == api.MetricCounter && val < 0 {
		return fmt.Errorf("METRIC=%s: a counter only goes up; send what to add: %w", v, api.ErrInvalid)
	}
	m := in.metrics[name]
	switch {
	case m == nil:
		if len(in.metrics) >= maxMetrics {
			return fmt.Errorf("METRIC=%s: an instance may report at most %d metrics: %w", v, maxMetrics, api.ErrInvalid)
		}
		if in.metrics == nil {
			in.metrics = map[string]*appMetric{}
		}
		in.metrics[name] = &appMetric{typ: typ, value: val}
	case m.typ != typ:
		return fmt.Errorf("METRIC=%s: %s was reported as a %s: %w", v, name, m.typ, api.ErrInvalid)
	case typ == api.MetricCounter:
		m.value += val
	default:
		m.value = val
	}
	return nil
}

func validMetricName(name string) bool {
	if name == "" || len(name) > maxMetricNameLen {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_' || c == ':' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
