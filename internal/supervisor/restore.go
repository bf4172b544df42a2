package supervisor

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/proc"
	"github.com/tend-pm/tend/internal/procfs"
	"github.com/tend-pm/tend/internal/state"
)

// Restore loads the apps of a state file written by a previous daemon and
// brings each back to the state it was in. Processes a previous daemon of
// this TEND_HOME left running — found by the markers in their environment,
// not by pids, which the kernel reuses — are stopped with their app's stop
// sequence before replacements start, so no app ever runs twice. (Their
// output pipes died with the old daemon, so they cannot be adopted as they
// are.) Restore returns at once; the takeovers run in the background and
// the instances show as launching until they complete.
func (s *Supervisor) Restore(f *state.File) error {
	s.mu.Lock()
	var apps []*app
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
		if a.running {
			for _, in := range a.insts {
				in.status, in.reason = api.StatusLaunching, "taking over from the previous daemon"
			}
		}
		for _, si := range sa.Instances {
			if si.Slot >= 0 && si.Slot < len(a.insts) {
				in := a.insts[si.Slot]
				in.restarts = si.Restarts
				if si.Errored != "" && a.running {
					in.status, in.reason = api.StatusErrored, si.Errored
				}
			}
		}
		apps = append(apps, a)
	}
	s.nextID = max(f.NextID, maxID+1)
	s.mu.Unlock()

	left := s.leftBehind()
	for _, a := range apps {
		go s.takeover(a, left[a.spec.Name])
		delete(left, a.spec.Name)
	}
	// Processes of apps the state does not know (deleted, or started just
	// before the old daemon died) are stopped too.
	for name, members := range left {
		s.deps.Log.Info("stopping processes of an unknown app left by the previous daemon", "app", name, "count", len(members))
		spec := api.NewSpec()
		go stopForeign(members, &spec)
	}
	return nil
}

// takeover stops what the previous daemon left running for a, then starts
// a if it should run.
func (s *Supervisor) takeover(a *app, old []member) {
	a.op.Lock()
	defer a.op.Unlock()
	if len(old) > 0 {
		s.deps.Log.Info("stopping processes left by the previous daemon", "app", a.spec.Name, "count", len(old))
		stopForeign(old, &a.spec)
	}
	s.mu.Lock()
	if !a.deleted && a.running && !s.closing {
		if err := s.startSlotsLocked(a, true); err != nil {
			s.deps.Log.Error("takeover", "err", err)
		}
	}
	s.mu.Unlock()
	s.persist()
}

// leftBehind finds, by app name, the processes whose environment says a
// daemon of this TEND_HOME started them (TEND_HOME and TEND_APP), other
// than this process and its ancestors (a `tend` command run from inside an
// app, waiting for this daemon, must not be killed by it).
func (s *Supervisor) leftBehind() map[string][]member {
	out := map[string][]member{}
	if s.deps.Home == "" {
		return out
	}
	procs, err := procfs.Scan()
	if err != nil {
		return out
	}
	byPID := make(map[int]procfs.Stat, len(procs))
	for _, p := range procs {
		byPID[p.PID] = p
	}
	skip := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !skip[pid]; pid = byPID[pid].PPID {
		skip[pid] = true
	}
	home := []byte("\x00TEND_HOME=" + s.deps.Home + "\x00")
	appKey := []byte("\x00TEND_APP=")
	for _, p := range procs {
		if skip[p.PID] || p.Zombie() {
			continue
		}
		env, err := procfs.Environ(p.PID)
		if err != nil {
			continue
		}
		env = append([]byte{0}, env...)
		if !bytes.Contains(env, home) {
			continue
		}
		i := bytes.Index(env, appKey)
		if i < 0 {
			continue
		}
		name := env[i+len(appKey):]
		name = name[:bytes.IndexByte(name, 0)]
		out[string(name)] = append(out[string(name)], member{p.PID, p.StartTicks})
	}
	return out
}

// stopForeign runs the stop sequence on processes this daemon did not
// start and so cannot wait for: it polls /proc until they are gone. Each
// signal goes only to a process whose start time still matches.
func stopForeign(members []member, spec *api.AppSpec) {
	sig, _ := api.ParseSignal(spec.KillSignal)
	signalLive(members, sig)
	if waitGone(members, spec.KillTimeout.Std()) {
		return
	}
	signalLive(members, syscall.SIGKILL)
	waitGone(members, 2*time.Second)
}

func signalLive(members []member, sig syscall.Signal) {
	for _, m := range members {
		if procfs.Alive(m.pid, m.start) {
			_ = proc.Signal(m.pid, sig)
		}
	}
}

// waitGone polls until no member runs (a zombie does not count: orphans
// of a dead daemon go to init, which may be slow to reap them) or d
// passes.
func waitGone(members []member, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		alive := false
		for _, m := range members {
			alive = alive || procfs.Alive(m.pid, m.start)
		}
		if !alive {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
