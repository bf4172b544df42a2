package supervisor

import (
	"fmt"
	"syscall"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/proc"
	"github.com/tend-pm/tend/internal/procfs"
	"github.com/tend-pm/tend/internal/state"
)

// Restore loads the apps of a state file written by a previous daemon and
// brings each back to the state it was in. Processes the previous daemon
// recorded that still run are stopped — with the app's own stop sequence —
// before replacements start, so no app ever runs twice. (Their output
// pipes died with the old daemon, so they cannot be adopted as they are.)
// Restore returns at once; the takeovers run in the background and the
// instances show as launching until they complete.
func (s *Supervisor) Restore(f *state.File) error {
	s.mu.Lock()
	type takeover struct {
		a   *app
		old []state.Instance
	}
	var todo []takeover
	maxID := -1
	for _, sa := range f.Apps {
		if s.byNameLocked(sa.Spec.Name) != nil {
			s.mu.Unlock()
			return fmt.Errorf("state: app %q appears twice", sa.Spec.Name)
		}
		a, err := s.addLocked(sa.Spec, sa.Created)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		a.id, a.running = sa.ID, sa.Running
		maxID = max(maxID, sa.ID)
		for _, si := range sa.Instances {
			if si.Slot < len(a.insts) {
				a.insts[si.Slot].restarts = si.Restarts
			}
		}
		if a.running {
			for _, in := range a.insts {
				in.status, in.reason = api.StatusLaunching, "taking over from the previous daemon"
			}
		}
		todo = append(todo, takeover{a, sa.Instances})
	}
	s.nextID = max(f.NextID, maxID+1)
	s.mu.Unlock()
	for _, t := range todo {
		go s.takeover(t.a, t.old)
	}
	return nil
}

// takeover stops what the previous daemon left running for a, then starts
// a if it should run.
func (s *Supervisor) takeover(a *app, old []state.Instance) {
	a.op.Lock()
	defer a.op.Unlock()
	for _, o := range old {
		if ours(o) {
			s.deps.Log.Info("stopping a process left by the previous daemon", "app", a.spec.Name, "instance", o.Slot, "pid", o.PID)
			stopForeignGroup(o.PID, &a.spec)
		}
	}
	s.mu.Lock()
	if !a.deleted && a.running {
		s.startLocked(a)
	}
	s.mu.Unlock()
	s.persist()
}

// ours reports whether the process group recorded in o still holds
// processes from the previous daemon: its leader is the very process that
// was recorded (same start time), or, the leader gone, no other process
// took its pid.
func ours(o state.Instance) bool {
	if o.PID <= 1 {
		return false
	}
	st, err := procfs.ReadStat(o.PID)
	if err == nil {
		return st.StartTicks == o.StartTicks && !st.Zombie()
	}
	return len(liveMembers(o.PID)) > 0
}

// liveMembers returns the processes of group pgid that are not zombies.
// Orphans of a dead daemon go to init, which may be slow to reap them, so
// a zombie must not count as a process still running.
func liveMembers(pgid int) []int {
	procs, err := procfs.Scan()
	if err != nil {
		return nil
	}
	var out []int
	for _, p := range procs {
		if p.PGRP == pgid && !p.Zombie() {
			out = append(out, p.PID)
		}
	}
	return out
}

// stopForeignGroup runs the stop sequence on a process group this daemon
// did not start and so cannot wait for: it polls /proc until the group is
// empty.
func stopForeignGroup(pgid int, spec *api.AppSpec) {
	sig, _ := api.ParseSignal(spec.KillSignal)
	_ = proc.SignalGroup(pgid, sig)
	if waitGone(pgid, spec.KillTimeout.Std()) {
		return
	}
	_ = proc.SignalGroup(pgid, syscall.SIGKILL)
	waitGone(pgid, 2*time.Second)
}

func waitGone(pgid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if len(liveMembers(pgid)) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
