package supervisor

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/clock"
	"github.com/tend-pm/tend/internal/proc"
	"github.com/tend-pm/tend/internal/procfs"
	"github.com/tend-pm/tend/internal/sample"
)

// killGrace bounds the wait after SIGKILL: a process stuck in the kernel
// (D state) cannot be killed, and a stop must end some time. The stop is
// then completed with the survivors named in the daemon's log.
const killGrace = 5 * time.Second

// instance is one slot of an app. Every field is guarded by Supervisor.mu.
type instance struct {
	app  *app
	slot int

	status string
	reason string

	pid        int // the leader, 0 once reaped
	pgid       int // its process group; 0 once the group is known empty
	startTicks uint64
	started    time.Time

	// run identifies the current process of the instance among every
	// process the supervisor started: timers and probes of an earlier
	// process check it, and the proxy knows backends by it.
	run uint64
	// port is the private port of the process, in proxy mode.
	port int

	// Readiness of the current process (ready.go).
	ready         bool
	appStatus     string
	readyTimer    clock.Timer
	watchdogTimer clock.Timer
	// onReady, if set, is told once whether the process became ready:
	// a reload waits on it.
	onReady func(error)
	// ipc is the Node.js IPC channel of the current process, if it has one.
	ipc *ipcChannel
	// stopByMessage is set while a stop waits on the 'shutdown' message
	// (shutdown_with_message) rather than a signal.
	stopByMessage bool

	// candidate marks a new process a reload started next to the slot's
	// running one: if it ends before it is ready, it is not restarted, the
	// reload fails instead.
	candidate bool

	restarts int
	unstable int
	backoff  time.Duration
	lastExit *api.ExitInfo

	restartTimer clock.Timer
	nextRestart  time.Time

	// A stop in progress: stopping is set until the leader and everything
	// left of the instance are gone; then stopDone is closed. stopGen
	// tells a late timer of an earlier stop from the current one.
	stopping bool
	stopGen  int
	// signaled are the processes outside the leader's group a stop has
	// signaled. A process that is exiting can no longer show its
	// environment, so it would not be found as a member any more; the
	// stop waits until each of these is gone by its pid and start time.
	signaled []member
	stopWhy  string
	stopDone chan struct{}
	// erroredAtClose: the instance had given up when the daemon began to
	// shut down, so the state it leaves keeps it errored. (One that fails
	// to start during the shutdown, "the daemon is shutting down", is
	// stopped, not errored.)
	erroredAtClose bool
	killTimer      clock.Timer
	killedAt       time.Time // when SIGKILL was sent, for killGrace
	// afterStop, if set, runs instead of marking the instance stopped: the
	// restart that waits for the leftovers of a crashed process to go.
	afterStop func()

	// What the sampler measured last (monitor.go). Times are wall times,
	// even under a fake clock: CPU time is real.
	usage       sample.Usage
	usageAt     time.Time
	sampled     bool
	cpuPct      float64
	startedWall time.Time
	// memAction is set once the process went over max_memory_restart and
	// its replacement is under way.
	memAction bool
	// metrics are the numbers the process reported (METRIC=).
	metrics map[string]*appMetric
	// lastRestart is why the daemon itself last replaced the process.
	lastRestart *api.RestartInfo
}

// startLocked starts every instance of a that is not running. It returns
// the first error of a process that could not be started at all; the
// instance is then errored, with the reason.
func (s *Supervisor) startLocked(a *app) error {
	return s.startSlotsLocked(a, false)
}

// startSlotsLocked is startLocked; with keepErrored, instances that had
// given up stay errored (a new daemon taking over).
func (s *Supervisor) startSlotsLocked(a *app, keepErrored bool) error {
	if err := s.openSocketsLocked(a); err != nil {
		return err
	}
	a.running = true
	var first error
	for _, in := range a.insts {
		if in.pid != 0 || in.stopping || keepErrored && in.status == api.StatusErrored {
			continue
		}
		s.cancelRestartLocked(in)
		if in.status == api.StatusErrored || in.status == api.StatusStopped {
			in.unstable, in.backoff = 0, 0
		}
		if err := s.spawnLocked(in); err != nil {
			in.status, in.reason = api.StatusErrored, fmt.Sprintf("cannot start: %v", err)
			s.eventLocked(a, in, api.EventErrored, func(e *api.Event) { e.Reason = in.reason })
			if first == nil {
				first = fmt.Errorf("app %q, instance %d: %s", a.spec.Name, in.slot, in.reason)
			}
		}
	}
	return first
}

// spawnLocked starts the process of in.
func (s *Supervisor) spawnLocked(in *instance) error {
	if s.closing {
		return errors.New("the daemon is shutting down")
	}
	a := in.app
	spec := &a.spec
	in.status, in.reason = api.StatusLaunching, ""
	l, err := s.launchLocked(in)
	if err != nil {
		l.close()
		return err
	}
	run := s.runs + 1
	l.env["TEND_RUN"] = strconv.FormatUint(run, 10)
	outR, outW, err := os.Pipe()
	if err != nil {
		l.close()
		return err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		l.close()
		return err
	}
	cmd := proc.Cmd{
		Argv:  spec.Command,
		Dir:   spec.Cwd,
		Env:   api.InstanceEnv(spec, in.slot, s.deps.Home, l.env),
		Files: append([]*os.File{nil, outW, errW}, l.files...),
	}
	if l.wrap {
		if err := checkExecutable(spec.Command[0]); err != nil {
			outR.Close()
			outW.Close()
			errR.Close()
			errW.Close()
			l.close()
			return err
		}
		cmd = proc.Wrap(s.deps.Exe, cmd)
	}
	pid, err := s.deps.Reaper.Start(cmd, func(e proc.Exit) { s.onExit(in, e) })
	// The child has its copies; the daemon keeps only the read ends, so
	// the pipes reach EOF when the last process holding them exits.
	outW.Close()
	errW.Close()
	if l.ipcChild != nil {
		l.ipcChild.Close()
	}
	if err != nil {
		outR.Close()
		errR.Close()
		if l.ipc != nil {
			l.ipc.Close()
		}
		s.deps.Log.Error("start failed", "app", spec.Name, "instance", in.slot, "err", err)
		return err
	}
	go a.logs.Copy(in.slot, "out", outR)
	go a.logs.Copy(in.slot, "err", errR)
	in.pid, in.pgid = pid, pid
	in.started = s.deps.Clock.Now()
	in.startTicks = 0
	if st, err := procfs.ReadStat(pid); err == nil {
		in.startTicks = st.StartTicks
	}
	in.usage, in.usageAt, in.sampled, in.cpuPct, in.startedWall = sample.Usage{}, time.Time{}, false, 0, time.Now()
	in.memAction, in.metrics = false, nil
	in.status = api.StatusOnline
	s.runs = run
	in.run, in.port, in.ready, in.appStatus = run, l.port, false, ""
	in.proxyAddLocked()
	s.armReadyLocked(in)
	in.ipc = nil
	if l.ipc != nil {
		in.ipc = newIPCChannel(l.ipc)
		go s.readIPC(in, in.run, in.ipc)
	}
	s.deps.Log.Info("started", "app", spec.Name, "instance", in.slot, "pid", pid)
	s.eventLocked(a, in, api.EventStart, nil)
	return nil
}

// checkExecutable refuses, before the exec wrapper runs, a program that
// cannot be executed, so the user gets the error at `tend start` as
// without the wrapper.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return &os.PathError{Op: "exec", Path: path, Err: syscall.EACCES}
	}
	return nil
}

// exitPhrase says how a process ended, after "it": "exited with code 1",
// "was killed by SIGKILL".
func exitPhrase(e proc.Exit) string {
	if e.Signal() != 0 {
		return "was " + e.String()
	}
	return e.String()
}

// exitBySignal is the exit of a process killed by sig.
func exitBySignal(sig syscall.Signal) proc.Exit {
	return proc.Exit{Status: syscall.WaitStatus(sig)}
}

// autoSpawnLocked starts in again on the restart policy's behalf. A
// process that cannot be started (its program replaced mid-deploy, file
// descriptors exhausted) counts as an unstable run, so the policy's delays
// and max_restarts apply rather than a tight loop or a permanent error.
func (s *Supervisor) autoSpawnLocked(in *instance) {
	err := s.spawnLocked(in)
	if err == nil {
		return
	}
	what := fmt.Sprintf("cannot start: %v", err)
	d := decide(&in.app.spec, proc.Exit{Status: syscall.WaitStatus(127 << 8)}, what, 0, in.unstable, in.backoff)
	s.applyLocked(in, d)
}

// onExit handles the end of the leader of in. It runs in the Reaper's
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
	s.eventLocked(in.app, in, api.EventExit, func(ev *api.Event) {
		if ev.Signal = in.lastExit.Signal; ev.Signal == "" {
			ev.Code = &in.lastExit.Code
		}
		ev.Uptime = roundDuration(uptime).String()
	})
	in.pid = 0
	wasReady := in.ready
	s.resetReadyLocked(in)
	a := in.app
	s.steerLocked(a)
	s.deps.Log.Info("exited", "app", a.spec.Name, "instance", in.slot, "pid", e.PID, "how", e.String(), "uptime", uptime)
	if !wasReady {
		in.settleLocked(fmt.Errorf("it %s before it was ready", exitPhrase(e)))
	}
	if in.candidate && !in.stopping {
		// A reload's new process that failed: the reload reports it and
		// the old process keeps serving; nothing restarts it.
		in.status, in.reason = api.StatusErrored, fmt.Sprintf("the new process %s before it was ready", exitPhrase(e))
		if len(s.strayMembersLocked(takeSnapshot(), in)) == 0 {
			in.pgid = 0
		} else {
			s.beginStopLocked(in, in.reason, nil)
		}
		s.mu.Unlock()
		return
	}
	if in.stopping {
		if in.stopByMessage {
			in.stopByMessage = false
			sig, _ := api.ParseSignal(a.spec.KillSignal)
			s.signalAllLocked(in, sig) // the leader is gone: only what it left
		}
		s.checkStoppedLocked(in, lazySnapshot())
		s.mu.Unlock()
		return
	}
	what := fmt.Sprintf("%s after %s", e, roundDuration(uptime))
	d := decide(&a.spec, e, what, uptime, in.unstable, in.backoff)
	// Whatever the process left of itself (a background job in its group,
	// a daemonized child) gets the stop sequence before anything else, as
	// systemd does with a service's cgroup: a restarted instance must not
	// compete with leftovers for a port or a lock.
	if len(s.strayMembersLocked(takeSnapshot(), in)) == 0 {
		in.pgid = 0
		s.applyLocked(in, d)
	} else {
		s.beginStopLocked(in, what+"; stopping what it left behind first", func() { s.applyLocked(in, d) })
	}
	s.mu.Unlock()
	s.persist()
}

// applyLocked carries out a restart decision.
func (s *Supervisor) applyLocked(in *instance, d decision) {
	a := in.app
	in.unstable, in.backoff = d.unstable, d.backoff
	in.status, in.reason = d.status, d.reason
	if !d.restart {
		if d.status == api.StatusErrored {
			s.eventLocked(a, in, api.EventErrored, func(e *api.Event) { e.Reason = d.reason })
		}
		return
	}
	if a.deleted || !a.running || s.closing {
		in.status = api.StatusStopped
		return
	}
	in.restarts++
	s.eventLocked(a, in, api.EventRestart, func(e *api.Event) { e.Delay, e.Reason = d.delay.String(), d.reason })
	if d.delay == 0 {
		s.autoSpawnLocked(in)
		return
	}
	in.nextRestart = s.deps.Clock.Now().Add(d.delay)
	in.restartTimer = s.deps.Clock.AfterFunc(d.delay, func() { s.restartDue(in) })
}

// restartDue fires when a waiting restart is due.
func (s *Supervisor) restartDue(in *instance) {
	s.mu.Lock()
	if in.status != api.StatusWaitingRestart || in.pid != 0 || in.stopping || in.app.deleted {
		s.mu.Unlock()
		return
	}
	in.restartTimer = nil
	in.nextRestart = time.Time{}
	s.autoSpawnLocked(in)
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
// when it is complete. A stop already under way (a user's, or the cleanup
// before a restart) is taken over: it ends in stopped, with why.
func (s *Supervisor) stopLocked(in *instance, why string) <-chan struct{} {
	s.cancelRestartLocked(in)
	if in.stopping {
		in.afterStop = nil
		in.stopWhy = why
		return in.stopDone
	}
	if in.pid == 0 && len(s.strayMembersLocked(takeSnapshot(), in)) == 0 {
		in.pgid = 0
		if s.closing && in.status == api.StatusErrored && in.erroredAtClose {
			// The daemon is going away: the state it writes last keeps the
			// instance errored, so the next daemon does not start it.
			done := make(chan struct{})
			close(done)
			return done
		}
		if in.status != api.StatusStopped {
			s.eventLocked(in.app, in, api.EventStop, func(e *api.Event) { e.Reason = why })
		}
		in.status, in.reason = api.StatusStopped, why
		done := make(chan struct{})
		close(done)
		return done
	}
	s.beginStopLocked(in, why, nil)
	return in.stopDone
}

// beginStopLocked sends kill_signal to everything of in and arms the
// SIGKILL that follows after kill_timeout. then, if not nil, runs when the
// stop completes, instead of marking the instance stopped.
func (s *Supervisor) beginStopLocked(in *instance, why string, then func()) {
	spec := &in.app.spec
	in.stopping, in.stopWhy, in.afterStop = true, why, then
	in.signaled = nil
	in.stopGen++
	in.stopDone = make(chan struct{})
	in.killedAt = time.Time{}
	in.status, in.reason = api.StatusStopping, why
	sig, _ := api.ParseSignal(spec.KillSignal) // validated with the spec
	// pm2's shutdown_with_message: the app gets 'shutdown' on its IPC
	// channel (process.on('message')) instead of a signal; whatever it
	// leaves behind gets the signal once it is gone (onExit), and
	// everything SIGKILL after kill_timeout as usual. Without a channel
	// that takes the message, the signal it is.
	in.stopByMessage = false
	if c := in.ipc; spec.ShutdownWithMessage && c != nil && in.pid != 0 {
		if err := c.send([]byte(`"shutdown"`)); err != nil {
			s.deps.Log.Warn("shutdown message not sent; sending the stop signal", "app", spec.Name, "instance", in.slot, "err", err)
		} else {
			in.stopByMessage = true
		}
	}
	if !in.stopByMessage {
		s.signalAllLocked(in, sig)
	}
	gen := in.stopGen
	in.killTimer = s.deps.Clock.AfterFunc(spec.KillTimeout.Std(), func() { s.escalate(in, gen) })
	s.checkStoppedLocked(in, lazySnapshot())
}

// signalAllLocked sends sig to the leader's group while the leader is not
// reaped (so the group id is still ours), and one by one to the other
// processes of the instance, each checked against its start time.
func (s *Supervisor) signalAllLocked(in *instance, sig syscall.Signal) {
	if in.pid != 0 {
		if err := s.deps.Reaper.SignalGroup(in.pid, sig); err != nil && !errors.Is(err, proc.ErrReaped) {
			s.deps.Log.Warn("signal", "app", in.app.spec.Name, "instance", in.slot, "err", err)
		}
	}
	for _, m := range s.strayMembersLocked(takeSnapshot(), in) {
		if procfs.Alive(m.pid, m.start) {
			_ = proc.Signal(m.pid, sig)
			if in.stopping && !slices.Contains(in.signaled, m) {
				in.signaled = append(in.signaled, m)
			}
		}
	}
}

// escalate sends SIGKILL to an instance that outlived kill_timeout.
func (s *Supervisor) escalate(in *instance, gen int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !in.stopping || in.stopGen != gen {
		return
	}
	s.deps.Log.Info("kill_timeout elapsed; sending SIGKILL", "app", in.app.spec.Name, "instance", in.slot)
	s.signalAllLocked(in, syscall.SIGKILL)
	in.killTimer = nil
	in.killedAt = time.Now()
	// Processes killed here that are not the daemon's children produce no
	// SIGCHLD; look again shortly so the stop still completes.
	s.recheckLater(in, gen, 20*time.Millisecond)
}

// recheckLater looks at a stopping instance again after d (real time:
// this only waits for the kernel to finish killing processes), backing
// off, until killGrace has passed.
func (s *Supervisor) recheckLater(in *instance, gen int, d time.Duration) {
	time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !in.stopping || in.stopGen != gen || s.checkStoppedLocked(in, lazySnapshot()) {
			return
		}
		if time.Since(in.killedAt) < killGrace {
			s.recheckLater(in, gen, min(2*d, time.Second))
			return
		}
		var left []int
		for _, m := range s.strayMembersLocked(takeSnapshot(), in) {
			left = append(left, m.pid)
		}
		s.deps.Log.Error("processes survive SIGKILL; giving up on them", "app", in.app.spec.Name, "instance", in.slot, "leader", in.pid, "pids", left)
		// A leader that dies later must not read as a crash to restart.
		in.pid = 0
		s.resetReadyLocked(in)
		s.completeStopLocked(in)
	})
}

// checkStoppedLocked completes the stop of in if nothing of it is left,
// and reports whether it did.
func (s *Supervisor) checkStoppedLocked(in *instance, snap func() *snapshot) bool {
	if !in.stopping || in.pid != 0 {
		return false
	}
	if len(s.strayMembersLocked(snap(), in)) > 0 {
		return false
	}
	for _, m := range in.signaled {
		if procfs.Alive(m.pid, m.start) {
			return false // still exiting; its reap brings us back here
		}
	}
	s.completeStopLocked(in)
	return true
}

func (s *Supervisor) completeStopLocked(in *instance) {
	if in.killTimer != nil {
		in.killTimer.Stop()
		in.killTimer = nil
	}
	in.stopping = false
	in.pgid = 0
	in.signaled = nil
	done := in.stopDone
	in.stopByMessage = false
	if then := in.afterStop; then != nil {
		in.afterStop = nil
		then()
		// What follows a stop (a restart, or giving up: errored) is
		// state a new daemon needs; this runs under s.mu, so the write is
		// left to a goroutine (the store keeps the latest snapshot).
		s.writes.Go(s.persist)
	} else {
		in.status, in.reason = api.StatusStopped, in.stopWhy
		s.eventLocked(in.app, in, api.EventStop, func(e *api.Event) { e.Reason = in.stopWhy })
	}
	close(done)
}
