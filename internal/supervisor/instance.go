package supervisor

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/clock"
	"github.com/tend-pm/tend/internal/proc"
	"github.com/tend-pm/tend/internal/procfs"
)

// instance is one slot of an app. Every field is guarded by Supervisor.mu.
type instance struct {
	app  *app
	slot int

	status string
	reason string

	pid        int // 0 when no process runs in the slot
	pgid       int // process group of the last process; it may outlive pid
	startTicks uint64
	started    time.Time

	restarts int
	unstable int
	backoff  time.Duration
	lastExit *api.ExitInfo

	restartTimer clock.Timer
	nextRestart  time.Time

	// A stop in progress: stopping is set until the process and everything
	// left in its group are gone; then stopDone is closed.
	stopping  bool
	stopWhy   string
	stopDone  chan struct{}
	killTimer clock.Timer
	// escaped are descendants that left the process group (setsid) and
	// are stopped with it all the same.
	escaped []int

	// cpuPrev and cpuAt are the tree's CPU time at the last sample, for
	// the CPU percentage of `tend ls`.
	cpuPrev  time.Duration
	cpuAt    time.Time // wall time, even under a fake clock: CPU is real
	cpuLast  float64
	cpuValid bool // cpuLast covers a full interval, not just the start
}

// startLocked starts every instance of a that is not running.
func (s *Supervisor) startLocked(a *app) {
	a.running = true
	for _, in := range a.insts {
		if in.pid == 0 && !in.stopping {
			s.cancelRestartLocked(in)
			if in.status == api.StatusErrored || in.status == api.StatusStopped {
				in.unstable, in.backoff = 0, 0
			}
			s.spawnLocked(in)
		}
	}
}

// spawnLocked starts the process of in.
func (s *Supervisor) spawnLocked(in *instance) {
	a := in.app
	spec := &a.spec
	in.status, in.reason = api.StatusLaunching, ""
	outR, outW, err := os.Pipe()
	if err != nil {
		s.failSpawnLocked(in, err)
		return
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		s.failSpawnLocked(in, err)
		return
	}
	cmd := proc.Cmd{
		Argv:  spec.Command,
		Dir:   spec.Cwd,
		Env:   api.InstanceEnv(spec, in.slot, s.deps.Home),
		Files: []*os.File{nil, outW, errW},
	}
	pid, err := s.deps.Reaper.Start(cmd, func(e proc.Exit) { s.onExit(in, e) })
	// The child has its copies; the daemon keeps only the read ends, so
	// the pipes reach EOF when the last process holding them exits.
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		s.failSpawnLocked(in, err)
		return
	}
	go a.logs.Copy(in.slot, "out", outR)
	go a.logs.Copy(in.slot, "err", errR)
	in.pid, in.pgid = pid, pid
	in.started = s.deps.Clock.Now()
	in.startTicks = 0
	if st, err := procfs.ReadStat(pid); err == nil {
		in.startTicks = st.StartTicks
	}
	in.cpuPrev, in.cpuAt, in.cpuLast, in.cpuValid = 0, time.Now(), 0, false
	in.status = api.StatusOnline
	s.deps.Log.Info("started", "app", spec.Name, "instance", in.slot, "pid", pid)
}

// failSpawnLocked records a process that could not be started at all (the
// program vanished, or lost its execute permission). Retrying would fail
// the same way, so the instance is errored with the reason.
func (s *Supervisor) failSpawnLocked(in *instance, err error) {
	in.pid = 0
	in.status = api.StatusErrored
	in.reason = fmt.Sprintf("cannot start: %v", err)
	s.deps.Log.Error("start failed", "app", in.app.spec.Name, "instance", in.slot, "err", err)
}

// onExit handles the end of the process of in. It runs in the Reaper's
// goroutine.
func (s *Supervisor) onExit(in *instance, e proc.Exit) {
	s.mu.Lock()
	if in.pid != e.PID {
		s.mu.Unlock()
		return
	}
	now := s.deps.Clock.Now()
	uptime := now.Sub(in.started)
	in.lastExit = &api.ExitInfo{Code: e.Code(), Time: now, Uptime: api.Duration(uptime)}
	if sig := e.Signal(); sig != 0 {
		in.lastExit.Signal = api.SignalName(sig)
	}
	in.pid = 0
	a := in.app
	s.deps.Log.Info("exited", "app", a.spec.Name, "instance", in.slot, "pid", e.PID, "how", e.String(), "uptime", uptime)
	if in.stopping {
		s.checkStoppedLocked(in)
		s.mu.Unlock()
		return
	}
	// The main process died on its own. Whatever it left in its process
	// group gets the stop sequence, as systemd does for a service's
	// cgroup, so a restarted instance never competes with leftovers.
	if proc.GroupExists(in.pgid) {
		s.reapLeftoversLocked(in)
	}
	if a.deleted || !a.running {
		in.status, in.reason = api.StatusStopped, e.String()
		s.mu.Unlock()
		return
	}
	d := decide(&a.spec, e, uptime, in.unstable, in.backoff)
	in.unstable, in.backoff = d.unstable, d.backoff
	in.status, in.reason = d.status, d.reason
	if d.restart {
		in.restarts++
		if d.delay == 0 {
			s.spawnLocked(in)
		} else {
			in.nextRestart = now.Add(d.delay)
			in.restartTimer = s.deps.Clock.AfterFunc(d.delay, func() { s.restartDue(in) })
		}
	}
	s.mu.Unlock()
	s.persist()
}

// reapLeftoversLocked sends the stop sequence to what remains of the
// process group of in after its main process exited on its own.
func (s *Supervisor) reapLeftoversLocked(in *instance) {
	pgid, spec := in.pgid, &in.app.spec
	sig, _ := api.ParseSignal(spec.KillSignal)
	_ = proc.SignalGroup(pgid, sig)
	s.deps.Clock.AfterFunc(spec.KillTimeout.Std(), func() {
		if proc.GroupExists(pgid) {
			_ = proc.SignalGroup(pgid, syscall.SIGKILL)
		}
	})
}

// restartDue fires when a waiting restart is due.
func (s *Supervisor) restartDue(in *instance) {
	s.mu.Lock()
	if in.status != api.StatusWaitingRestart || in.pid != 0 || in.app.deleted {
		s.mu.Unlock()
		return
	}
	in.restartTimer = nil
	in.nextRestart = time.Time{}
	s.spawnLocked(in)
	s.mu.Unlock()
	s.persist()
}

func (s *Supervisor) cancelRestartLocked(in *instance) {
	if in.restartTimer != nil {
		in.restartTimer.Stop()
		in.restartTimer = nil
	}
	in.nextRestart = time.Time{}
}

// stopLocked begins the stop sequence of in and returns a channel closed
// when it is complete: kill_signal to the process group (and to any
// descendant that left it), then SIGKILL to all of them after
// kill_timeout. A second stop while one runs waits for the same end.
func (s *Supervisor) stopLocked(in *instance, why string) <-chan struct{} {
	s.cancelRestartLocked(in)
	if in.stopping {
		return in.stopDone
	}
	if in.pid == 0 && !proc.GroupExists(in.pgid) {
		in.status, in.reason = api.StatusStopped, why
		done := make(chan struct{})
		close(done)
		return done
	}
	spec := &in.app.spec
	in.stopping, in.stopWhy = true, why
	in.stopDone = make(chan struct{})
	in.status, in.reason = api.StatusStopping, why
	if in.pid > 0 {
		in.escaped = escapedDescendants(in.pid, in.pgid)
	}
	sig, _ := api.ParseSignal(spec.KillSignal) // validated with the spec
	s.signalAllLocked(in, sig)
	in.killTimer = s.deps.Clock.AfterFunc(spec.KillTimeout.Std(), func() { s.escalate(in) })
	s.checkStoppedLocked(in)
	return in.stopDone
}

func (s *Supervisor) signalAllLocked(in *instance, sig syscall.Signal) {
	if err := proc.SignalGroup(in.pgid, sig); err != nil {
		s.deps.Log.Warn("signal", "app", in.app.spec.Name, "err", err)
	}
	for _, pid := range in.escaped {
		_ = proc.Signal(pid, sig)
	}
}

// escalate sends SIGKILL to an instance that outlived kill_timeout.
func (s *Supervisor) escalate(in *instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !in.stopping {
		return
	}
	s.deps.Log.Info("kill_timeout elapsed; sending SIGKILL", "app", in.app.spec.Name, "instance", in.slot)
	s.signalAllLocked(in, syscall.SIGKILL)
	in.killTimer = nil
	// Processes killed here that are not the daemon's children produce no
	// SIGCHLD; look again shortly so the stop still completes.
	s.recheckLater(in, 20*time.Millisecond)
}

// recheckLater looks at a stopping instance again after d (real time:
// this only waits for the kernel to finish killing processes).
func (s *Supervisor) recheckLater(in *instance, d time.Duration) {
	time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if in.stopping && !s.checkStoppedLocked(in) && d < time.Second {
			s.recheckLater(in, d*2)
		}
	})
}

// checkStoppedLocked completes the stop of in if nothing of it is left,
// and reports whether it did.
func (s *Supervisor) checkStoppedLocked(in *instance) bool {
	if !in.stopping || in.pid != 0 || proc.GroupExists(in.pgid) {
		return false
	}
	for _, pid := range in.escaped {
		if procfs.Alive(pid, 0) {
			return false
		}
	}
	if in.killTimer != nil {
		in.killTimer.Stop()
		in.killTimer = nil
	}
	in.stopping = false
	in.escaped = nil
	in.status, in.reason = api.StatusStopped, in.stopWhy
	close(in.stopDone)
	return true
}

// escapedDescendants lists the descendants of pid outside the process
// group pgid: programs that called setsid to daemonize. They are stopped
// with the instance all the same.
func escapedDescendants(pid, pgid int) []int {
	procs, err := procfs.Scan()
	if err != nil {
		return nil
	}
	byPID := make(map[int]procfs.Stat, len(procs))
	for _, p := range procs {
		byPID[p.PID] = p
	}
	var out []int
	for _, d := range procfs.Tree(procs, pid)[1:] {
		if p, ok := byPID[d]; ok && p.PGRP != pgid && !p.Zombie() {
			out = append(out, d)
		}
	}
	return out
}
