package supervisor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/notify"
	"github.com/tend-pm/tend/internal/procfs"
	"github.com/tend-pm/tend/internal/supervisor"
)

// TestSamplerCPU: a process burning a core reads 90–110% of one. A loaded
// machine (CI runs every package's tests at once on two cores) may not give
// it a whole core in any second, so each pass is checked against the
// kernel's own count of the process's CPU time, read just before and just
// after the pass: the sampler must agree with it every time, and read
// 90–110% in a pass where the process did have a core.
func TestSamplerCPU(t *testing.T) {
	h := newHarness(t)
	pid := h.create(h.spec("burn", "busy", "forever"))[0].Instances[0].PID
	type truth struct {
		cpu  time.Duration
		wall time.Time
	}
	read := func() truth {
		st, err := procfs.ReadStat(pid)
		if err != nil {
			t.Fatalf("the busy process: %v", err)
		}
		return truth{st.CPU, time.Now()}
	}
	// pass samples, with the kernel's figures on either side.
	pass := func() (before, after truth, in api.InstanceInfo) {
		before = read()
		h.sup.Sample()
		in = h.instance("burn", 0)
		return before, read(), in
	}
	pct := func(cpu time.Duration, wall time.Duration) float64 { return 100 * cpu.Seconds() / wall.Seconds() }
	// The kernel counts CPU time in 10 ms ticks: a second's share can be
	// off by two of them.
	const slack = 3.0
	prevBefore, prevAfter, _ := pass()
	fullCore := false
	deadline := time.Now().Add(20 * time.Second)
	for rounds := 0; !fullCore || rounds < 3; rounds++ {
		time.Sleep(time.Second) // the sampling period: CPU is a share of the wall
		before, after, in := pass()
		// The sampler's pass ran between prevBefore and prevAfter, and its
		// next between before and after: the process's share over the
		// sampler's interval lies between these two.
		lo := pct(before.cpu-prevAfter.cpu, after.wall.Sub(prevBefore.wall))
		hi := pct(after.cpu-prevBefore.cpu, before.wall.Sub(prevAfter.wall))
		if in.CPU < lo-slack || in.CPU > hi+slack {
			t.Fatalf("pass %d: sampler reads %.1f%% CPU; the kernel's count says %.1f..%.1f%%", rounds, in.CPU, lo, hi)
		}
		if lo >= 90 {
			fullCore = true
			if in.CPU < 90 || in.CPU > 110 {
				t.Fatalf("pass %d: a process with a whole core (%.1f..%.1f%%) reads %.1f%%; want 90..110", rounds, lo, hi, in.CPU)
			}
		}
		if in.CPUTime <= 0 {
			t.Fatalf("cpu_seconds = %v; want > 0", in.CPUTime)
		}
		if time.Now().After(deadline) {
			t.Logf("the machine never gave the busy process a whole core in %d passes; each agreed with the kernel's count", rounds+1)
			break
		}
		prevBefore, prevAfter = before, after
	}
}

// TestSamplerMemory: a process holding 200 MiB reads within 10% of it
// (beyond what the same program uses holding nothing), and a tree's
// memory counts its children.
func TestSamplerMemory(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ready := filepath.Join(h.dir, "held")
	kid := filepath.Join(h.dir, "kid")
	h.create(
		h.spec("base", "write", filepath.Join(h.dir, "base"), "x", "sleep", "forever"),
		h.spec("big", "hold", "200", "write", ready, "x", "sleep", "forever"),
		h.spec("tree", "spawnhold", "100", kid, "sleep", "forever"),
	)
	readPID(t, kid)
	waitFor(t, "the 200 MiB to be held", func() bool { return fileExists(ready) })
	h.sup.Sample()
	base := h.instance("base", 0).Memory
	big := h.instance("big", 0)
	want := uint64(200<<20) + base
	if lo, hi := want*9/10, want*11/10; big.Memory < lo || big.Memory > hi {
		t.Errorf("memory of a process holding 200 MiB = %d MiB; want %d MiB ± 10%% (the program alone: %d MiB)", big.Memory>>20, want>>20, base>>20)
	}
	tree := h.instance("tree", 0)
	if tree.Memory < 100<<20 || tree.Procs != 2 {
		t.Errorf("tree: memory %d MiB over %d processes; want ≥ 100 MiB (its child holds 100) over 2", tree.Memory>>20, tree.Procs)
	}
	if tree.Threads < 2 || tree.FDs < 3 {
		t.Errorf("tree: %d threads, %d fds; want at least 2 and 3", tree.Threads, tree.FDs)
	}
	m, err := h.sup.Monitor("big", 10)
	if err != nil || len(m.History) != 1 || len(m.History[0].Memory) == 0 || m.History[0].Memory[len(m.History[0].Memory)-1] != big.Memory {
		t.Errorf("Monitor(big) history = %+v, %v; want one slot ending with the last sample", m.History, err)
	}
	if m.Host.MemTotal == 0 || m.Host.Cores == 0 {
		t.Errorf("host = %+v; want memory and cores", m.Host)
	}
	if _, err := h.sup.Monitor("nope", 10); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Monitor(nope) err = %v; want not found", err)
	}
}

// TestMemoryLimit: an instance over max_memory_restart is restarted by the
// first pass that sees it (within two sampling periods of the breach), the
// reason shows, and the event hook hears of it.
func TestMemoryLimit(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var events []supervisor.LimitEvent
	bus := &recordingBus{}
	h := newHarnessWith(t, func(d *supervisor.Deps) {
		d.OnLimit = func(e supervisor.LimitEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }
		d.Bus = bus
	})
	held := filepath.Join(h.dir, "held")
	spec := h.spec("leak", "hold", "64", "write", held, "x", "sleep", "forever")
	spec.MaxMemoryRestart = 32 << 20
	first := h.create(spec)[0].Instances[0]
	waitFor(t, "the memory to be held", func() bool { return fileExists(held) })
	h.sup.Sample() // the breach is seen: the instance is stopped at once
	in := h.instance("leak", 0)
	if in.PID == first.PID && in.Status != api.StatusStopping {
		t.Fatalf("after one pass over the limit: %+v; want it stopping or restarted", in)
	}
	in = waitInstance(t, h, "leak", "a new process", func(in api.InstanceInfo) bool {
		return in.PID != 0 && in.PID != first.PID && in.Status == api.StatusOnline
	})
	if in.Restarts != 1 || in.LastRestart == nil || !strings.HasSuffix(in.LastRestart.Reason, "over max_memory_restart 32.0 MiB; action: restart") {
		t.Errorf("after the restart: restarts %d, last restart %+v; want 1 and the memory reason", in.Restarts, in.LastRestart)
	}
	waitFor(t, "the limit event", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) > 0 })
	mu.Lock()
	e := events[0]
	mu.Unlock()
	if e.App != "leak" || e.PID != first.PID || e.RSS <= e.Limit || e.Action != "restart" {
		t.Errorf("event = %+v; want leak's first pid, over its limit, a restart", e)
	}
	var ev api.Event
	if b := bus.last(api.EventSubject("leak", api.EventMemoryLimit)); b == nil || json.Unmarshal(b, &ev) != nil ||
		ev.PID != first.PID || !strings.Contains(ev.Reason, "max_memory_restart") {
		t.Errorf("memory_limit event on the bus = %s; want leak's first pid and the reason", b)
	}
}

// recordingBus is a bus that keeps what is published on it.
type recordingBus struct {
	mu  sync.Mutex
	got map[string][]byte
}

func (b *recordingBus) Env() (map[string]string, error) { return nil, nil }
func (b *recordingBus) Running() bool                   { return true }
func (b *recordingBus) Publish(subject string, data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.got == nil {
		b.got = map[string][]byte{}
	}
	b.got[subject] = data
}
func (b *recordingBus) Deliver(subject string, data []byte) (int, error) {
	b.Publish(subject, data)
	return 1, nil
}
func (b *recordingBus) Request(context.Context, string, []byte) ([]byte, error) {
	return nil, api.ErrNoSubscriber
}
func (b *recordingBus) last(subject string) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.got[subject]
}

// TestAppMetrics: METRIC= lines set gauges and add to counters; bad ones
// are refused with the reason and change nothing.
func TestAppMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pid := h.create(h.spec("app", "sleep", "forever"))[0].Instances[0].PID
	for _, msg := range []string{"METRIC=queue 5\nMETRIC=jobs_total 2 counter", "METRIC=queue 7 gauge", "METRIC=jobs_total 3 counter"} {
		if err := h.sup.Notify(pid, msg); err != nil {
			t.Fatalf("Notify(%q): %v", msg, err)
		}
	}
	for _, bad := range []string{"METRIC=queue", "METRIC=9lives 1", "METRIC=x NaN", "METRIC=jobs_total -1 counter", "METRIC=queue 1 counter", "METRIC=y 1 histogram"} {
		if err := h.sup.Notify(pid, bad); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("Notify(%q) = %v; want an invalid error", bad, err)
		}
	}
	got := h.instance("app", 0).Metrics
	want := []api.AppMetric{{Name: "jobs_total", Type: "counter", Value: 5}, {Name: "queue", Type: "gauge", Value: 7}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("metrics = %+v; want %+v", got, want)
	}
	h.act(api.ActionRestart, "app")
	if m := h.instance("app", 0).Metrics; len(m) != 0 {
		t.Errorf("metrics after a restart = %+v; want none: they belong to a process", m)
	}
}

func waitInstance(t *testing.T, h *harness, name, what string, cond func(api.InstanceInfo) bool) api.InstanceInfo {
	t.Helper()
	var in api.InstanceInfo
	waitFor(t, what, func() bool {
		in = h.instance(name, 0)
		return cond(in)
	})
	return in
}

// newPortHarness is newHarnessWith plus a NOTIFY_SOCKET whose messages go
// to the supervisor, as in the daemon, for apps that say when they are
// ready.
func newPortHarness(t *testing.T, mod func(*supervisor.Deps)) *harness {
	t.Helper()
	nl, err := notify.Listen(filepath.Join(t.TempDir(), notify.Name), os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessWith(t, func(d *supervisor.Deps) {
		d.NotifySocket = nl.Path()
		if mod != nil {
			mod(d)
		}
	})
	sup := h.sup
	go nl.Serve(func(pid int, msg string) { _ = sup.Notify(pid, msg) })
	t.Cleanup(func() { _ = nl.Close() })
	return h
}

// portSpec is an app whose sockets the supervisor holds (proxy mode, on a
// unix socket in the test's directory), ready when it says so.
func (h *harness) portSpec(name string, script ...string) api.AppSpec {
	s := h.spec(name, script...)
	s.Listen = []string{"unix:" + filepath.Join(h.dir, name+".sock")}
	s.Balance = api.BalanceProxy
	s.Ready = api.ReadyNotify
	return s
}

// keepAdvancing moves the fake clock a second every 20 ms until the
// returned function is called: stops of processes that ignore the stop
// signal then end after kill_timeout.
func (h *harness) keepAdvancing() (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				h.clk.Advance(time.Second)
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// limitEvents records what Deps.OnLimit hears.
type limitEvents struct {
	mu  sync.Mutex
	got []supervisor.LimitEvent
}

func (l *limitEvents) add(e supervisor.LimitEvent) {
	l.mu.Lock()
	l.got = append(l.got, e)
	l.mu.Unlock()
}
func (l *limitEvents) all() []supervisor.LimitEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// TestMemoryLimitStaleReload: a memory-limit reload that had to wait for
// another action on the app finds, by then, another process in the slot
// (the one over the limit crashed and was restarted): it replaces
// nothing, and nothing says it did.
func TestMemoryLimitStaleReload(t *testing.T) {
	t.Parallel()
	events := &limitEvents{}
	bus := &recordingBus{}
	h := newPortHarness(t, func(d *supervisor.Deps) { d.OnLimit = events.add; d.Bus = bus })
	spec := h.portSpec("fat", "ignore", "INT", "hold", "64", "notify", "READY=1", "sleep", "forever")
	spec.Instances = 2
	spec.MaxMemoryRestart = 32 << 20
	spec.MinUptime = 0
	spec.ListenTimeout = api.Duration(time.Hour) // no readiness timeout while the fake clock runs
	h.create(spec)
	h.waitReady("fat", 0)
	h.waitReady("fat", 1)
	first := h.instance("fat", 0).PID

	// A user's scale-down holds the app's actions: slot 1 ignores the stop
	// signal (SIGINT) and waits for kill_timeout, on the fake clock.
	scaled := make(chan error, 1)
	go func() {
		_, err := h.sup.Act(context.Background(), api.ActionScale, api.ActionRequest{Targets: []string{"fat"}, Instances: "1"})
		scaled <- err
	}()
	waitFor(t, "the scale-down to wait for kill_timeout", func() bool {
		return slices.Contains(h.clk.Pending(), spec.KillTimeout.Std())
	})
	h.sup.Sample() // slot 0 is over its limit: a reload is decided, and waits
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	restarted := waitInstance(t, h, "fat", "slot 0 restarted after its crash", func(in api.InstanceInfo) bool {
		return in.PID != 0 && in.PID != first && in.Ready
	})
	stop := h.keepAdvancing()
	defer stop()
	if err := <-scaled; err != nil {
		t.Fatalf("scale: %v", err)
	}
	// A user's reload is refused while the memory reload runs or waits;
	// once it is taken, the memory reload has ended.
	waitFor(t, "a user's reload to be taken", func() bool {
		_, err := h.sup.Act(context.Background(), api.ActionReload, api.ActionRequest{Targets: []string{"fat"}})
		if err != nil && !errors.Is(err, api.ErrConflict) {
			t.Fatalf("reload: %v", err)
		}
		return err == nil
	})
	in := h.instance("fat", 0)
	if in.Restarts != restarted.Restarts+1 || in.LastRestart != nil {
		t.Errorf("slot 0 after its crash restart (%d restarts) and a user's reload: %d restarts, last restart by tend %+v; want one more, and none by tend",
			restarted.Restarts, in.Restarts, in.LastRestart)
	}
	if got := events.all(); len(got) != 0 {
		t.Errorf("limit events = %+v; want none: nothing was done about the crashed process's memory", got)
	}
	if b := bus.last(api.EventSubject("fat", api.EventMemoryLimit)); b != nil {
		t.Errorf("memory_limit event on the bus: %s; want none", b)
	}
}

// TestMemoryLimitReloadThenPolicy: an app with a port over its limit is
// reloaded; a new process over it within min_uptime of its start goes to
// the restart policy, and after max_restarts such runs the app is errored
// instead of being reloaded forever.
func TestMemoryLimitReloadThenPolicy(t *testing.T) {
	t.Parallel()
	events := &limitEvents{}
	h := newPortHarness(t, func(d *supervisor.Deps) { d.OnLimit = events.add })
	spec := h.portSpec("fat", "hold", "64", "notify", "READY=1", "sleep", "forever")
	spec.MaxMemoryRestart = 32 << 20
	spec.MaxRestarts = 2
	h.create(spec)
	first := h.waitReady("fat", 0).PID
	h.clk.Advance(2 * spec.MinUptime.Std()) // an old process: reloaded
	h.sup.Sample()
	in := waitInstance(t, h, "fat", "the slot reloaded", func(in api.InstanceInfo) bool {
		return in.PID != 0 && in.PID != first && in.Ready
	})
	if in.Restarts != 1 || in.LastRestart == nil || !strings.HasSuffix(in.LastRestart.Reason, "over max_memory_restart 32.0 MiB; action: reload") {
		t.Errorf("after the reload: %d restarts, last restart %+v; want 1 and the memory reason", in.Restarts, in.LastRestart)
	}
	// The fake clock stands still: every new process is over its limit
	// within min_uptime.
	waitFor(t, "the app to be errored", func() bool {
		h.sup.Sample()
		return h.instance("fat", 0).Status == api.StatusErrored
	})
	in = h.instance("fat", 0)
	if in.Restarts != 1+spec.MaxRestarts || !strings.Contains(in.Reason, "max_restarts") {
		t.Errorf("errored: %d restarts, reason %q; want %d (the reload, then max_restarts) and max_restarts named", in.Restarts, in.Reason, 1+spec.MaxRestarts)
	}
	var actions []string
	for _, e := range events.all() {
		actions = append(actions, e.Action)
	}
	if want := []string{"reload", "restart", "restart", "stop"}; !slices.Equal(actions, want) {
		t.Errorf("limit events' actions = %v; want %v", actions, want)
	}
}

// TestMemoryLimitReloadFails: when the new process of a memory-limit
// reload is never ready, the process over its limit goes to the restart
// policy, rather than staying until the next pass tries again.
func TestMemoryLimitReloadFails(t *testing.T) {
	t.Parallel()
	h := newPortHarness(t, nil)
	gate := filepath.Join(h.dir, "gate")
	pidFile := filepath.Join(h.dir, "pid")
	spec := h.portSpec("fat", "hold", "64", "pid", pidFile, "waitfile", gate, "notify", "READY=1", "sleep", "forever")
	spec.MaxMemoryRestart = 32 << 20
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h.create(spec)
	first := h.waitReady("fat", 0).PID
	if err := os.Remove(gate); err != nil { // no new process will be ready
		t.Fatal(err)
	}
	h.clk.Advance(2 * spec.MinUptime.Std())
	h.sup.Sample()
	waitFor(t, "the reload's new process", func() bool { p := readPID(t, pidFile); return p != first })
	h.clk.Advance(spec.ReadyCheck().Timeout) // it is not ready in time
	in := waitInstance(t, h, "fat", "the process over its limit restarted", func(in api.InstanceInfo) bool {
		return in.PID != 0 && in.PID != first && alive(in.PID) && !alive(first)
	})
	if in.Restarts != 1 || in.LastRestart == nil || !strings.Contains(in.LastRestart.Reason, "the reload failed") ||
		!strings.Contains(in.LastRestart.Reason, "over max_memory_restart") || !strings.HasSuffix(in.LastRestart.Reason, "; action: restart") {
		t.Errorf("after the failed reload: %d restarts, last restart %+v; want 1, the memory reason and the failed reload", in.Restarts, in.LastRestart)
	}
}

// TestMemoryLimitAction: the limit event names what the restart policy
// will do: a stop when autorestart is off, or when the instance ends
// errored; never a restart that does not come.
func TestMemoryLimitAction(t *testing.T) {
	t.Parallel()
	events := &limitEvents{}
	bus := &recordingBus{}
	h := newHarnessWith(t, func(d *supervisor.Deps) { d.OnLimit = events.add; d.Bus = bus })
	off := h.spec("off", "hold", "64", "write", filepath.Join(h.dir, "off"), "x", "sleep", "forever")
	off.MaxMemoryRestart, off.Autorestart = 32<<20, false
	last := h.spec("last", "hold", "64", "write", filepath.Join(h.dir, "last"), "x", "sleep", "forever")
	last.MaxMemoryRestart, last.MaxRestarts = 32<<20, 0
	h.create(off, last)
	waitFor(t, "the memory to be held", func() bool {
		return fileExists(filepath.Join(h.dir, "off")) && fileExists(filepath.Join(h.dir, "last"))
	})
	h.sup.Sample()
	h.waitStatus("off", 0, api.StatusStopped)
	h.waitStatus("last", 0, api.StatusErrored)
	waitFor(t, "two limit events", func() bool { return len(events.all()) == 2 })
	for _, e := range events.all() {
		if e.Action != "stop" {
			t.Errorf("%s: limit event action %q; want stop", e.App, e.Action)
		}
	}
	for name, want := range map[string]string{"off": "autorestart is off", "last": "max_restarts"} {
		var ev api.Event
		b := bus.last(api.EventSubject(name, api.EventMemoryLimit))
		if b == nil || json.Unmarshal(b, &ev) != nil || !strings.Contains(ev.Reason, want) || strings.Contains(ev.Reason, "restarting") {
			t.Errorf("%s: memory_limit event %s; want its reason to say %q, and no restart", name, b, want)
		}
	}
}

// TestAppMetricsAllOrNothing: a message with a malformed METRIC= line is
// refused whole: the good lines before and after it change nothing
// either, so the sender may send it again, fixed, without counting twice.
func TestAppMetricsAllOrNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pid := h.create(h.spec("app", "sleep", "forever"))[0].Instances[0].PID
	if err := h.sup.Notify(pid, "METRIC=jobs_total 1 counter\nMETRIC=queue 5"); err != nil {
		t.Fatal(err)
	}
	err := h.sup.Notify(pid, "METRIC=jobs_total 2 counter\nMETRIC=9lives 1\nMETRIC=queue 7\nMETRIC=new 1\nSTATUS=changed")
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "9lives") {
		t.Errorf("Notify with a bad line = %v; want an invalid error naming it", err)
	}
	in := h.instance("app", 0)
	want := []api.AppMetric{{Name: "jobs_total", Type: "counter", Value: 1}, {Name: "queue", Type: "gauge", Value: 5}}
	if !slices.Equal(in.Metrics, want) || in.AppStatus != "" {
		t.Errorf("after the refused message: metrics %+v, status %q; want %+v and no status", in.Metrics, in.AppStatus, want)
	}
	if err := h.sup.Notify(pid, "METRIC=jobs_total 2 counter\nMETRIC=queue 7"); err != nil {
		t.Fatal(err)
	}
	want = []api.AppMetric{{Name: "jobs_total", Type: "counter", Value: 3}, {Name: "queue", Type: "gauge", Value: 7}}
	if got := h.instance("app", 0).Metrics; !slices.Equal(got, want) {
		t.Errorf("after the fixed message: %+v; want %+v", got, want)
	}
}

// TestSamplerCPUAfterQuiet: a process the sampler reads only every few
// passes, because it did nothing, that starts spinning reads at most one
// core, not the CPU of all the passes it was left unread in one (about
// 800%).
func TestSamplerCPUAfterQuiet(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	fifo := filepath.Join(h.dir, "go")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	spec := api.NewSpec()
	spec.Name, spec.Script, spec.Cwd = "spin", "/bin/sh", h.dir
	spec.Command = []string{"/bin/sh", "-c", `read x < "$0"; while :; do :; done`, fifo}
	pid := h.create(spec)[0].Instances[0].PID
	waitFor(t, "the shell to wait on its pipe", func() bool {
		st, err := procfs.ReadStat(pid)
		return err == nil && st.State == 'S'
	})
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	// Quiet from the first pass: read on passes 1, 2, 4, 8, 16 and 24,
	// then not before 32.
	for range 24 {
		h.sup.Sample()
		<-tick.C
	}
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("go\n")
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var cpu []float64
	busy := false
	for i := 0; i < 16 || !busy; i++ {
		<-tick.C
		h.sup.Sample()
		c := h.instance("spin", 0).CPU
		cpu = append(cpu, c)
		busy = busy || c >= 40
		if i > 200 {
			t.Fatalf("CPU %% of a spinning shell, pass by pass: %.0f; it never read busy", cpu)
		}
	}
	if m := slices.Max(cpu); m > 250 {
		t.Errorf("CPU %% of a shell that started spinning, pass by pass: %.0f; want at most one core", cpu)
	}
}

// TestSamplerClose: Shutdown ends RunSampler, which releases what the
// sampler kept open; a pass asked for later does nothing.
func TestSamplerClose(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, func(d *supervisor.Deps) { d.SampleEvery = time.Second })
	pid := h.create(h.spec("app", "sleep", "forever"))[0].Instances[0].PID
	done := make(chan struct{})
	go func() { h.sup.RunSampler(context.Background()); close(done) }()
	waitFor(t, "a pass", func() bool { return h.sup.SamplerStats().Passes >= 1 })
	stat := fmt.Sprintf("/proc/%d/stat", pid)
	if !holds(t, stat) {
		t.Fatalf("the sampler does not keep %s open", stat)
	}
	h.sup.Shutdown(false)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunSampler still runs after Shutdown")
	}
	if holds(t, stat) {
		t.Errorf("%s still open after the sampler ended", stat)
	}
	passes := h.sup.SamplerStats().Passes
	h.sup.Sample()
	if got := h.sup.SamplerStats().Passes; got != passes {
		t.Errorf("a pass after the sampler ended: %d passes, was %d; want none", got, passes)
	}
}

// holds reports whether this process has path open.
func holds(t *testing.T, path string) bool {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if p, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && p == path {
			return true
		}
	}
	return false
}

// waitReady waits until instance slot of name runs and is ready.
func (h *harness) waitReady(name string, slot int) api.InstanceInfo {
	h.t.Helper()
	var in api.InstanceInfo
	waitFor(h.t, fmt.Sprintf("%s[%d] to be ready", name, slot), func() bool {
		in = h.instance(name, slot)
		return in.PID != 0 && in.Ready
	})
	return in
}
