package daemon

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/promtext"
	"github.com/tend-pm/tend/internal/rawnet"
	"github.com/tend-pm/tend/internal/state"
	"github.com/tend-pm/tend/internal/uhttp"
)

// TokenFile holds the bearer token a scraper must send to the metrics
// listener (0600 in TEND_HOME).
const TokenFile = "metrics.token"

// Metrics returns every figure in Prometheus' text format. The names and
// labels are documented in docs/monitoring.md; a test parses them with
// Prometheus' own parser.
func (d *daemon) Metrics() []byte {
	m, _ := d.sup.Monitor("", 0)
	st := d.sup.SamplerStats()
	var w promtext.Writer
	type inst struct {
		a  *api.AppInfo
		in *api.InstanceInfo
	}
	var all []inst
	for i := range m.Apps {
		for j := range m.Apps[i].Instances {
			all = append(all, inst{&m.Apps[i], &m.Apps[i].Instances[j]})
		}
	}
	family := func(name, typ, help string, value func(inst) (float64, bool)) {
		first := true
		for _, x := range all {
			v, ok := value(x)
			if !ok {
				continue
			}
			if first {
				w.Family(name, typ, help)
				first = false
			}
			w.Sample(name, v, "app", x.a.Name, "instance", strconv.Itoa(x.in.Slot))
		}
	}
	running := func(x inst) bool { return x.in.PID > 0 }
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	family("tend_instance_up", promtext.Gauge, "1 if the instance has a running process, 0 if not.",
		func(x inst) (float64, bool) { return b2f(running(x)), true })
	family("tend_instance_ready", promtext.Gauge, "1 if the instance's process said it is ready (or passed its probe).",
		func(x inst) (float64, bool) { return b2f(running(x) && x.in.Ready), true })
	family("tend_instance_restarts_total", promtext.Counter, "Restarts of the instance since it was created (or reset).",
		func(x inst) (float64, bool) { return float64(x.in.Restarts), true })
	family("tend_instance_cpu_seconds_total", promtext.Counter, "CPU time used by the instance's whole process tree since its process started.",
		func(x inst) (float64, bool) { return x.in.CPUTime, running(x) })
	family("tend_instance_memory_rss_bytes", promtext.Gauge, "Resident memory of the instance's whole process tree.",
		func(x inst) (float64, bool) { return float64(x.in.Memory), running(x) })
	family("tend_instance_threads", promtext.Gauge, "Threads in the instance's process tree.",
		func(x inst) (float64, bool) { return float64(x.in.Threads), running(x) })
	family("tend_instance_processes", promtext.Gauge, "Processes in the instance's process tree.",
		func(x inst) (float64, bool) { return float64(x.in.Procs), running(x) })
	family("tend_instance_open_fds", promtext.Gauge, "Open file descriptors of the instance's process tree (counted every 5 samples).",
		func(x inst) (float64, bool) { return float64(x.in.FDs), running(x) && !x.in.Sampled.IsZero() })
	family("tend_instance_start_time_seconds", promtext.Gauge, "When the instance's process started, in unix seconds.",
		func(x inst) (float64, bool) {
			return float64(x.in.Started.UnixMilli()) / 1000, running(x)
		})
	family("tend_instance_connections", promtext.Gauge, "Connections open to the instance through tend's proxy (proxy mode only).",
		func(x inst) (float64, bool) {
			return float64(x.in.Conns), x.a.Balance == api.BalanceProxy && running(x)
		})

	first := true
	for _, a := range m.Apps {
		if a.MaxMemory > 0 {
			if first {
				w.Family("tend_app_memory_limit_bytes", promtext.Gauge, "max_memory_restart of the app: the limit on each instance's tree.")
				first = false
			}
			w.Sample("tend_app_memory_limit_bytes", float64(a.MaxMemory), "app", a.Name)
		}
	}
	for _, f := range []struct {
		name, help string
		v          func(api.ListenerInfo) int
	}{
		{"tend_listener_queue_length", "Connections waiting in the accept queue of a socket tend holds for an app (TCP, Linux).", func(l api.ListenerInfo) int { return l.Queue }},
		{"tend_listener_queue_limit", "The accept queue's limit (backlog) of a socket tend holds for an app.", func(l api.ListenerInfo) int { return l.Backlog }},
	} {
		first := true
		for _, a := range m.Apps {
			for _, l := range a.Listeners {
				if l.Backlog == 0 {
					continue // not a TCP socket: nothing known
				}
				if first {
					w.Family(f.name, promtext.Gauge, f.help)
					first = false
				}
				slot := "shared"
				if l.Slot >= 0 {
					slot = strconv.Itoa(l.Slot)
				}
				w.Sample(f.name, float64(f.v(l)), "app", a.Name, "listen", l.Addr, "slot", slot)
			}
		}
	}
	appMetrics(&w, reported(m.Apps))

	w.Family("tend_host_cpu_usage_ratio", promtext.Gauge, "Share of all the machine's CPUs in use over the last sample (0 to 1).")
	w.Sample("tend_host_cpu_usage_ratio", m.Host.CPU/100)
	w.Family("tend_host_cpus", promtext.Gauge, "CPUs of the machine.")
	w.Sample("tend_host_cpus", float64(m.Host.Cores))
	w.Family("tend_host_memory_total_bytes", promtext.Gauge, "The machine's memory (MemTotal).")
	w.Sample("tend_host_memory_total_bytes", float64(m.Host.MemTotal))
	w.Family("tend_host_memory_available_bytes", promtext.Gauge, "Memory the kernel can give without swapping (MemAvailable).")
	w.Sample("tend_host_memory_available_bytes", float64(m.Host.MemAvailable))
	w.Family("tend_sampler_interval_seconds", promtext.Gauge, "The sampler's cadence.")
	w.Sample("tend_sampler_interval_seconds", st.Every.Seconds())
	w.Family("tend_sampler_passes_total", promtext.Counter, "Passes of the sampler.")
	w.Sample("tend_sampler_passes_total", float64(st.Passes))
	w.Family("tend_sampler_seconds_total", promtext.Counter, "Wall time spent in sampler passes.")
	w.Sample("tend_sampler_seconds_total", st.Busy.Seconds())
	w.Family("tend_sampler_process_listings_total", promtext.Counter, "Listings of /proc (done only when a process was created since the last one).")
	w.Sample("tend_sampler_process_listings_total", float64(st.Listings))
	w.Family("tend_daemon_start_time_seconds", promtext.Gauge, "When the daemon started, in unix seconds.")
	w.Sample("tend_daemon_start_time_seconds", float64(d.started.UnixMilli())/1000)
	return []byte(w.String())
}

// appInst is one number an instance reported.
type appInst struct {
	app  string
	slot int
	m    api.AppMetric
}

// reported lists the numbers every instance reported.
func reported(apps []api.AppInfo) []appInst {
	var out []appInst
	for _, a := range apps {
		for _, in := range a.Instances {
			for _, m := range in.Metrics {
				out = append(out, appInst{a.Name, in.Slot, m})
			}
		}
	}
	return out
}

// appMetrics writes the numbers instances reported, one family per name
// as tend_app_<name>. A name reported with two types by different apps
// keeps the type of the first app in id order; the others are left out,
// as the format allows one type per family.
func appMetrics(w *promtext.Writer, ms []appInst) {
	slices.SortStableFunc(ms, func(x, y appInst) int { return cmp.Compare(x.m.Name, y.m.Name) })
	for i := 0; i < len(ms); {
		j := i
		for j < len(ms) && ms[j].m.Name == ms[i].m.Name {
			j++
		}
		name := "tend_app_" + ms[i].m.Name
		typ := ms[i].m.Type
		help := "Reported by the app (METRIC=" + ms[i].m.Name + ")."
		if typ == api.MetricCounter && !strings.HasSuffix(name, "_total") {
			name += "_total"
		}
		w.Family(name, typ, help)
		for _, x := range ms[i:j] {
			if x.m.Type == typ {
				w.Sample(name, x.m.Value, "app", x.app, "instance", strconv.Itoa(x.slot))
			}
		}
		i = j
	}
}

// metricsToken returns the bearer token of the metrics listener, creating
// it (0600) on first use.
func metricsToken(home string) (string, error) {
	path := filepath.Join(home, TokenFile)
	if b, err := os.ReadFile(path); err == nil {
		if tok := strings.TrimSpace(string(b)); len(tok) >= 16 {
			return tok, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("metrics token: %w", err)
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("metrics token: %w", err)
	}
	tok := hex.EncodeToString(b[:])
	if err := state.WriteFile(path, []byte(tok+"\n")); err != nil {
		return "", fmt.Errorf("metrics token: %w", err)
	}
	return tok, nil
}

// ParseMetricsAddr reads the --metrics-addr value: "9464" (on
// 127.0.0.1), "127.0.0.1:9464", "[::1]:9464", or ":9464" for every
// interface (then only the token keeps others out).
func ParseMetricsAddr(s string) (rawnet.Addr, error) {
	if _, err := strconv.Atoi(s); err == nil {
		s = "127.0.0.1:" + s
	}
	a, err := rawnet.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("--metrics-addr: %w: %w", err, api.ErrInvalid)
	}
	if a.Unix() {
		return a, fmt.Errorf("--metrics-addr %q: give a TCP address (the control socket already serves /metrics): %w", s, api.ErrInvalid)
	}
	return a, nil
}

// tcpListener makes a raw listening socket a uhttp.Listener.
type tcpListener struct{ f *os.File }

func (l tcpListener) Accept() (*os.File, error) { return rawnet.AcceptPolled(l.f) }
func (l tcpListener) Close() error              { return l.f.Close() }

// serveMetrics serves GET /metrics on addr (TCP) until ctx ends, to
// requests that carry the token: `Authorization: Bearer <token>`.
func (d *daemon) serveMetrics(ctx context.Context, addr rawnet.Addr, log *slog.Logger) (func() error, error) {
	tok, err := metricsToken(d.home)
	if err != nil {
		return nil, err
	}
	f, err := rawnet.Listen(addr, rawnet.ListenOptions{NonBlocking: true})
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	want := []byte("Bearer " + tok)
	h := func(w *uhttp.Response, r *uhttp.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tend"`)
			w.WriteHeader(401)
			_, _ = w.Write([]byte("send the token of " + filepath.Join(d.home, TokenFile) + " as Authorization: Bearer <token>\n"))
			return
		}
		if r.Method != "GET" || r.Path != api.PathMetrics {
			w.WriteHeader(404)
			_, _ = w.Write([]byte("only GET /metrics is served here\n"))
			return
		}
		w.Header().Set("Content-Type", promtext.ContentType)
		_, _ = w.Write(d.Metrics())
	}
	srv := &uhttp.Server{Handler: h, MaxBody: 1 << 10, HeaderTimeout: 10 * time.Second,
		OnError: func(err error) { log.Debug("metrics: bad request", "err", err) }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, tcpListener{f}) }()
	log.Info("metrics listener", "addr", addr.String(), "token", filepath.Join(d.home, TokenFile))
	return func() error { return <-done }, nil
}
