package supervisor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/testproc"
)

func TestStartStopRestartDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	apps := h.create(h.spec("web", "print", "hello", "sleep", "forever"))
	if len(apps) != 1 || apps[0].Instances[0].Status != api.StatusOnline || apps[0].Instances[0].PID == 0 {
		t.Fatalf("Create = %+v; want one online instance with a pid", apps)
	}
	pid := apps[0].Instances[0].PID
	h.waitLog("web", "hello\n")

	h.act(api.ActionStop, "web")
	in := h.instance("web", 0)
	if in.Status != api.StatusStopped || in.PID != 0 || alive(pid) {
		t.Fatalf("after stop: %+v, process %d alive=%v; want stopped and gone", in, pid, alive(pid))
	}
	if in.LastExit == nil || in.LastExit.Signal != "SIGINT" {
		t.Errorf("last exit = %+v; want SIGINT (the default kill_signal)", in.LastExit)
	}

	h.act(api.ActionStart, "web")
	first := h.waitStatus("web", 0, api.StatusOnline)
	h.act(api.ActionRestart, "0") // by id
	second := h.waitStatus("web", 0, api.StatusOnline)
	if second.PID == first.PID || alive(first.PID) || second.Restarts != 1 {
		t.Errorf("restart: pid %d -> %d (old alive=%v), restarts %d; want a new process and 1 restart", first.PID, second.PID, alive(first.PID), second.Restarts)
	}

	h.act(api.ActionDelete, "all")
	if l := h.sup.List(); len(l) != 0 || alive(second.PID) {
		t.Errorf("after delete all: list %+v, process alive=%v; want empty and gone", l, alive(second.PID))
	}
}

func TestCreateIsAllOrNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(h.spec("taken", "sleep", "forever"))
	bad := h.spec("fresh", "sleep", "forever")
	_, err := h.sup.Create(context.Background(), []api.AppSpec{bad, h.spec("taken", "sleep", "forever")})
	if !errors.Is(err, api.ErrConflict) {
		t.Fatalf("Create with a taken name: err = %v; want ErrConflict", err)
	}
	invalid := h.spec("broken", "sleep", "forever")
	invalid.Instances = 0
	if _, err := h.sup.Create(context.Background(), []api.AppSpec{h.spec("fresh2", "sleep", "forever"), invalid}); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("Create with an invalid spec: err = %v; want ErrInvalid", err)
	}
	var names []string
	for _, a := range h.sup.List() {
		names = append(names, a.Name)
	}
	if !slices.Equal(names, []string{"taken"}) {
		t.Errorf("apps after refused creates = %v; want only [taken]", names)
	}
	if _, err := h.sup.Act(context.Background(), api.ActionStop, api.ActionRequest{Targets: []string{"taken", "nope"}}); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("stop with an unknown target: err = %v; want ErrNotFound", err)
	}
	if in := h.instance("taken", 0); in.Status != api.StatusOnline {
		t.Errorf("an action with an unknown target changed %q to %s; want it left online", "taken", in.Status)
	}
}

// TestCrashLoopBackoff checks the whole exponential backoff schedule on the
// fake clock: 100ms, 150ms, 225ms..., then errored after max_restarts
// unstable runs in a row.
func TestCrashLoopBackoff(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.spec("crashy", "stderr", "boom", "exit", "3")
	s.ExpBackoffRestartDelay = api.Duration(100 * time.Millisecond)
	s.MaxRestarts = 3
	h.create(s)

	want := []time.Duration{100 * time.Millisecond, 150 * time.Millisecond, 225 * time.Millisecond}
	for i, delay := range want {
		var in api.InstanceInfo
		waitFor(t, "crash "+strconv.Itoa(i+1), func() bool {
			in = h.instance("crashy", 0)
			return in.Status == api.StatusWaitingRestart && in.Unstable >= i+1
		})
		if in.LastExit == nil || in.LastExit.Code != 3 || in.Unstable != i+1 {
			t.Fatalf("crash %d: %+v; want exit code 3 and %d unstable runs", i+1, in, i+1)
		}
		if got := h.clk.Pending(); !slices.Contains(got, delay) {
			t.Fatalf("crash %d: pending timers %v; want a restart in %v", i+1, got, delay)
		}
		if !strings.Contains(in.Reason, "restarting in "+delay.String()) {
			t.Errorf("crash %d: reason %q; want it to say when", i+1, in.Reason)
		}
		h.clk.Advance(delay)
	}
	in := h.waitStatus("crashy", 0, api.StatusErrored)
	if in.Restarts != 3 || !strings.Contains(in.Reason, "max_restarts") {
		t.Errorf("errored instance: %+v; want 3 restarts and a reason naming max_restarts", in)
	}
	// An errored app stays down; a user's restart brings it back.
	h.clk.Advance(time.Hour)
	if in := h.instance("crashy", 0); in.Status != api.StatusErrored {
		t.Errorf("an hour later: %s; want still errored", in.Status)
	}
	h.act(api.ActionRestart, "crashy")
	if in := h.waitStatus("crashy", 0, api.StatusWaitingRestart); in.Unstable != 1 {
		t.Errorf("after a user's restart: %d unstable runs; want the count to start again at 1", in.Unstable)
	}
}

func TestBackoffResetsAfterStableRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// Each run ends when the test creates the file go, so the fake clock
	// alone says how long it ran.
	gofile := filepath.Join(h.dir, "go")
	s := h.spec("flappy", "waitfile", gofile, "exit", "1")
	s.ExpBackoffRestartDelay = api.Duration(100 * time.Millisecond)
	apps := h.create(s)
	release := func() {
		if err := os.WriteFile(gofile, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	release()
	waitFor(t, "the first exit", func() bool { return h.instance("flappy", 0).Status == api.StatusWaitingRestart })
	os.Remove(gofile)
	h.clk.Advance(100 * time.Millisecond)
	waitFor(t, "the restart", func() bool {
		in := h.instance("flappy", 0)
		return in.PID != 0 && in.PID != apps[0].Instances[0].PID
	})
	// This run lasts 31 s of fake time: stable, and longer than the 30 s
	// after which the backoff starts again from its initial value.
	h.clk.Advance(31 * time.Second)
	release()
	var in api.InstanceInfo
	waitFor(t, "the second exit", func() bool {
		in = h.instance("flappy", 0)
		return in.Status == api.StatusWaitingRestart && in.Restarts == 2
	})
	if got := h.waitPending(1); !slices.Contains(got, 100*time.Millisecond) || in.Unstable != 0 {
		t.Errorf("after a 31s run: pending %v, unstable %d; want 100ms again and 0", got, in.Unstable)
	}
}

func TestRestartPolicyStops(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	code0 := h.spec("clean", "exit", "0")
	code0.StopExitCodes = []int{0}
	noRestart := h.spec("once", "exit", "7")
	noRestart.Autorestart = false
	fixed := h.spec("fixed", "exit", "1")
	fixed.RestartDelay = api.Duration(2 * time.Second)
	h.create(code0, noRestart, fixed)

	if in := h.waitStatus("clean", 0, api.StatusStopped); !strings.Contains(in.Reason, "stop_exit_codes") {
		t.Errorf("exit 0 listed in stop_exit_codes: reason %q; want it named", in.Reason)
	}
	if in := h.waitStatus("once", 0, api.StatusStopped); in.LastExit == nil || in.LastExit.Code != 7 || !strings.Contains(in.Reason, "autorestart is off") {
		t.Errorf("autorestart off: %+v; want stopped with code 7 and the reason", in)
	}
	in := h.waitStatus("fixed", 0, api.StatusWaitingRestart)
	if got := h.waitPending(1); !slices.Contains(got, 2*time.Second) {
		t.Errorf("restart_delay 2s: pending %v", got)
	}
	if in.NextRestart.IsZero() {
		t.Errorf("waiting restart without a due time: %+v", in)
	}
}

// TestStopEscalatesToSIGKILL stops an app that ignores SIGINT and leaves a
// grandchild that ignores it too: nothing happens until kill_timeout, then
// SIGKILL takes the whole group.
func TestStopEscalatesToSIGKILL(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	gc := filepath.Join(h.dir, "gc.pid")
	s := h.spec("stubborn", "ignore", "INT", "spawn", gc, "print", "ready", "sleep", "forever")
	s.KillTimeout = api.Duration(5 * time.Second)
	apps := h.create(s)
	pid := apps[0].Instances[0].PID
	grandchild := readPID(t, gc)
	h.waitLog("stubborn", "ready")

	done := make(chan struct{})
	go func() { h.act(api.ActionStop, "stubborn"); close(done) }()
	h.waitStatus("stubborn", 0, api.StatusStopping)
	h.waitPending(1)
	if !alive(pid) {
		t.Fatal("the app died of SIGINT, which it ignores")
	}
	select {
	case <-done:
		t.Fatal("stop returned before kill_timeout")
	default:
	}
	h.clk.Advance(5 * time.Second)
	<-done
	in := h.instance("stubborn", 0)
	if in.Status != api.StatusStopped || in.LastExit == nil || in.LastExit.Signal != "SIGKILL" {
		t.Errorf("after kill_timeout: %+v; want stopped by SIGKILL", in)
	}
	if alive(pid) || alive(grandchild) {
		t.Errorf("after stop: app alive=%v, grandchild alive=%v; want both gone", alive(pid), alive(grandchild))
	}
}

// TestNoGrandchildLeft checks stop and delete against a tree with a
// grandchild in the group, one that left it with setsid, and one that
// daemonized (double fork: its parent exited, so it is an orphan that only
// its environment ties to the app).
func TestNoGrandchildLeft(t *testing.T) {
	t.Parallel()
	for _, action := range []string{api.ActionStop, api.ActionDelete} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			inGroup, escaped, daemon := filepath.Join(h.dir, "a.pid"), filepath.Join(h.dir, "b.pid"), filepath.Join(h.dir, "c.pid")
			apps := h.create(h.spec("tree", "spawn", inGroup, "spawnsid", escaped, "daemonize", daemon, "sleep", "forever"))
			pids := []int{apps[0].Instances[0].PID, readPID(t, inGroup), readPID(t, escaped), readPID(t, daemon)}
			h.act(action, "tree")
			for _, pid := range pids {
				if alive(pid) {
					t.Errorf("after %s: process %d of the tree is alive", action, pid)
				}
			}
		})
	}
}

// TestLeftoversAfterCrash: when the main process dies on its own, what it
// left (a grandchild that ignores SIGINT) is stopped, down to SIGKILL,
// before the replacement starts.
func TestLeftoversAfterCrash(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	gc := filepath.Join(h.dir, "gc.pid")
	s := h.spec("leaky", "ignore", "INT", "spawn", gc, "waitfile", filepath.Join(h.dir, "go"), "exit", "1")
	s.KillTimeout = api.Duration(3 * time.Second)
	apps := h.create(s)
	first := apps[0].Instances[0].PID
	grandchild := readPID(t, gc)
	if err := os.WriteFile(filepath.Join(h.dir, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	in := h.waitStatus("leaky", 0, api.StatusStopping)
	if !strings.Contains(in.Reason, "left behind") || !alive(grandchild) {
		t.Fatalf("after the crash: %+v, grandchild alive=%v; want the leftover being stopped", in, alive(grandchild))
	}
	if in.PID != 0 {
		t.Fatalf("a replacement (pid %d) started while the leftover %d runs", in.PID, grandchild)
	}
	h.waitPending(1)
	h.clk.Advance(3 * time.Second)
	var now api.InstanceInfo
	waitFor(t, "the replacement", func() bool {
		now = h.instance("leaky", 0)
		return now.PID != 0 && now.PID != first
	})
	if alive(grandchild) || now.Restarts != 1 {
		t.Errorf("replacement %+v started with the leftover alive=%v; want it gone first and 1 restart", now, alive(grandchild))
	}
}

// TestNothingStartsDuringShutdown: once the supervisor shuts down, a new
// app or a start is refused, so nothing outlives the daemon.
func TestNothingStartsDuringShutdown(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.spec("slow", "ignore", "INT", "print", "ready", "sleep", "forever")
	s.KillTimeout = api.Duration(time.Minute)
	h.create(s)
	h.waitLog("slow", "ready")
	done := make(chan struct{})
	go func() { h.sup.Shutdown(false); close(done) }()
	h.waitStatus("slow", 0, api.StatusStopping)
	if _, err := h.sup.Create(context.Background(), []api.AppSpec{h.spec("late", "sleep", "forever")}); !errors.Is(err, api.ErrConflict) {
		t.Errorf("Create during shutdown: %v; want refused (ErrConflict)", err)
	}
	h.clk.Advance(time.Minute)
	<-done
	if l := h.sup.List(); len(l) != 0 {
		t.Errorf("after Shutdown: %+v", l)
	}
}

// TestStartFailureIsRefused: a program that cannot be executed is refused
// at start and leaves nothing behind; on an automatic restart it is an
// unstable run like a crash.
func TestStartFailureIsRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	bad := filepath.Join(h.dir, "noshebang")
	if err := os.WriteFile(bad, []byte("echo hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := h.spec("broken")
	s.Command = []string{bad}
	if _, err := h.sup.Create(context.Background(), []api.AppSpec{s}); err == nil || !strings.Contains(err.Error(), "cannot start") {
		t.Fatalf("Create of a non-executable program: %v; want a refusal saying it cannot start", err)
	}
	if l := h.sup.List(); len(l) != 0 {
		t.Errorf("after a refused start: %+v; want no app", l)
	}
}

func TestInstancesAndEnvironment(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// Each instance writes its environment to a file named after its slot:
	// a shell expands $TEND_INSTANCE, then becomes the scripted child.
	s := h.spec("multi")
	s.Command = []string{"/bin/sh", "-c", `exec "$0" env "` + h.dir + `/env-$TEND_INSTANCE" sleep forever`, testproc.Command()[0]}
	s.Instances = 3
	s.BaseEnv["FROM_SHELL"] = "base"
	s.BaseEnv["OVERRIDDEN"] = "base"
	s.Env = map[string]string{"OVERRIDDEN": "config", "PORT": "3000"}
	s.IncrementVar = "PORT"
	apps := h.create(s)
	pids := map[int]bool{}
	for _, in := range apps[0].Instances {
		pids[in.PID] = true
	}
	if len(pids) != 3 {
		t.Fatalf("3 instances: pids %v; want 3 distinct processes", pids)
	}
	for slot := 0; slot < 3; slot++ {
		path := filepath.Join(h.dir, "env-"+strconv.Itoa(slot))
		var env string
		waitFor(t, path, func() bool {
			b, err := os.ReadFile(path)
			env = string(b)
			return err == nil && strings.HasSuffix(env, "\n")
		})
		for _, want := range []string{
			"FROM_SHELL=base", "OVERRIDDEN=config", "TEND_APP=multi",
			"TEND_INSTANCE=" + strconv.Itoa(slot), "NODE_APP_INSTANCE=" + strconv.Itoa(slot),
			"PORT=" + strconv.Itoa(3000+slot), "TEND_HOME=" + h.dir,
		} {
			if !strings.Contains("\n"+env, "\n"+want+"\n") {
				t.Errorf("slot %d: environment lacks %s", slot, want)
			}
		}
	}
}

func TestSignalAndFlush(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.create(h.spec("sig", "trap", "USR1", "42", "print", "armed", "sleep", "forever"))
	h.waitLog("sig", "armed")
	if _, err := h.sup.Act(context.Background(), api.ActionSignal, api.ActionRequest{Targets: []string{"sig"}, Signal: "usr1"}); err != nil {
		t.Fatal(err)
	}
	in := h.waitStatus("sig", 0, api.StatusOnline)
	waitFor(t, "the exit from SIGUSR1", func() bool {
		in = h.instance("sig", 0)
		return in.LastExit != nil
	})
	if in.LastExit.Code != 42 {
		t.Errorf("after SIGUSR1: last exit %+v; want code 42 from the trap", in.LastExit)
	}
	h.act(api.ActionFlush, "sig")
	if b, _ := os.ReadFile(filepath.Join(h.logDir, "sig-out.log")); strings.Contains(string(b), "armed") {
		t.Errorf("after flush the log still holds %q", b)
	}
}
