package supervisor

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
// max_memory_restart and what the daemon does about it. The same goes out
// on the bus as a memory_limit event (api.EventMemoryLimit); Deps.OnLimit
// hears it in-process.
type LimitEvent struct {
	Time   time.Time
	App    string
	Slot   int
	PID    int
	RSS    uint64
	Limit  uint64
	Action string // "reload" (a new process first) or "restart"
}

// monitor is the sampler's state. mu serializes passes; what a pass
// learns about instances is stored in them under Supervisor.mu.
type monitor struct {
	mu      sync.Mutex
	trees   *sample.Trees
	host    *sample.Host
	passes  int
	lastDur time.Duration
	busy    time.Duration // total time spent in passes
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

// RunSampler samples at the cadence until ctx is done.
func (s *Supervisor) RunSampler(ctx context.Context) {
	every := s.sampleEvery()
	if every <= 0 {
		return
	}
	for {
		start := time.Now()
		s.Sample()
		wait := make(chan struct{})
		t := s.deps.Clock.AfterFunc(max(every-time.Since(start), every/10), func() { close(wait) })
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wait:
		}
	}
}

// target is one process a pass measures.
type target struct {
	in  *instance
	run uint64
}

// Sample runs one pass of the sampler: it measures every running
// instance and the host, records history, and acts on memory limits.
func (s *Supervisor) Sample() {
	m := &s.mon
	m.mu.Lock()
	defer m.mu.Unlock()
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
	withFDs := watched && m.passes%fdEvery == 0
	usage := m.trees.Measure(roots, sample.Options{FDs: withFDs, Eager: watched, ListEvery: listEvery})
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
	m.passes++
	m.lastDur = time.Since(t0)
	m.busy += m.lastDur
}

// recordLocked stores what a pass measured of in's tree.
func (in *instance) recordLocked(u sample.Usage, now time.Time, withFDs bool) {
	if in.sampled && now.After(in.usageAt) && u.CPU >= in.usage.CPU {
		in.cpuPct = float64(u.CPU-in.usage.CPU) / float64(now.Sub(in.usageAt)) * 100
	} else if !in.sampled {
		// First sample: the average since the process started.
		if up := now.Sub(in.startedWall); up > 0 {
			in.cpuPct = float64(u.CPU) / float64(up) * 100
		}
	}
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

// checkMemoryLocked returns the action to take if in is over its app's
// max_memory_restart: a graceful reload of its slot where the daemon holds
// the app's sockets (the new process takes over before the old one
// stops), a restart by the restart policy otherwise.
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
	ev := LimitEvent{Time: s.deps.Clock.Now(), App: a.spec.Name, Slot: in.slot, PID: in.pid, RSS: u.RSS, Limit: limit, Action: "restart"}
	if a.socks != nil {
		ev.Action = "reload"
	}
	s.deps.Log.Warn("memory limit", "app", a.spec.Name, "instance", in.slot, "pid", in.pid, "rss", u.RSS, "limit", limit, "action", ev.Action)
	in.lastRestart = &api.RestartInfo{Reason: why, Time: ev.Time}
	s.eventLocked(a, in, api.EventMemoryLimit, func(e *api.Event) { e.Reason = why + "; " + ev.Action })
	if ev.Action == "restart" {
		s.failLocked(in, why)
	}
	return func() {
		if s.deps.OnLimit != nil {
			s.deps.OnLimit(ev)
		}
		if ev.Action == "reload" {
			if err := s.reloadSlot(a, in, why); err != nil {
				s.deps.Log.Error("memory limit: reload failed", "app", a.spec.Name, "instance", in.slot, "err", err)
				s.mu.Lock()
				in.memAction = false
				s.mu.Unlock()
			}
		}
	}
}

// reloadSlot replaces the process of in's slot by a new one, ready before
// the old one stops.
func (s *Supervisor) reloadSlot(a *app, in *instance, why string) error {
	s.mu.Lock()
	if a.reloading {
		s.mu.Unlock()
		return fmt.Errorf("app %q is being reloaded: %w", a.spec.Name, api.ErrConflict)
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
	gone := s.closing || a.deleted || in.slot >= len(a.insts) || a.insts[in.slot] != in || in.pid == 0 || a.socks == nil
	s.mu.Unlock()
	if gone {
		return nil
	}
	return s.replaceSlots(a, []int{in.slot})
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

// SamplerStats returns what the sampler has cost so far.
func (s *Supervisor) SamplerStats() SamplerStats {
	m := &s.mon
	m.mu.Lock()
	defer m.mu.Unlock()
	st := SamplerStats{Passes: m.passes, Last: m.lastDur, Busy: m.busy, Every: s.sampleEvery()}
	if m.trees != nil {
		st.Listings = m.trees.Listings
	}
	return st
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
