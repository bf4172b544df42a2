package supervisor

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tend-pm/tend/internal/api"
)

// errReloadFailed marks a reload that stopped because a new process
// failed; the old processes of the slots not yet replaced keep running.
var errReloadFailed = fmt.Errorf("reload failed: %w", api.ErrFailed)

// errSlotChanged: the process a slot's replacement was for is no longer
// the slot's (see replaceSlots' only); nothing was replaced.
var errSlotChanged = errors.New("the slot's process changed")

// reloadApp replaces every process of a without downtime (DESIGN 7). For
// an app whose sockets the daemon holds, each slot gets its new process
// next to the old one, which is stopped only once the new one is ready:
// both accept on the slot's socket meanwhile, so no connection is refused.
// max_surge slots are replaced at once. The first new process that fails
// (exits, or is not ready within listen_timeout) is stopped and the reload
// ends there with an error naming the slot; the slots not yet replaced
// keep their old processes.
//
// An app without sockets is reloaded slot by slot as stop-then-start (a
// rolling restart): it may bind a fixed port itself, which a second
// process could not.
func (s *Supervisor) reloadApp(a *app, spec *api.AppSpec, req api.ActionRequest) error {
	s.mu.Lock()
	if a.reloading {
		s.mu.Unlock()
		return fmt.Errorf("app %q is already being reloaded; wait for that reload to end: %w", a.spec.Name, api.ErrConflict)
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
	gone := s.closing || a.deleted
	s.mu.Unlock()
	if gone {
		// Deleted (or the daemon is stopping) while this reload waited.
		return errClosing
	}

	if spec != nil && !rollable(&a.spec, spec) {
		// New addresses, balancing or instance count: no rolling
		// replacement can keep the old sockets, so restart.
		return s.restartLocked(a, spec, req)
	}
	var oldLogs AppLogs
	if spec != nil {
		lg, err := s.deps.Logs.Open(spec)
		if err != nil {
			return fmt.Errorf("app %q: open logs: %w", spec.Name, err)
		}
		s.mu.Lock()
		oldLogs = a.logs
		a.logs, a.spec = lg, *spec
		s.mu.Unlock()
	}
	// The old processes write through the old files' references, which
	// close once those processes are gone.
	defer func() {
		if oldLogs != nil {
			s.closeLogs(oldLogs)
		}
	}()
	s.mu.Lock()
	if req.UpdateEnv {
		a.spec.BaseEnv = filterEnv(req.BaseEnv, &a.spec)
	}
	if s.closing || a.deleted {
		s.mu.Unlock()
		return errClosing
	}
	if !a.running {
		err := s.startLocked(a)
		s.mu.Unlock()
		return err
	}
	surge := max(1, a.spec.MaxSurge)
	n := len(a.insts)
	held := a.socks != nil
	s.eventLocked(a, nil, api.EventReloading, nil)
	s.mu.Unlock()

	for first := 0; first < n; first += surge {
		slots := make([]int, 0, surge)
		for slot := first; slot < min(first+surge, n); slot++ {
			slots = append(slots, slot)
		}
		var err error
		if held {
			err = s.replaceSlots(a, slots, 0)
		} else {
			err = s.restartSlots(a, slots)
		}
		if err != nil {
			s.mu.Lock()
			s.eventLocked(a, nil, api.EventReloadFailed, func(e *api.Event) { e.Reason = err.Error() })
			s.mu.Unlock()
			return fmt.Errorf("app %q: %w; %w", a.spec.Name, err, errReloadFailed)
		}
	}
	s.mu.Lock()
	s.eventLocked(a, nil, api.EventReloaded, nil)
	s.mu.Unlock()
	return nil
}

// rollable reports whether the app can go from spec old to spec new by a
// rolling replacement.
func rollable(old, new *api.AppSpec) bool {
	return slices.Equal(old.Listen, new.Listen) && old.Balance == new.Balance &&
		old.ProxyProtocol == new.ProxyProtocol && old.Instances == new.Instances
}

// replaceSlots starts a new process next to the old one in each slot,
// waits until they are ready, swaps them in and stops the old ones. With
// only not 0 (a memory-limit reload of one slot), it replaces nothing and
// returns errSlotChanged unless the slot still runs the process only
// names, not being stopped: the caller checked that, but a crash restart
// needs no a.op and may have come in between.
func (s *Supervisor) replaceSlots(a *app, slots []int, only uint64) error {
	type step struct {
		slot      int
		old, cand *instance
		done      chan error
		err       error
	}
	steps := make([]*step, 0, len(slots))
	s.mu.Lock()
	if only != 0 {
		for _, slot := range slots {
			if slot >= len(a.insts) || a.insts[slot].run != only || a.insts[slot].pid == 0 || a.insts[slot].stopping {
				s.mu.Unlock()
				return errSlotChanged
			}
		}
	}
	for _, slot := range slots {
		old := a.insts[slot]
		st := &step{slot: slot, old: old, done: make(chan error, 1)}
		cand := &instance{app: a, slot: slot, status: api.StatusStopped, candidate: true,
			restarts: old.restarts + 1, lastExit: old.lastExit, lastRestart: old.lastRestart}
		cand.onReady = func(err error) { st.done <- err }
		st.cand = cand
		a.extra = append(a.extra, cand)
		if err := s.spawnLocked(cand); err != nil {
			cand.onReady = nil
			cand.status, cand.reason = api.StatusErrored, fmt.Sprintf("cannot start: %v", err)
			st.done <- fmt.Errorf("cannot start: %w", err)
		}
		steps = append(steps, st)
	}
	s.mu.Unlock()
	for _, st := range steps {
		select {
		case st.err = <-st.done:
		case <-s.shutdown:
			st.err = errors.New("the daemon is shutting down")
		}
	}

	type retire struct {
		in  *instance
		run uint64
	}
	var olds []retire
	var waits []<-chan struct{}
	var errs []error
	s.mu.Lock()
	for _, st := range steps {
		if st.err == nil && st.cand.pid == 0 {
			st.err = errors.New("it exited just after it was ready")
		}
		if st.err != nil {
			errs = append(errs, fmt.Errorf("the new process of slot %d failed: %w", st.slot, st.err))
			waits = append(waits, s.stopLocked(st.cand, "reload failed: "+st.err.Error()))
			continue
		}
		st.cand.candidate = false
		a.insts[st.slot] = st.cand
		a.extra = slices.DeleteFunc(a.extra, func(x *instance) bool { return x == st.cand })
		a.extra = append(a.extra, st.old)
		olds = append(olds, retire{st.old, st.old.run})
	}
	s.mu.Unlock()

	// Old processes: in proxy mode, no new connections and a short wait
	// for the open ones; then the stop sequence.
	for _, o := range olds {
		s.mu.Lock()
		ps := o.in.proxies()
		running := o.in.pid != 0
		s.mu.Unlock()
		if running {
			s.drain(o.in, o.run, ps, drainTimeout(&a.spec))
		}
	}
	s.mu.Lock()
	for _, o := range olds {
		waits = append(waits, s.stopLocked(o.in, "replaced by a reload"))
	}
	s.mu.Unlock()
	for _, c := range waits {
		<-c
	}
	s.mu.Lock()
	for _, st := range steps {
		a.extra = slices.DeleteFunc(a.extra, func(x *instance) bool {
			return (x == st.old || x == st.cand) && x.pid == 0 && !x.stopping
		})
	}
	s.mu.Unlock()
	s.persist()
	return errors.Join(errs...)
}

// restartSlots stops and starts each slot, waiting for the new process to
// be ready.
func (s *Supervisor) restartSlots(a *app, slots []int) error {
	var waits []<-chan struct{}
	s.mu.Lock()
	for _, slot := range slots {
		waits = append(waits, s.stopLocked(a.insts[slot], "reloading"))
	}
	s.mu.Unlock()
	for _, c := range waits {
		<-c
	}
	dones := make([]chan error, len(slots))
	s.mu.Lock()
	for i, slot := range slots {
		in := a.insts[slot]
		done := make(chan error, 1)
		dones[i] = done
		in.restarts++
		in.unstable, in.backoff = 0, 0
		in.onReady = func(err error) { done <- err }
		if err := s.spawnLocked(in); err != nil {
			in.onReady = nil
			in.status, in.reason = api.StatusErrored, fmt.Sprintf("cannot start: %v", err)
			done <- fmt.Errorf("cannot start: %w", err)
		}
	}
	s.mu.Unlock()
	var errs []error
	for i, d := range dones {
		var err error
		select {
		case err = <-d:
		case <-s.shutdown:
			err = errors.New("the daemon is shutting down")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("the new process of slot %d failed: %w", slots[i], err))
		}
	}
	s.persist()
	return errors.Join(errs...)
}

// scaleApp changes the number of instances of a: how is "N", "+N" or
// "-N". New slots start (if the app runs); removed slots, from the top,
// are stopped. With reuseport sockets, new connections are first steered
// away from the slots being removed, and what is still queued on their
// sockets when their processes are gone is handed to the slots that stay,
// so scaling down drops nothing.
func (s *Supervisor) scaleApp(a *app, how string) error {
	a.op.Lock()
	defer a.op.Unlock()
	s.mu.Lock()
	cur := len(a.insts)
	n, err := scaleTarget(how, cur)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("app %q: %w: %w", a.spec.Name, err, api.ErrInvalid)
	}
	if s.closing {
		s.mu.Unlock()
		return errClosing
	}
	if n >= cur {
		var first error
		for slot := cur; slot < n; slot++ {
			if a.socks != nil && a.socks.balance == api.BalanceReusePort {
				if err := a.socks.addSlot(); err != nil {
					first = fmt.Errorf("app %q: %w", a.spec.Name, err)
					break
				}
			}
			in := &instance{app: a, slot: slot, status: api.StatusStopped}
			a.insts = append(a.insts, in)
			a.spec.Instances = len(a.insts)
			if a.running {
				if err := s.spawnLocked(in); err != nil {
					in.status, in.reason = api.StatusErrored, fmt.Sprintf("cannot start: %v", err)
					if first == nil {
						first = fmt.Errorf("app %q, instance %d: %s", a.spec.Name, slot, in.reason)
					}
				}
			}
		}
		// New slots get connections once they are ready.
		s.steerLocked(a)
		s.eventLocked(a, nil, api.EventScale, func(e *api.Event) { e.Instances = len(a.insts) })
		s.mu.Unlock()
		s.persist()
		return first
	}
	removed := slices.Clone(a.insts[n:])
	a.insts = a.insts[:n]
	a.spec.Instances = n
	a.extra = append(a.extra, removed...)
	s.steerLocked(a)
	s.mu.Unlock()
	s.persist()
	// Top slot first, so the sockets leave their groups from the end.
	for i := len(removed) - 1; i >= 0; i-- {
		in := removed[i]
		s.mu.Lock()
		ps, run := in.proxies(), in.run
		s.mu.Unlock()
		s.drain(in, run, ps, drainTimeout(&a.spec))
		s.mu.Lock()
		c := s.stopLocked(in, "scaled down")
		s.mu.Unlock()
		<-c
		s.mu.Lock()
		files, addrs := a.socks.detachTopSlot()
		a.extra = slices.DeleteFunc(a.extra, func(x *instance) bool { return x == in })
		s.mu.Unlock()
		s.drainClosed(files, addrs)
	}
	s.mu.Lock()
	s.steerLocked(a)
	s.eventLocked(a, nil, api.EventScale, func(e *api.Event) { e.Instances = len(a.insts) })
	s.mu.Unlock()
	return nil
}

// scaleTarget reads "N", "+N" or "-N" against the current count.
func scaleTarget(how string, cur int) (int, error) {
	how = strings.TrimSpace(how)
	n, err := strconv.Atoi(how)
	if err != nil {
		return 0, fmt.Errorf("scale to %q: give a number, +N or -N", how)
	}
	if strings.HasPrefix(how, "+") || strings.HasPrefix(how, "-") {
		n += cur
	}
	if n < 1 {
		return 0, fmt.Errorf("scale to %d instances: an app needs at least 1 (use `tend stop` to stop it)", n)
	}
	if n > api.MaxInstances {
		return 0, fmt.Errorf("scale to %d instances: at most %d", n, api.MaxInstances)
	}
	return n, nil
}
