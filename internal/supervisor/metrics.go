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

// MetricError is a METRIC= line the supervisor refused, with the
// instance that sent it, so the daemon can tell the app's owner (rate
// limited) why its numbers do not show. It wraps api.ErrInvalid.
type MetricError struct {
	App  string
	Slot int
	err  error
}

func (e *MetricError) Error() string { return e.err.Error() }
func (e *MetricError) Unwrap() error { return e.err }

// ExposedMetricName is the name an app metric has on /metrics after
// tend's prefix tend_app_: a counter's gets _total if it lacks it.
func ExposedMetricName(name, typ string) string {
	if typ == api.MetricCounter && !strings.HasSuffix(name, "_total") {
		return name + "_total"
	}
	return name
}

// ReservedAppMetric reports whether tend_app_<exposed> is one of tend's
// own families on /metrics, which an app may not report: Prometheus
// refuses a scrape that holds a family twice. Keep it in step with the
// daemon's Metrics (a test there checks it).
func ReservedAppMetric(exposed string) bool {
	switch exposed {
	case "memory_limit_bytes":
		return true
	}
	return false
}

// metricLocked applies one METRIC= value to in.
func (in *instance) metricLocked(v string) error {
	if err := in.applyMetricLocked(v); err != nil {
		me := &MetricError{Slot: in.slot, err: err}
		if in.app != nil {
			me.App = in.app.spec.Name
		}
		return me
	}
	return nil
}

func (in *instance) applyMetricLocked(v string) error {
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
	return in.setMetricLocked("METRIC="+v, name, typ, val)
}

// setMetricLocked records the value of one checked metric; what names
// where it came from in errors ("METRIC=<line>", "@pm2/io <name>").
func (in *instance) setMetricLocked(what, name, typ string, val float64) error {
	m := in.metrics[name]
	switch {
	case m == nil:
		if err := in.newMetricLocked(what, name, typ); err != nil {
			return err
		}
		if in.metrics == nil {
			in.metrics = map[string]*appMetric{}
		}
		in.metrics[name] = &appMetric{typ: typ, value: val}
	case m.typ != typ:
		return fmt.Errorf("%s: %s was reported as a %s: %w", what, name, m.typ, api.ErrInvalid)
	case typ == api.MetricCounter:
		m.value += val
	default:
		m.value = val
	}
	return nil
}

// newMetricLocked checks that in may add the metric name of type typ:
// within bounds, and served under a name of its own on /metrics.
func (in *instance) newMetricLocked(what, name, typ string) error {
	if len(in.metrics) >= maxMetrics {
		return fmt.Errorf("%s: an instance may report at most %d metrics: %w", what, maxMetrics, api.ErrInvalid)
	}
	exposed := ExposedMetricName(name, typ)
	if ReservedAppMetric(exposed) {
		return fmt.Errorf("%s: tend_app_%s is one of tend's own metrics; give yours another name: %w", what, exposed, api.ErrInvalid)
	}
	// A counter X is served as X_total: X and X_total cannot both be
	// reported, whichever came first.
	other := ""
	if base, ok := strings.CutSuffix(name, "_total"); ok {
		if m := in.metrics[base]; m != nil && m.typ == api.MetricCounter {
			other = base + " (a counter)"
		}
	} else if typ == api.MetricCounter && in.metrics[exposed] != nil {
		other = exposed
	}
	if other != "" {
		return fmt.Errorf("%s: this %s would be served as tend_app_%s, as %s already is; report only one of them: %w", what, typ, exposed, other, api.ErrInvalid)
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
