package supervisor_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/supervisor"
)

// sampled runs sampler passes until cond holds for the instance's
// figures, or the deadline passes; a pass every interval, in real time
// (CPU is measured against the wall).
func (h *harness) sampled(name string, slot int, interval time.Duration, deadline time.Duration, what string, cond func(api.InstanceInfo) bool) api.InstanceInfo {
	h.t.Helper()
	end := time.Now().Add(deadline)
	var in api.InstanceInfo
	for {
		h.sup.Sample()
		in = h.instance(name, slot)
		if !in.Sampled.IsZero() && cond(in) {
			return in
		}
		if time.Now().After(end) {
			h.t.Fatalf("%s: last figures %+v", what, in)
		}
		time.Sleep(interval)
	}
}

// TestSamplerCPU: a process burning a core reads 90–110% of one. A loaded
// machine may not give it a whole core in every second, so the test takes
// the first pass that does, within a generous deadline; a sampler that
// measures wrong never reads in range.
func TestSamplerCPU(t *testing.T) {
	h := newHarness(t)
	h.create(h.spec("burn", "busy", "forever"))
	h.sup.Sample()
	in := h.sampled("burn", 0, time.Second, 60*time.Second, "CPU of a busy process in 90..110%", func(in api.InstanceInfo) bool {
		return in.CPU >= 90 && in.CPU <= 110
	})
	if in.CPUTime <= 0 {
		t.Errorf("cpu_seconds = %v; want > 0", in.CPUTime)
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
	if in.Restarts != 1 || in.LastRestart == nil || !strings.Contains(in.LastRestart.Reason, "over max_memory_restart 32.0 MiB") {
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
