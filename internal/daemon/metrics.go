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
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/promtext"
	"github.com/tend-pm/tend/internal/rawnet"
	"github.com/tend-pm/tend/internal/state"
	"github.com/tend-pm/tend/internal/supervisor"
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
	return exposition(m, d.sup.SamplerStats(), d.started)
}

// familyWriter is a promtext.Writer that remembers the families written.
type familyWriter struct {
	promtext.Writer
	written map[string]bool
}

func (w *familyWriter) Family(name, typ, help string) {
	w.written[name] = true
	w.Writer.Family(name, typ, help)
}

// exposition writes m, the sampler's figures st and the daemon's start.
func exposition(m api.Monitor, st supervisor.SamplerStats, started time.Time) []byte {
	w := familyWriter{written: map[string]bool{}}
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
	family("tend_instance_errored", promtext.Gauge, "1 if the instance gave up (errored: too many unstable runs, or a process that could not start or exited before it was ready).",
		func(x inst) (float64, bool) { return b2f(x.in.Status == api.StatusErrored), true })
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
	w.Sample("tend_daemon_start_time_seconds", float64(started.UnixMilli())/1000)
	w.Family("tend_build_info", promtext.Gauge, "Always 1; the labels say which tend the daemon is and the Go it was built with.")
	w.Sample("tend_build_info", 1, "version", api.Version(), "goversion", runtime.Version())
	// Last, so that every family of tend's own is known.
	appMetrics(&w, reported(m.Apps))
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

// appMetrics writes the numbers instances reported, one family per
// name served, tend_app_<name> (a counter's with _total). The
// supervisor refuses what would be served under the name of another
// metric of the same instance, or of a family tend writes itself
// (supervisor.ReservedAppMetric); here a name that still meets one of
// tend's families is left out, as is a second sample for the same
// instance, since one such line makes Prometheus drop the whole scrape.
// A name served with two types by different apps keeps the type of the
// first app in id order; the others are left out, as the format allows
// one type per family.
func appMetrics(w *familyWriter, ms []appInst) {
	type served struct {
		name string
		appInst
	}
	all := make([]served, len(ms))
	for i, x := range ms {
		all[i] = served{"tend_app_" + supervisor.ExposedMetricName(x.m.Name, x.m.Type), x}
	}
	slices.SortStableFunc(all, func(x, y served) int { return cmp.Compare(x.name, y.name) })
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].name == all[i].name {
			j++
		}
		name, typ := all[i].name, all[i].m.Type
		group := all[i:j]
		i = j
		if w.written[name] {
			continue
		}
		names := map[string]bool{}
		for _, x := range group {
			if x.m.Type == typ {
				names[x.m.Name] = true
			}
		}
		help := "Reported by the app (METRIC=" + strings.Join(slices.Sorted(maps.Keys(names)), ", METRIC=") + ")."
		w.Family(name, typ, help)
		type key struct {
			app  string
			slot int
		}
		seen := map[key]bool{}
		for _, x := range group {
			k := key{x.app, x.slot}
			if x.m.Type != typ || seen[k] {
				continue
			}
			seen[k] = true
			w.Sample(name, x.m.Value, "app", x.app, "instance", strconv.Itoa(x.slot))
		}
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

// ParseMetricsAddr reads a metrics address (--metrics-addr,
// TEND_METRICS_ADDR or metrics.addr in config.yaml): "9464" (on
// 127.0.0.1), "127.0.0.1:9464", "[::1]:9464", or ":9464" for every
// interface (then only the token keeps others out). Its errors name the
// value, not where it came from, which the caller knows.
func ParseMetricsAddr(s string) (rawnet.Addr, error) {
	given := s
	if _, err := strconv.Atoi(s); err == nil {
		s = "127.0.0.1:" + s
	}
	a, err := rawnet.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("metrics address %q: %w: %w", given, err, api.ErrInvalid)
	}
	if a.Unix() {
		return a, fmt.Errorf("metrics address %q: give a TCP address (the control socket already serves /metrics): %w", given, api.ErrInvalid)
	}
	return a, nil
}

// tcpListener makes a raw listening socket a uhttp.Listener.
type tcpListener struct{ f *os.File }

func (l tcpListener) Accept() (*os.File, error) { return rawnet.AcceptPolled(l.f) }
func (l tcpListener) Close() error              { return l.f.Close() }

// The metrics listener's bounds. Anyone who can reach the port may open
// connections before the token is checked, each holding a descriptor and
// a goroutine until its request is read: at most metricsMaxConns at once
// (a scraper needs one; more wait in the kernel's queue), each for at
// most metricsHeaderTimeout (a scraper sends its request at once).
const (
	metricsMaxConns      = 16
	metricsHeaderTimeout = 2 * time.Second
)

// metricsListener is the bound TCP listener of /metrics, with its token.
type metricsListener struct {
	f    *os.File
	addr rawnet.Addr
	tok  string
}

// listenMetrics binds addr and reads (or creates) the token.
func listenMetrics(home string, addr rawnet.Addr) (*metricsListener, error) {
	tok, err := metricsToken(home)
	if err != nil {
		return nil, err
	}
	f, err := rawnet.Listen(addr, rawnet.ListenOptions{NonBlocking: true})
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	return &metricsListener{f: f, addr: addr, tok: tok}, nil
}

// Close closes the socket (Serve closes it too when its ctx ends).
func (l *metricsListener) Close() { _ = l.f.Close() }

// unauthorized is the body of a 401. It is fixed: a client without the
// token may be anyone who reaches the port, and learns no path from it.
const unauthorized = "send the daemon's metrics token (the file metrics.token in its TEND_HOME) as Authorization: Bearer <token>\n"

// metricsHandler serves GET /metrics from metrics to requests that carry
// the token: `Authorization: Bearer <token>`. Another method on /metrics
// gets 405 with Allow: GET, as on the control socket; another path 404.
func metricsHandler(tok string, metrics func() []byte) uhttp.Handler {
	want := []byte("Bearer " + tok)
	return func(w *uhttp.Response, r *uhttp.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tend"`)
			w.WriteHeader(401)
			_, _ = w.Write([]byte(unauthorized))
			return
		}
		if r.Path != api.PathMetrics {
			w.WriteHeader(404)
			_, _ = w.Write([]byte("only GET /metrics is served here\n"))
			return
		}
		if r.Method != "GET" {
			w.Header().Set("Allow", "GET")
			w.WriteHeader(405)
			_, _ = w.Write([]byte("/metrics answers GET only\n"))
			return
		}
		w.Header().Set("Content-Type", promtext.ContentType)
		_, _ = w.Write(metrics())
	}
}

// metricsServer is the uhttp server of the metrics listener.
func metricsServer(h uhttp.Handler, log *slog.Logger, now func() time.Time) *uhttp.Server {
	warns := newRateLimit(time.Minute, now)
	return &uhttp.Server{Handler: h, MaxBody: 1 << 10, HeaderTimeout: metricsHeaderTimeout, MaxConns: metricsMaxConns,
		OnError: func(err error) { log.Debug("metrics: bad request", "err", err) },
		OnAcceptError: func(err error, retry time.Duration) {
			if ok, held := warns.allow("accept"); ok {
				log.Warn("metrics listener: cannot accept; retrying", "err", err, "retry", retry, "held_back", held)
			}
		}}
}

// serveMetrics serves /metrics on l until ctx ends, and returns a
// function that waits for the end. If the listener fails for good, that
// is logged at once: the daemon goes on without it.
func (d *daemon) serveMetrics(ctx context.Context, l *metricsListener, log *slog.Logger, now func() time.Time) (wait func()) {
	srv := metricsServer(metricsHandler(l.tok, d.Metrics), log, now)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, tcpListener{l.f}); err != nil {
			log.Error("metrics listener stopped; /metrics is still served on the control socket", "addr", l.addr.String(), "err", err)
		}
	}()
	log.Info("metrics listener", "addr", l.addr.String(), "token", filepath.Join(d.home, TokenFile))
	return func() { <-done }
}

// rateLimit lets through one event a period per key, and counts the
// ones it held back in between: for warnings that a sender can repeat
// as often as it likes.
type rateLimit struct {
	every time.Duration
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*rateEntry
}

type rateEntry struct {
	last time.Time
	held int
}

func newRateLimit(every time.Duration, now func() time.Time) *rateLimit {
	return &rateLimit{every: every, now: now, keys: map[string]*rateEntry{}}
}

// allow reports whether an event for key may go out now, and how many
// were held back since the last one that did.
func (r *rateLimit) allow(key string) (ok bool, held int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	e := r.keys[key]
	if e != nil && now.Sub(e.last) < r.every {
		e.held++
		return false, 0
	}
	if e == nil {
		if len(r.keys) >= 1024 { // keys of deleted apps, pids: forget the quiet ones
			for k, x := range r.keys {
				if now.Sub(x.last) >= r.every {
					delete(r.keys, k)
				}
			}
		}
		e = &rateEntry{}
		r.keys[key] = e
	}
	held = e.held
	e.last, e.held = now, 0
	return true, held
}
