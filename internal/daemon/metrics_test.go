package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/rawnet"
	"github.com/tend-pm/tend/internal/supervisor"
)

func parse(t *testing.T, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Prometheus' parser refuses the exposition: %v\n%s", err, b)
	}
	return fams
}

// samples returns family name's samples as "app/instance=value".
func samples(f *dto.MetricFamily) []string {
	var out []string
	for _, m := range f.GetMetric() {
		var app, inst string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "app":
				app = l.GetValue()
			case "instance":
				inst = l.GetValue()
			}
		}
		v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
		out = append(out, fmt.Sprintf("%s/%s=%g", app, inst, v))
	}
	return out
}

func instance(slot int, ms ...api.AppMetric) api.InstanceInfo {
	return api.InstanceInfo{Slot: slot, PID: 100 + slot, Metrics: ms}
}

// TestAppMetricNames: whatever names apps report, the exposition parses
// (Prometheus drops the whole scrape at one family written twice): a
// counter jobs and a counter jobs_total are one family, a gauge of a
// counter's name is left out, and an app's memory_limit_bytes does not
// meet tend's own tend_app_memory_limit_bytes.
func TestAppMetricNames(t *testing.T) {
	t.Parallel()
	counter := func(name string, v float64) api.AppMetric {
		return api.AppMetric{Name: name, Type: api.MetricCounter, Value: v}
	}
	gauge := func(name string, v float64) api.AppMetric {
		return api.AppMetric{Name: name, Type: api.MetricGauge, Value: v}
	}
	m := api.Monitor{Apps: []api.AppInfo{
		{Name: "a", MaxMemory: 1 << 30, Instances: []api.InstanceInfo{
			instance(0, counter("jobs", 5), gauge("memory_limit_bytes", 7), gauge("queue", 1)),
			// What the supervisor refuses, should it come anyway: the
			// second sample of the same instance is left out.
			instance(1, counter("jobs", 2), counter("jobs_total", 9)),
		}},
		{Name: "b", Instances: []api.InstanceInfo{instance(0, counter("jobs_total", 3), gauge("queue", 4))}},
		{Name: "c", Instances: []api.InstanceInfo{instance(0, gauge("jobs_total", 8), counter("queue", 1))}},
	}}
	fams := parse(t, exposition(m, supervisor.SamplerStats{}, time.Now()))
	for name, want := range map[string]struct {
		typ     dto.MetricType
		samples string
	}{
		"tend_app_jobs_total":         {dto.MetricType_COUNTER, "[a/0=5 a/1=2 b/0=3]"},
		"tend_app_queue":              {dto.MetricType_GAUGE, "[a/0=1 b/0=4]"},
		"tend_app_queue_total":        {dto.MetricType_COUNTER, "[c/0=1]"},
		"tend_app_memory_limit_bytes": {dto.MetricType_GAUGE, "[a/=1.073741824e+09]"},
	} {
		f := fams[name]
		if f == nil {
			t.Errorf("no family %s", name)
			continue
		}
		if got := fmt.Sprint(samples(f)); f.GetType() != want.typ || got != want.samples {
			t.Errorf("%s = %v %s; want %v %s", name, f.GetType(), got, want.typ, want.samples)
		}
	}
}

// TestOwnAppFamiliesReserved: every tend_app_ family tend writes itself
// is one the supervisor refuses from apps.
func TestOwnAppFamiliesReserved(t *testing.T) {
	t.Parallel()
	m := api.Monitor{Apps: []api.AppInfo{{Name: "a", MaxMemory: 1 << 20, Instances: []api.InstanceInfo{instance(0)},
		Listeners: []api.ListenerInfo{{Addr: "tcp:127.0.0.1:1", Slot: -1, Backlog: 10}}}}}
	n := 0
	for name := range parse(t, exposition(m, supervisor.SamplerStats{}, time.Now())) {
		if exposed, ok := strings.CutPrefix(name, "tend_app_"); ok {
			n++
			if !supervisor.ReservedAppMetric(exposed) {
				t.Errorf("tend writes %s, which supervisor.ReservedAppMetric lets apps report", name)
			}
		}
	}
	if n == 0 {
		t.Error("no tend_app_ family of tend's own; the test lost its subject")
	}
}

// TestErroredAndBuildInfo: an instance that gave up is told from a
// stopped one (tend_instance_up is 0 for both), and the daemon says which
// tend it is.
func TestErroredAndBuildInfo(t *testing.T) {
	t.Parallel()
	m := api.Monitor{Apps: []api.AppInfo{{Name: "a", Instances: []api.InstanceInfo{
		{Slot: 0, PID: 100, Status: api.StatusOnline},
		{Slot: 1, Status: api.StatusStopped},
		{Slot: 2, Status: api.StatusErrored},
		{Slot: 3, Status: api.StatusWaitingRestart},
	}}}}
	fams := parse(t, exposition(m, supervisor.SamplerStats{}, time.Now()))
	for name, want := range map[string]string{
		"tend_instance_up":      "[a/0=1 a/1=0 a/2=0 a/3=0]",
		"tend_instance_errored": "[a/0=0 a/1=0 a/2=1 a/3=0]",
	} {
		f := fams[name]
		if f == nil || f.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s = %v; want a gauge", name, f)
			continue
		}
		if got := fmt.Sprint(samples(f)); got != want {
			t.Errorf("%s = %s; want %s", name, got, want)
		}
	}
	f := fams["tend_build_info"]
	if f == nil || f.GetType() != dto.MetricType_GAUGE || len(f.GetMetric()) != 1 {
		t.Fatalf("tend_build_info = %v; want one gauge sample", f)
	}
	labels := map[string]string{}
	for _, l := range f.GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if v := f.GetMetric()[0].GetGauge().GetValue(); v != 1 || labels["version"] != api.Version() || labels["goversion"] != runtime.Version() {
		t.Errorf("tend_build_info = %v %v; want 1 with version %q and goversion %q", labels, v, api.Version(), runtime.Version())
	}
}

func TestParseMetricsAddrNamesNoFlag(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"/tmp/m.sock", "nonsense:x"} {
		_, err := ParseMetricsAddr(s)
		if err == nil || strings.Contains(err.Error(), "--metrics-addr") || !strings.Contains(err.Error(), fmt.Sprintf("%q", s)) {
			t.Errorf("ParseMetricsAddr(%q) = %v; want an error that names the value, not the flag (it may come from config.yaml)", s, err)
		}
	}
}

// get sends a request to the listener on port and returns the answer.
func get(t *testing.T, port int, req string) string {
	t.Helper()
	c, err := rawnet.Dial(context.Background(), rawnet.Addr{Host: "127.0.0.1", Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read the answer: %v", err)
	}
	return string(b)
}

// TestMetricsListener: the token is required and a 401 names no path;
// idle connections hold at most metricsMaxConns slots, for at most
// metricsHeaderTimeout, so a scrape waits that long at worst.
func TestMetricsListener(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	l, err := listenMetrics(home, rawnet.Addr{Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	port, err := rawnet.LocalPort(l.f)
	if err != nil {
		t.Fatal(err)
	}
	srv := metricsServer(metricsHandler(l.tok, func() []byte { return []byte("tend_up 1\n") }), slog.New(slog.DiscardHandler), time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, tcpListener{l.f}) }()
	t.Cleanup(func() { cancel(); <-done })

	for _, auth := range []string{"", "Authorization: Bearer wrong\r\n"} {
		got := get(t, port, "GET /metrics HTTP/1.1\r\n"+auth+"\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 401 ") || !strings.HasSuffix(got, "\r\n\r\n"+unauthorized) {
			t.Errorf("answer without the token: %q; want 401 and %q", got, unauthorized)
		}
		if strings.Contains(got, home) {
			t.Errorf("the 401 shows TEND_HOME to a client without the token: %q", got)
		}
	}
	ok := "GET /metrics HTTP/1.1\r\nAuthorization: Bearer " + l.tok + "\r\n\r\n"
	if got := get(t, port, ok); !strings.HasPrefix(got, "HTTP/1.1 200 ") || !strings.HasSuffix(got, "tend_up 1\n") {
		t.Errorf("answer with the token: %q", got)
	}
	post := "POST /metrics HTTP/1.1\r\nAuthorization: Bearer " + l.tok + "\r\nContent-Length: 0\r\n\r\n"
	if got := get(t, port, post); !strings.HasPrefix(got, "HTTP/1.1 405 ") || !strings.Contains(got, "\r\nAllow: GET\r\n") || strings.Contains(got, "tend_up") {
		t.Errorf("POST /metrics with the token: %q; want 405 with Allow: GET", got)
	}
	if got := get(t, port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 401 ") {
		t.Errorf("POST /metrics without the token: %q; want 401 (the token is checked first)", got)
	}
	if got := get(t, port, "GET /other HTTP/1.1\r\nAuthorization: Bearer "+l.tok+"\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 404 ") {
		t.Errorf("GET /other with the token: %q; want 404", got)
	}

	start := time.Now()
	var idle sync.WaitGroup
	for range metricsMaxConns {
		c, err := rawnet.Dial(context.Background(), rawnet.Addr{Host: "127.0.0.1", Port: port})
		if err != nil {
			t.Fatal(err)
		}
		idle.Go(func() { // sends nothing, reads until the server gives up
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, _ = io.ReadAll(c)
		})
	}
	got := get(t, port, ok)
	took := time.Since(start)
	if !strings.HasPrefix(got, "HTTP/1.1 200 ") {
		t.Errorf("a scrape behind %d idle connections: %q", metricsMaxConns, got)
	}
	if took < metricsHeaderTimeout*3/4 {
		t.Errorf("a scrape behind %d idle connections was answered in %v: they hold no slot", metricsMaxConns, took)
	}
	if took > 4*metricsHeaderTimeout {
		t.Errorf("a scrape behind %d idle connections took %v; the header timeout is %v", metricsMaxConns, took, metricsHeaderTimeout)
	}
	idle.Wait()
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	r := newRateLimit(time.Minute, func() time.Time { return now })
	step := func(d time.Duration, key string, wantOK bool, wantHeld int) {
		t.Helper()
		now = now.Add(d)
		if ok, held := r.allow(key); ok != wantOK || held != wantHeld {
			t.Errorf("allow(%q) at +%v = %v, %d; want %v, %d", key, now.Sub(time.Unix(1000, 0)), ok, held, wantOK, wantHeld)
		}
	}
	step(0, "web", true, 0)
	step(time.Second, "web", false, 0)
	step(time.Second, "api", true, 0) // per key
	step(time.Second, "web", false, 0)
	step(time.Minute, "web", true, 2)
	step(time.Second, "web", false, 0)
	step(time.Minute, "web", true, 1)
	step(2*time.Minute, "web", true, 0)
}
