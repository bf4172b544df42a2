package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/client"
	"github.com/tend-pm/tend/internal/monit"
	"github.com/tend-pm/tend/internal/rawnet"
	"github.com/tend-pm/tend/internal/testproc"
)

// parseMetrics reads an exposition with Prometheus' own parser.
func parseMetrics(t *testing.T, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, b)
	}
	return fams
}

// value returns the sample of family name with the label app=app.
func value(fams map[string]*dto.MetricFamily, name, app string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			if l.GetName() == "app" && l.GetValue() == app {
				switch {
				case m.Gauge != nil:
					return m.Gauge.GetValue(), true
				case m.Counter != nil:
					return m.Counter.GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestMetrics scrapes /metrics on the control socket and on the TCP
// listener (token required), parses them with Prometheus' parser and
// checks the figures, an app's own metrics among them.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	port, err := rawnet.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	extra := []string{fmt.Sprintf("TEND_METRICS_ADDR=%d", port), "TEND_SAMPLE_INTERVAL=200ms"}
	_, errs, code := e.runEnv(extra, "start", testproc.Command()[0], "--name", "web", "--max-memory-restart", "1G", "--",
		"notify", "METRIC=queue_depth 7\nMETRIC=jobs_total 3 counter", "sleep", "forever")
	if code != 0 {
		t.Fatalf("start: %s", errs)
	}
	e.waitStatus("web", api.StatusOnline)
	cl := client.New(filepath.Join(e.home, "tend.sock"))
	var fams map[string]*dto.MetricFamily
	waitFor(t, "web's figures and its own metrics", func() bool {
		b, err := cl.Metrics(context.Background())
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		fams = parseMetrics(t, b)
		mem, _ := value(fams, "tend_instance_memory_rss_bytes", "web")
		q, _ := value(fams, "tend_app_queue_depth", "web")
		return mem > 0 && q == 7
	})
	for name, want := range map[string]float64{"tend_instance_up": 1, "tend_instance_restarts_total": 0, "tend_app_jobs_total": 3, "tend_app_memory_limit_bytes": 1 << 30} {
		if got, ok := value(fams, name, "web"); !ok || got != want {
			t.Errorf("%s{app=web} = %v (found %v); want %v", name, got, ok, want)
		}
	}
	if f := fams["tend_instance_cpu_seconds_total"]; f == nil || f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("tend_instance_cpu_seconds_total = %v; want a counter", f)
	}
	if f := fams["tend_host_memory_total_bytes"]; f == nil || f.Metric[0].Gauge.GetValue() == 0 {
		t.Errorf("tend_host_memory_total_bytes = %v; want the host's memory", f)
	}

	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	get := func(token string) (int, []byte) {
		req, _ := http.NewRequest("GET", url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := get(""); code != 401 || strings.Contains(string(b), e.home) {
		t.Errorf("GET /metrics on TCP without the token: %d %q; want 401, naming no path", code, b)
	}
	if code, _ := get("wrong"); code != 401 {
		t.Errorf("GET /metrics on TCP with a wrong token: %d; want 401", code)
	}
	tok := strings.TrimSpace(readFile(t, filepath.Join(e.home, "metrics.token")))
	code, b := get(tok)
	if code != 200 {
		t.Fatalf("GET /metrics on TCP with the token: %d %s", code, b)
	}
	if up, ok := value(parseMetrics(t, b), "tend_instance_up", "web"); !ok || up != 1 {
		t.Errorf("tend_instance_up over TCP = %v, %v; want 1", up, ok)
	}
}

// TestMetricsPortBusy: a metrics port someone else holds costs the
// daemon its TCP listener, not its apps: the command that starts it
// succeeds, the app keeps running under the same daemon through the next
// commands, /metrics answers on the control socket, and daemon.log says
// why. A METRIC= datagram that would meet one of tend's own families is
// refused with a warning there.
func TestMetricsPortBusy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	held, err := rawnet.Listen(rawnet.Addr{Host: "127.0.0.1"}, rawnet.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port, err := rawnet.LocalPort(held)
	if err != nil {
		t.Fatal(err)
	}
	extra := []string{fmt.Sprintf("TEND_METRICS_ADDR=%d", port)}
	if _, errs, code := e.runEnv(extra, "start", testproc.Command()[0], "--name", "web", "--",
		"notify", "METRIC=memory_limit_bytes 5", "notify", "METRIC=queue 2", "sleep", "forever"); code != 0 {
		t.Fatalf("start with the metrics port taken: exit %d: %s", code, errs)
	}
	first := e.waitStatus("web", api.StatusOnline).Instances[0].PID
	daemon := e.daemonPID()
	for range 2 {
		if _, errs, code := e.runEnv(extra, "ls"); code != 0 {
			t.Fatalf("ls with the metrics port taken: exit %d: %s", code, errs)
		}
	}
	if pid := e.daemonPID(); pid != daemon || !alive(daemon) {
		t.Errorf("the daemon changed from %d to %d (alive: %v); want the one daemon", daemon, pid, alive(daemon))
	}
	if pid := e.app("web").Instances[0].PID; pid != first {
		t.Errorf("web's process changed from %d to %d; want it left running", first, pid)
	}
	cl := client.New(filepath.Join(e.home, "tend.sock"))
	waitFor(t, "web's own metric on the control socket", func() bool {
		b, err := cl.Metrics(context.Background())
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		q, _ := value(parseMetrics(t, b), "tend_app_queue", "web")
		return q == 2
	})
	log := func() string { return readFile(t, filepath.Join(e.home, "daemon.log")) }
	if l := log(); !strings.Contains(l, "no metrics listener") || !strings.Contains(l, "address already in use") {
		t.Errorf("daemon.log does not say why there is no metrics listener:\n%s", l)
	}
	waitFor(t, "a warning about the refused METRIC=", func() bool {
		return strings.Contains(log(), `level=WARN msg="notify: refused" app=web`)
	})
}

// TestMonit drives `tend monit` headlessly against a real daemon: frames
// at 80×24 and at a narrow size hold the apps and fit the screen, and key
// presses act on the daemon.
func TestMonit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startApp("web", "print", "hello from web", "sleep", "forever")
	e.startApp("spare", "sleep", "forever")
	cl := client.New(filepath.Join(e.home, "tend.sock"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	for _, size := range []struct{ w, h int }{{80, 24}, {44, 14}} {
		frames := &lastFrame{}
		tm := teatest.NewTestModel(t, framed{monit.New(ctx, cl, monit.Options{Every: 100 * time.Millisecond}), frames}, teatest.WithInitialTermSize(size.w, size.h))
		waitFor(t, "monit to show the apps and web's log", func() bool {
			f := frames.get()
			return strings.Contains(f, "spare") && strings.Contains(f, "hello from web")
		})
		if err := tm.Quit(); err != nil {
			t.Fatal(err)
		}
		frame := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).View().Content
		lines := strings.Split(frame, "\n")
		if len(lines) != size.h {
			t.Errorf("%dx%d: the frame has %d lines:\n%s", size.w, size.h, len(lines), frame)
		}
		for i, l := range lines {
			if w := lipgloss.Width(l); w > size.w {
				t.Errorf("%dx%d: line %d is %d cells wide: %q", size.w, size.h, i, w, l)
			}
		}
		for _, want := range []string{"tend monit", "web", "spare", "online", "logs of web", "hello from web"} {
			if !strings.Contains(frame, want) {
				t.Errorf("%dx%d: the frame lacks %q:\n%s", size.w, size.h, want, frame)
			}
		}
	}

	// Keys: R then y restarts the selected app (web, the first); d then y
	// deletes the next one.
	// The terminal gets only what changed from one frame to the next,
	// so a text on the screen need not be whole in the output: the test
	// reads the frames themselves.
	frames := &lastFrame{}
	tm := teatest.NewTestModel(t, framed{monit.New(ctx, cl, monit.Options{Every: 100 * time.Millisecond}), frames}, teatest.WithInitialTermSize(80, 24))
	shows := func(what string) {
		t.Helper()
		waitFor(t, "monit to show "+what, func() bool { return strings.Contains(frames.get(), what) })
	}
	shows("spare")
	key := func(s string) { tm.Send(tea.KeyPressMsg{Code: []rune(s)[0], Text: s}) }
	key("R") // asks first: nothing happens until y
	shows("restart web: stop all its instances")
	if a := e.app("web"); a.Instances[0].Restarts != 0 {
		t.Fatalf("R restarted web before it was confirmed: %+v", a.Instances[0])
	}
	key("y")
	waitFor(t, "web to be restarted from monit", func() bool {
		a := e.app("web")
		return a.Instances[0].Restarts == 1 && a.Status == api.StatusOnline
	})
	key("j")
	key("d")
	// Keys are handled asynchronously: wait until monit asks, then make
	// sure it has not deleted anything meanwhile.
	shows("delete spare: stop it and remove it from the list? y/N")
	if len(e.list()) != 2 {
		t.Fatal("d deleted an app without asking")
	}
	key("y")
	waitFor(t, "spare to be deleted from monit", func() bool { return len(e.list()) == 1 })

	// The daemon goes away and another comes: monit says so, then shows
	// the new daemon's apps.
	e.ok("kill")
	shows("disconnected")
	e.startApp("back", "print", "back again", "sleep", "forever")
	shows("back again")
	key("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}

// framed is a monit model whose every frame the test can read.
type framed struct {
	tea.Model
	last *lastFrame
}

func (f framed) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m, cmd := f.Model.Update(msg)
	return framed{m, f.last}, cmd
}

func (f framed) View() tea.View {
	v := f.Model.View()
	f.last.set(v.Content)
	return v
}

// lastFrame holds the last frame drawn.
type lastFrame struct {
	mu    sync.Mutex
	frame string
}

func (l *lastFrame) set(s string) { l.mu.Lock(); l.frame = s; l.mu.Unlock() }
func (l *lastFrame) get() string  { l.mu.Lock(); defer l.mu.Unlock(); return l.frame }

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMemoryLimitReload: an app with a port that goes over
// max_memory_restart is reloaded slot by slot, so clients see no failure
// however often it happens. (Its processes are over the limit from their
// start: with min_uptime 0 none of them counts as too young to reload,
// which would hand it to the restart policy.)
func TestMemoryLimitReload(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	port := freePort(t)
	app := serveApp("fat", "fds", port, map[string]any{
		"args": []string{"hold", "200", "serve", "fds"}, "instances": 1, "max_memory_restart": "150M", "balance": "reuseport",
		"min_uptime": "0s",
	})
	if _, errs, code := e.runEnv([]string{"TEND_SAMPLE_INTERVAL=250ms"}, "start", e.writeConfig("tend.json", app)); code != 0 {
		t.Fatalf("start: %s", errs)
	}
	l := startLoad(t, port)
	var a api.AppInfo
	waitFor(t, "two reloads for memory", func() bool {
		a = e.app("fat")
		return a.Instances[0].Restarts >= 2
	})
	l.requireNoFailures(t)
	if lr := a.Instances[0].LastRestart; lr == nil || !strings.Contains(lr.Reason, "over max_memory_restart 150.0 MiB") {
		t.Errorf("last restart = %+v; want the memory reason", lr)
	}
	e.ok("delete", "fat")
	if log := readFile(t, filepath.Join(e.home, "daemon.log")); !strings.Contains(log, "action=reload") {
		t.Errorf("daemon.log has no memory-limit reload:\n%s", log)
	}
}
