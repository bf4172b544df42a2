package monit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/client"
)

// fakeDaemon stands in for the daemon: it counts the requests, keeps an
// app list that actions change (scale, delete), and answers a history of
// cpu[app] per cent for each slot of the app asked for.
type fakeDaemon struct {
	mu       sync.Mutex
	apps     []api.AppInfo
	cpu      map[string]float32
	version  string
	monitors int // Monitor calls
	pings    int
	acts     []string // "action target instances"
	host     api.HostInfo
	// down, if set, is the error of every request: the daemon is gone.
	down error
	// logs, if set, serves Logs; otherwise the stream ends at once.
	logs func(ctx context.Context, fn func(api.LogLine) error) error
}

func newFake(apps ...string) *fakeDaemon {
	f := &fakeDaemon{cpu: map[string]float32{}, version: api.Version()}
	for _, a := range apps {
		name, n := a, 1
		if i := strings.IndexByte(a, '*'); i >= 0 {
			name = a[:i]
			fmt.Sscan(a[i+1:], &n)
		}
		f.add(name, n)
	}
	return f
}

func (f *fakeDaemon) add(name string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := api.AppInfo{Name: name, Status: api.StatusOnline}
	for i := range n {
		a.Instances = append(a.Instances, api.InstanceInfo{Slot: i, Status: api.StatusOnline, PID: 100 + i})
	}
	f.apps = append(f.apps, a)
}

func (f *fakeDaemon) remove(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps = slices.DeleteFunc(f.apps, func(a api.AppInfo) bool { return a.Name == name })
}

func (f *fakeDaemon) Ping(context.Context) (api.Ping, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pings++
	if f.down != nil {
		return api.Ping{}, f.down
	}
	return api.Ping{Version: f.version}, nil
}

func (f *fakeDaemon) Monitor(_ context.Context, history string, points int) (api.Monitor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.monitors++
	if f.down != nil {
		return api.Monitor{}, f.down
	}
	m := api.Monitor{Interval: api.Duration(time.Second), Host: f.host}
	found := history == ""
	for _, a := range f.apps {
		a.Instances = slices.Clone(a.Instances)
		m.Apps = append(m.Apps, a)
		if a.Name != history {
			continue
		}
		found = true
		for i := range a.Instances {
			h := api.History{App: a.Name, Instance: i}
			for range points {
				h.CPU = append(h.CPU, f.cpu[a.Name])
				h.Memory = append(h.Memory, 1<<20)
			}
			m.History = append(m.History, h)
		}
	}
	if !found {
		return api.Monitor{}, fmt.Errorf("app %q: %w", history, api.ErrNotFound)
	}
	return m, nil
}

func (f *fakeDaemon) Act(_ context.Context, action string, req api.ActionRequest) (api.ActionResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	target := strings.Join(req.Targets, ",")
	f.acts = append(f.acts, strings.TrimSpace(action+" "+target+" "+req.Instances))
	for i := range f.apps {
		a := &f.apps[i]
		if a.Name != target {
			continue
		}
		switch {
		case action == api.ActionScale && req.Instances == "-1" && len(a.Instances) > 1:
			a.Instances = a.Instances[:len(a.Instances)-1]
		case action == api.ActionScale && req.Instances == "+1":
			a.Instances = append(a.Instances, api.InstanceInfo{Slot: len(a.Instances), Status: api.StatusOnline, PID: 200})
		case action == api.ActionDelete:
			f.apps = slices.Delete(f.apps, i, i+1)
		}
		return api.ActionResult{}, nil
	}
	return api.ActionResult{}, fmt.Errorf("app %q: %w", target, api.ErrNotFound)
}

func (f *fakeDaemon) Logs(ctx context.Context, _ client.LogQuery, fn func(api.LogLine) error) error {
	f.mu.Lock()
	logs := f.logs
	f.mu.Unlock()
	if logs != nil {
		return logs(ctx, fn)
	}
	return nil
}

func (f *fakeDaemon) counts() (monitors, pings int, acts []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.monitors, f.pings, slices.Clone(f.acts)
}

// driver runs a Model the way Bubble Tea does, one message at a time, but
// in the test's goroutine and with a timer the test fires: armed holds
// the ticks the model asked for and that have not fired.
type driver struct {
	t     *testing.T
	m     *Model
	armed []func(time.Time) tea.Msg
}

func newDriver(t *testing.T, d Daemon) *driver {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	dr := &driver{t: t, m: New(ctx, d, Options{})}
	dr.m.after = func(_ time.Duration, fn func(time.Time) tea.Msg) tea.Cmd {
		dr.armed = append(dr.armed, fn)
		return nil
	}
	dr.send(tea.WindowSizeMsg{Width: 100, Height: 30})
	dr.run(dr.m.Init())
	return dr
}

// run runs cmd and every command that follows from it to the end. The
// log follower's commands end too: the fake's streams end at once.
func (dr *driver) run(cmd tea.Cmd) {
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch msg := c().(type) {
		case nil:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		default:
			_, next := dr.m.Update(msg)
			queue = append(queue, next)
		}
	}
}

func (dr *driver) send(msg tea.Msg) {
	_, cmd := dr.m.Update(msg)
	dr.run(cmd)
}

func (dr *driver) key(keys ...string) {
	for _, k := range keys {
		r := []rune(k)[0]
		switch k {
		case "end":
			r = tea.KeyEnd
		case "home":
			r = tea.KeyHome
		case "enter":
			r = tea.KeyEnter
		case "esc":
			r = tea.KeyEscape
		}
		msg := tea.KeyPressMsg{Code: r, Text: k}
		if len([]rune(k)) > 1 {
			msg.Text = ""
		}
		dr.send(msg)
	}
}

// period fires the armed timers, as one polling period passing.
func (dr *driver) period() {
	armed := dr.armed
	dr.armed = nil
	for _, fn := range armed {
		dr.send(fn(time.Now()))
	}
}

func (dr *driver) selected() string {
	r, ok := dr.m.selected()
	if !ok {
		return ""
	}
	if r.inst < 0 {
		return r.app.Name
	}
	return fmt.Sprintf("%s[%d]", r.app.Name, r.inst)
}

// TestPollsStayOnePerPeriod: moves to other apps and actions ask for
// figures at once, but never start another polling loop: however many
// there were, each period polls once and leaves one timer armed.
func TestPollsStayOnePerPeriod(t *testing.T) {
	f := newFake("api", "worker*3", "web")
	dr := newDriver(t, f)
	if len(dr.armed) != 1 {
		t.Fatalf("after the first poll %d timers are armed; want 1", len(dr.armed))
	}
	for range 10 {
		dr.key("j", "j", "j", "j", "j", "k", "k", "k", "k", "k", "R", "S", "+", "-")
		dr.period()
	}
	for range 5 {
		before, _, _ := f.counts()
		dr.period()
		after, _, _ := f.counts()
		if after-before != 1 || len(dr.armed) != 1 {
			t.Fatalf("one period polled %d times and left %d timers armed; want 1 and 1", after-before, len(dr.armed))
		}
	}
	// An error does not stop the loop either.
	before, _, _ := f.counts()
	dr.period()
	if after, _, _ := f.counts(); after != before+1 {
		t.Fatalf("no poll in a period")
	}
}

// TestPollAnswersInOrder: the answer of a poll sent before a later one
// that already answered is not shown, but the main loop goes on.
func TestPollAnswersInOrder(t *testing.T) {
	f := newFake("api")
	dr := newDriver(t, f)
	dr.armed = nil
	old := dr.m.poll(true)
	f.add("late", 1)
	dr.run(dr.m.poll(false)) // sees "late"
	f.remove("late")
	dr.run(old) // an older answer, without "late"
	if len(dr.m.mon.Apps) != 2 {
		t.Errorf("an older answer replaced a newer one: %d apps", len(dr.m.mon.Apps))
	}
	if len(dr.armed) != 1 {
		t.Errorf("the main loop's late answer armed %d timers; want 1", len(dr.armed))
	}
}

// TestSelectionStaysOnTheApp: when the selected instance goes away (scale
// down, down to one instance), the selection stays on the same app, so a
// second key acts on it again and not on the first app of the list.
func TestSelectionStaysOnTheApp(t *testing.T) {
	// Rows: worker ×3, worker[0], worker[1], worker[2], api, web: the
	// place of worker[2] is api's once worker[2] goes.
	f := newFake("worker*3", "api", "web")
	dr := newDriver(t, f)
	dr.key("j", "j", "j")
	if got := dr.selected(); got != "worker[2]" {
		t.Fatalf("j j j selected %s; want worker[2]", got)
	}
	dr.key("-")
	if got := dr.selected(); got != "worker[1]" {
		t.Errorf("after worker[2] went, the selection is %s; want worker[1]", got)
	}
	dr.key("-")
	if got := dr.selected(); got != "worker" {
		t.Errorf("after worker went down to one instance, the selection is %s; want worker", got)
	}
	dr.key("+")
	_, _, acts := f.counts()
	want := []string{"scale worker -1", "scale worker -1", "scale worker +1"}
	if !slices.Equal(acts, want) {
		t.Errorf("actions %q; want %q", acts, want)
	}
}

// TestSelectionWhenTheAppGoes: when the selected app goes (deleted
// elsewhere), the selection stays at its place in the list (clamped), and
// a pending delete of it is dropped, so y deletes nothing.
func TestSelectionWhenTheAppGoes(t *testing.T) {
	f := newFake("a", "b", "c", "d")
	dr := newDriver(t, f)
	dr.key("j", "j") // c
	dr.key("d")
	if dr.m.confirm != "c" {
		t.Fatalf("d asks to delete %q; want c", dr.m.confirm)
	}
	f.remove("c")
	dr.period()
	if got := dr.selected(); got != "d" {
		t.Errorf("after c went, the selection is %s; want d (its place)", got)
	}
	if dr.m.confirm != "" || strings.Contains(dr.m.render(), "y/N") {
		t.Errorf("the delete of c still waits for y after c went: %q", dr.m.confirm)
	}
	dr.key("y")
	if _, _, acts := f.counts(); len(acts) != 0 {
		t.Errorf("y after the list changed acted: %q", acts)
	}

	f.remove("d") // the last row: the selection moves up, not to a
	dr.period()
	if got := dr.selected(); got != "b" {
		t.Errorf("after d (the last) went, the selection is %s; want b", got)
	}

	// A change elsewhere keeps a pending delete of the selected app.
	dr.key("d")
	f.add("e", 1)
	dr.period()
	if dr.m.confirm != "b" {
		t.Errorf("a new app dropped the pending delete of b")
	}
	dr.key("y")
	if _, _, acts := f.counts(); !slices.Equal(acts, []string{"delete b"}) {
		t.Errorf("actions %q; want delete b", acts)
	}
}

// TestHistoryOfTheSelectedApp: the answer of a poll sent before a move to
// another app (which holds the previous app's history) does not draw the
// previous app's graph for the new one.
func TestHistoryOfTheSelectedApp(t *testing.T) {
	f := newFake("busy", "idle")
	f.cpu["busy"] = 100
	dr := newDriver(t, f)
	dr.period() // the first poll came before a selection: no history
	if g := dr.m.detail(6)[1]; !strings.Contains(g, "█") {
		t.Fatalf("busy's graph: %q", g)
	}
	dr.armed = nil
	inFlight := dr.m.poll(true) // asks for busy's history
	_, cmd := dr.m.Update(tea.KeyPressMsg{Code: 'j', Text: "j"})
	// busy's answer comes first, then idle's.
	dr.run(inFlight)
	if g := dr.m.detail(6)[1]; strings.Contains(g, "█") {
		t.Errorf("idle selected, busy's history drawn: %q", g)
	}
	dr.run(cmd)
	if g := dr.m.detail(6)[1]; !strings.Contains(g, "▁") || strings.Contains(g, "█") {
		t.Errorf("idle's graph: %q", g)
	}
}

// TestVersionInHeader: a daemon of another version is named in the
// header (not on stderr, which is the screen). monit asks a daemon its
// version once, and again when the log stream ends (the daemon may have
// been replaced) or a poll fails.
func TestVersionInHeader(t *testing.T) {
	f := newFake("api")
	f.version = "0.0.1-old"
	f.logs = func(ctx context.Context, _ func(api.LogLine) error) error { <-ctx.Done(); return nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, f, Options{})
	m.after = func(time.Duration, func(time.Time) tea.Msg) tea.Cmd { return nil }
	defer m.stopLogs()
	// Three polls; their commands (the log stream's) are left alone.
	for range 3 {
		m.Update(m.poll(true)())
	}
	if _, pings, _ := f.counts(); pings != 1 {
		t.Errorf("three polls asked the version %d times; want 1", pings)
	}
	if h := m.header(); !strings.Contains(h, "daemon is tend 0.0.1-old") {
		t.Errorf("another daemon version, header %q", h)
	}

	// `tend update`: the log stream ends, a daemon of this version answers.
	f.mu.Lock()
	f.version = api.Version()
	f.mu.Unlock()
	m.Update(logEndMsg{gen: m.logGen})
	m.Update(m.poll(true)())
	if _, pings, _ := f.counts(); pings != 2 {
		t.Errorf("after the log stream ended, %d pings; want 2", pings)
	}
	if h := m.header(); strings.Contains(h, "daemon is tend") {
		t.Errorf("same version, header %q", h)
	}
}

func TestSparkline(t *testing.T) {
	if got := sparkline([]float64{0, 50, 100, 200, -1}, 10, 100); got != "▁▄██▁" {
		t.Errorf("sparkline = %q", got)
	}
	if got := sparkline([]float64{0, 100, 100}, 2, 100); got != "██" {
		t.Errorf("sparkline of the last 2 = %q", got)
	}
}

// TestStopAndRestartAsk: s and R, which interrupt the service, wait for y
// as d does; any other key cancels. r, S and +/- act at once.
func TestStopAndRestartAsk(t *testing.T) {
	f := newFake("api")
	dr := newDriver(t, f)
	footer := func() string {
		lines := strings.Split(dr.m.render(), "\n")
		return lines[len(lines)-1]
	}
	for _, c := range []struct{ key, asks, act string }{
		{"s", "stop api: end all its instances? y/N", "stop api"},
		{"R", "restart api: stop all its instances, then start them? y/N", "restart api"},
		{"d", "delete api: stop it and remove it from the list? y/N", "delete api"},
	} {
		_, _, before := f.counts()
		dr.key(c.key)
		if got := footer(); !strings.Contains(got, c.asks) {
			t.Errorf("%s: the bottom line is %q; want it to ask %q", c.key, got, c.asks)
		}
		dr.key("n")
		if got, want := footer(), strings.Replace(c.act, " ", " of ", 1)+" cancelled"; !strings.Contains(got, want) {
			t.Errorf("%s n: the bottom line is %q; want %q", c.key, got, want)
		}
		if _, _, acts := f.counts(); len(acts) != len(before) {
			t.Errorf("%s then n acted: %q", c.key, acts[len(before):])
		}
		dr.key(c.key, "y")
		if _, _, acts := f.counts(); !slices.Equal(acts[len(before):], []string{c.act}) {
			t.Errorf("%s then y: actions %q; want %q", c.key, acts[len(before):], c.act)
		}
		if c.key == "d" {
			f.add("api", 1) // back
			dr.period()
		}
	}
	_, _, before := f.counts()
	dr.key("r", "S", "+", "-")
	if _, _, acts := f.counts(); !slices.Equal(acts[len(before):], []string{"reload api", "start api", "scale api +1", "scale api -1"}) {
		t.Errorf("r S + -: actions %q; want them at once", acts[len(before):])
	}
	dr.key("?")
	if help := dr.m.render(); !strings.Contains(help, "stop the app (asks y/N first)") || !strings.Contains(help, "then start; asks y/N first") {
		t.Errorf("the help does not say that s and R ask:\n%s", help)
	}
}

// TestStatusExpires: the bottom line's message goes statusFor after it
// came (by the model's clock, checked at each poll); one saying that an
// action is under way stays until the action's answer.
func TestStatusExpires(t *testing.T) {
	f := newFake("api")
	dr := newDriver(t, f)
	now := time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)
	dr.m.opts.Now = func() time.Time { return now }

	_, cmd := dr.m.Update(tea.KeyPressMsg{Code: 'S', Text: "S"}) // its answer waits
	now = now.Add(time.Minute)
	dr.period()
	if dr.m.status != "start api…" {
		t.Errorf("an action under way: the status is %q after a minute; want %q", dr.m.status, "start api…")
	}
	dr.run(cmd)
	if dr.m.status != "started api" {
		t.Fatalf("status %q; want %q", dr.m.status, "started api")
	}
	now = now.Add(statusFor - time.Millisecond)
	dr.period()
	if dr.m.status != "started api" {
		t.Errorf("status %q before its time; want %q", dr.m.status, "started api")
	}
	now = now.Add(time.Millisecond)
	dr.period()
	if dr.m.status != "" {
		t.Errorf("status %q after %s; want none", dr.m.status, statusFor)
	}
	lines := strings.Split(dr.m.render(), "\n")
	if l := lines[len(lines)-1]; !strings.Contains(l, "? help") {
		t.Errorf("the bottom line is %q; want the keys back", l)
	}
}
