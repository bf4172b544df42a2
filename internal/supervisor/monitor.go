package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/procfs"
	"github.com/tend-pm/tend/internal/rawnet"
	"github.com/tend-pm/tend/internal/sample"
)

// Monitoring (DESIGN 11, docs/monitoring.md): every SampleEvery, one pass
// reads the tree of every running instance and the host, keeps a ring of
// history per slot, and enforces max_memory_restart.

// Defaults of the sampler.
const (
	DefaultSampleEvery = time.Second
	// DefaultHistory is how many samples each slot keeps: 10 minutes at
	// the default cadence.
	DefaultHistory = 600
	// fdEvery: open descriptors are counted on one pass in fdEvery, while
	// someone watches. It is the costliest figure (a directory listing per
	// process) and the one that changes slowest.
	fdEvery = 5
	// listEvery: unwatched, /proc is listed (to find new children) at most
	// once in listEvery passes.
	listEvery = 5
)

// LimitEvent tells that an instance went over its app's
// max_memory_restart and what the daemon does about it, once it does it.
// The same goes out on the bus as a memory_limit event
// (api.EventMemoryLimit); Deps.OnLimit hears it in-process.
type LimitEvent struct {
	Time  time.Time
	App   string
	Slot  int
	PID   int
	RSS   uint64
	Limit uint64
	// Action is "reload" (a new process first), "restart" (the stop
	// sequence, then a new process, by the restart policy) or "stop" (the
	// restart policy leaves it stopped: autorestart is off, or it ends
	// errored after max_restarts).
	Action string
}

// Actions of a LimitEvent.
const (
	limitReload  = "reload"
	limitRestart = "restart"
	limitStop    = "stop"
)

// monitor is the sampler's state. mu serializes passes and guards trees,
// host and closed; what a pass learns about instances is stored in them
// under Supervisor.mu.
type monitor struct {
	mu     sync.Mutex
	trees  *sample.Trees
	host   *sample.Host
	closed bool // CloseSampler was called: no more passes
	// The sampler's own figures, which SamplerStats reads without
	// waiting for a pass to end.
	passes   atomic.Int64
	lastDur  atomic.Int64 // nanoseconds
	busy     atomic.Int64 // total nanoseconds spent in passes
	listings atomic.Int64
	// hostLast is the host's usage at the last pass; guarded by
	// Supervisor.mu like the instances' figures.
	hostLast sample.HostUsage
	// watched is when someone last looked (unix nanoseconds).
	watched atomic.Int64
}

// watchedFor is how long a look (Monitor: monit, /metrics) keeps the
// sampler at full detail.
const watchedFor = 15 * time.Second

func (m *monitor) watchedAt() time.Time { return time.Unix(0, m.watched.Load()) }

// sampleEvery is the cadence, 0 when sampling is off.
func (s *Supervisor) sampleEvery() time.Duration {
	switch {
	case s.deps.SampleEvery < 0:
		return 0
	case s.deps.SampleEvery == 0:
		return DefaultSampleEvery
	}
	return s.deps.SampleEvery
}

// RunSampler samples at the cadence until ctx is done or Shutdown begins;
// then it releases what sampling holds open (CloseSampler).
func (s *Supervisor) RunSampler(ctx context.Context) {
	defer s.CloseSampler()
	every := s.sampleEvery()
	if every <= 0 {
		return
	}
	clk := s.deps.Clock
	for {
		start := clk.Now()
		s.Sample()
		wait := make(chan struct{})
		t := clk.AfterFunc(max(every-clk.Now().Sub(start), every/10), func() { close(wait) })
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.shutdown:
			t.Stop()
			return
		case <-wait:
		}
	}
}

// CloseSampler ends sampling: it waits for a pass under way, releases the
// descriptors the sampler keeps open (each process's stat, /proc files),
// and makes later calls of Sample do nothing. RunSampler calls it when it
// returns; a caller that runs passes itself (Sample) calls it when done.
func (s *Supervisor) CloseSampler() {
	m := &s.mon
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closeLocked()
}

func (m *monitor) closeLocked() {
	m.closed = true
	if m.trees != nil {
		m.trees.Close()
		m.trees = nil
	}
	if m.host != nil {
		m.host.Close()
		m.host = nil
	}
}

// target is one process a pass measures.
type target struct {
	in  *instance
	run uint64
}

// Sample runs one pass of the sampler: it measures every running
// instance and the host, records history, and acts on memory limits.
// Once Shutdown has begun, or CloseSampler was called, it only makes sure
// the sampler's descriptors are released.
func (s *Supervisor) Sample() {
	m := &s.mon
	m.mu.Lock()
	defer m.mu.Unlock()
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if m.closed || closing {
		m.closeLocked()
		return
	}
	t0 := time.Now()
	if m.trees == nil {
		m.trees = sample.NewTrees(os.Getpid(), s.ownerOf)
		m.host = sample.NewHost()
	}
	s.mu.Lock()
	var roots []sample.Root
	var targets []target
	for _, a := range s.apps {
		for _, in := range a.allInstances() {
			if in.pid != 0 {
				roots = append(roots, sample.Root{Key: in.run, PID: in.pid, PGID: in.pgid, Start: in.startTicks, Eager: a.spec.MaxMemoryRestart > 0})
				targets = append(targets, target{in, in.run})
			}
		}
	}
	s.mu.Unlock()

	// Watched (monit open, a scrape within watchedFor): every process is
	// read on every pass and descriptors are counted. Unwatched, quiet
	// processes are read less often (see package sample), so an idle
	// daemon stays idle.
	watched := time.Since(m.watchedAt()) < watchedFor
	withFDs := watched && m.passes.Load()%fdEvery == 0
	usage := m.trees.Measure(roots, sample.Options{FDs: withFDs, Eager: watched, ListEvery: listEvery})
	m.listings.Store(int64(m.trees.Listings))
	host := m.host.Read()
	now := time.Now()

	var actions []func()
	s.mu.Lock()
	m.hostLast = host
	for _, t := range targets {
		u, ok := usage[t.run]
		if !ok || t.in.run != t.run || t.in.pid == 0 {
			continue
		}
		t.in.recordLocked(u, now, withFDs)
		if f := s.checkMemoryLocked(t.in, u); f != nil {
			actions = append(actions, f)
		}
	}
	for _, a := range s.apps {
		s.recordHistoryLocked(a, now)
	}
	s.mu.Unlock()
	for _, f := range actions {
		go f()
	}
	m.passes.Add(1)
	d := time.Since(t0)
	m.lastDur.Store(int64(d))
	m.busy.Add(int64(d))
}

// recordLocked stores what a pass measured of in's tree. The CPU share is
// the tree's own (sample.Usage.CPUPercent): each process's increase over
// its own interval since it was last read, so a process read after a few
// skipped passes does not show their CPU as one pass's.
func (in *instance) recordLocked(u sample.Usage, now time.Time, withFDs bool) {
	in.cpuPct = u.CPUPercent
	fds := in.usage.FDs
	first := !in.sampled
	in.usage, in.usageAt, in.sampled = u, now, true
	if !withFDs && !first {
		in.usage.FDs = fds
	}
}

// recordHistoryLocked adds the latest sample of each slot of a to its
// history. The history belongs to the slot, so it goes on across restarts
// and reloads: a memory leak shows as a saw.
func (s *Supervisor) recordHistoryLocked(a *app, now time.Time) {
	n := s.deps.History
	if n <= 0 {
		n = DefaultHistory
	}
	for len(a.history) < len(a.insts) {
		a.history = append(a.history, sample.NewRing(n))
	}
	a.history = a.history[:len(a.insts)]
	for slot, in := range a.insts {
		p := sample.Point{T: now.Unix(), Conns: -1}
		if in.pid != 0 && in.sampled && in.usageAt.Equal(now) {
			p.CPU, p.RSS = float32(in.cpuPct), in.usage.RSS
		}
		if ps := in.proxies(); len(ps) > 0 {
			p.Conns = 0
			for _, px := range ps {
				p.Conns += int32(px.Conns(in.run))
			}
		}
		a.history[slot].Add(p)
	}
}

// checkMemoryLocked returns what to do if in is over its app's
// max_memory_restart. Where the daemon holds the app's sockets, the slot
// is reloaded: its new process takes over before the old one stops. A
// process over its limit within min_uptime of its start (a reload's new
// process that is over at once, or any young one), and a process of an
// app without sockets, go to the restart policy instead, as after a
// crash: the stop sequence, then backoff and max_restarts, so an app that
// cannot stay under its limit ends errored rather than being replaced
// forever.
func (s *Supervisor) checkMemoryLocked(in *instance, u sample.Usage) func() {
	a := in.app
	limit := uint64(a.spec.MaxMemoryRestart)
	if limit == 0 || u.RSS <= limit || in.memAction || in.stopping || in.candidate || s.closing || a.deleted ||
		in.slot >= len(a.insts) || a.insts[in.slot] != in {
		return nil
	}
	if a.reloading {
		return nil // a reload replaces it anyway; look again next pass
	}
	in.memAction = true
	why := fmt.Sprintf("memory %s over max_memory_restart %s", mib(u.RSS), mib(limit))
	ev := LimitEvent{App: a.spec.Name, Slot: in.slot, PID: in.pid, RSS: u.RSS, Limit: limit}
	uptime := s.deps.Clock.Now().Sub(in.started)
	if a.socks != nil && uptime >= a.spec.MinUptime.Std() {
		// The reload waits for the app's other actions (a.op); it acts
		// only if this process is still the slot's by then.
		run := in.run
		return func() { s.reloadForMemory(in, run, ev, why) }
	}
	ev = s.restartForMemoryLocked(in, ev, why)
	return func() {
		if s.deps.OnLimit != nil {
			s.deps.OnLimit(ev)
		}
	}
}

// restartForMemoryLocked hands in, over its limit, to the restart policy
// (failLocked) and tells what the policy will do.
func (s *Supervisor) restartForMemoryLocked(in *instance, ev LimitEvent, why string) LimitEvent {
	a := in.app
	uptime := s.deps.Clock.Now().Sub(in.started)
	// What failLocked's stop leads to: the same decision, made now.
	d := decide(&a.spec, exitBySignal(syscall.SIGABRT), why, uptime, in.unstable, in.backoff)
	ev.Action = limitStop
	if d.restart {
		ev.Action = limitRestart
	}
	s.limitActsLocked(in, &ev, d.reason)
	s.failLocked(in, why, false)
	in.lastRestart.Reason = why + "; action: " + ev.Action
	return ev
}

// limitActsLocked records that the daemon acts on a memory limit now: the
// daemon's log, the bus, and ev's time.
func (s *Supervisor) limitActsLocked(in *instance, ev *LimitEvent, reason string) {
	ev.Time = s.deps.Clock.Now()
	s.deps.Log.Warn("memory limit", "app", ev.App, "instance", ev.Slot, "pid", ev.PID, "rss", ev.RSS, "limit", ev.Limit, "action", ev.Action)
	s.eventLocked(in.app, in, api.EventMemoryLimit, func(e *api.Event) { e.Reason = reason })
}

// reloadForMemory reloads the slot of in, whose process run went over its
// memory limit, once the app's other actions are done. If that process is
// no longer the slot's by then (a user's restart, a crash and its
// restart), or is being stopped, nothing is done. If the reload fails (the
// new process exits, or is not ready in time), the process goes to the
// restart policy, as one over its limit without sockets does.
func (s *Supervisor) reloadForMemory(in *instance, run uint64, ev LimitEvent, why string) {
	a := in.app
	s.mu.Lock()
	if a.reloading {
		// A reload (a user's) replaces the process anyway.
		if in.run == run {
			in.memAction = false
		}
		s.mu.Unlock()
		return
	}
	a.reloading = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		a.reloading = false
		s.mu.Unlock()
	}()
	a.op.Lock()
	defer a.op.Unlock()
	s.mu.Lock()
	if in.run != run || !in.memAction || in.stopping || in.pid == 0 || s.closing || a.deleted ||
		in.slot >= len(a.insts) || a.insts[in.slot] != in || a.socks == nil {
		// Replaced, being stopped, or without sockets now: the decision no
		// longer holds. The next pass looks at whatever runs.
		if in.run == run {
			in.memAction = false
		}
		s.mu.Unlock()
		return
	}
	ev.Action = limitReload
	in.lastRestart = &api.RestartInfo{Reason: why + "; action: " + limitReload, Time: s.deps.Clock.Now()}
	s.limitActsLocked(in, &ev, why+"; reloading its slot: a new process first")
	s.mu.Unlock()
	if s.deps.OnLimit != nil {
		s.deps.OnLimit(ev)
	}
	err := s.replaceSlots(a, []int{in.slot}, run)
	if err == nil || errors.Is(err, errSlotChanged) {
		return
	}
	s.deps.Log.Error("memory limit: reload failed; restarting by the restart policy", "app", ev.App, "instance", ev.Slot, "err", err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.run == run && in.pid != 0 && !in.stopping && !s.closing && !a.deleted &&
		in.slot < len(a.insts) && a.insts[in.slot] == in {
		s.restartForMemoryLocked(in, ev, why+"; the reload failed: "+err.Error())
	}
}

// ownerOf tells which run an orphan process belongs to, from the TEND_RUN
// its environment carries (see ownership.go), for the sampler.
func (s *Supervisor) ownerOf(pid int) (uint64, bool) {
	env, err := procfs.Environ(pid)
	if err != nil {
		return 0, false
	}
	home := []byte("TEND_HOME=" + s.deps.Home)
	var run uint64
	sameHome := false
	for kv := range strings.SplitSeq(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "TEND_RUN="); ok {
			run, _ = strconv.ParseUint(v, 10, 64)
		}
		sameHome = sameHome || kv == string(home)
	}
	return run, run != 0 && sameHome
}

// Monitor returns the apps with their latest figures and the host's; with
// a history app, also the last points samples of each of its slots.
func (s *Supervisor) Monitor(historyApp string, points int) (api.Monitor, error) {
	s.mon.watched.Store(time.Now().UnixNano())
	out := api.Monitor{Time: time.Now(), Interval: api.Duration(s.sampleEvery()), Apps: s.List()}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.mon.hostLast
	out.Host = api.HostInfo{CPU: h.CPU, Cores: h.Cores, MemTotal: h.MemTotal, MemAvailable: h.MemAvailable}
	if historyApp == "" {
		return out, nil
	}
	a := s.byNameLocked(historyApp)
	if a == nil {
		for _, x := range s.apps {
			if strconv.Itoa(x.id) == historyApp {
				a = x
			}
		}
	}
	if a == nil {
		return out, fmt.Errorf("app %q: %w", historyApp, api.ErrNotFound)
	}
	if points <= 0 {
		points = DefaultHistory
	}
	for slot, r := range a.history {
		h := api.History{App: a.spec.Name, Instance: slot}
		for _, p := range r.Last(points, time.Time{}) {
			h.Time = append(h.Time, p.T)
			h.CPU = append(h.CPU, p.CPU)
			h.Memory = append(h.Memory, p.RSS)
			h.Conns = append(h.Conns, p.Conns)
		}
		out.History = append(out.History, h)
	}
	return out, nil
}

// SamplerStats are the sampler's own figures, for /metrics.
type SamplerStats struct {
	Passes   int
	Last     time.Duration
	Busy     time.Duration
	Listings int
	Every    time.Duration
}

// SamplerStats returns what the sampler has cost so far. It does not wait
// for a pass under way.
func (s *Supervisor) SamplerStats() SamplerStats {
	m := &s.mon
	return SamplerStats{
		Passes: int(m.passes.Load()), Last: time.Duration(m.lastDur.Load()), Busy: time.Duration(m.busy.Load()),
		Listings: int(m.listings.Load()), Every: s.sampleEvery(),
	}
}

// listenersLocked returns a's held sockets with their accept queues.
func (a *app) listenersLocked() []api.ListenerInfo {
	k := a.socks
	if k == nil {
		return nil
	}
	var out []api.ListenerInfo
	add := func(addr string, slot int, f *os.File) {
		li := api.ListenerInfo{Addr: addr, Slot: slot}
		li.Queue, li.Backlog, _ = rawnet.Queue(f)
		out = append(out, li)
	}
	for i, f := range k.shared {
		add(k.addrs[i].String(), -1, f)
	}
	for slot, set := range k.slots {
		for i, f := range set {
			if slot > 0 && f == k.slots[0][i] {
				continue // a unix socket, shared by every slot
			}
			add(k.addrs[i].String(), slot, f)
		}
	}
	for i, p := range k.proxies {
		li := api.ListenerInfo{Addr: k.addrs[i].String(), Slot: -1}
		li.Queue, li.Backlog, _ = p.Queue()
		out = append(out, li)
	}
	return out
}

// appMetricsLocked returns the metrics in reported, sorted by name.
func (in *instance) appMetricsLocked() []api.AppMetric {
	if len(in.metrics) == 0 {
		return nil
	}
	out := make([]api.AppMetric, 0, len(in.metrics))
	for name, m := range in.metrics {
		out = append(out, api.AppMetric{Name: name, Type: m.typ, Value: m.value})
	}
	slices.SortFunc(out, func(x, y api.AppMetric) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// mib writes a size in MiB, for messages.
func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
