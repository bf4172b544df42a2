package supervisor_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/state"
	"github.com/tend-pm/tend/internal/supervisor"
)

// storedSlots reads the state file's records of app.
func storedSlots(t *testing.T, path, app string) []state.Instance {
	t.Helper()
	f, err := state.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range f.Apps {
		if a.Spec.Name == app {
			return a.Instances
		}
	}
	return nil
}

// TestErroredAfterStopIsStored: an instance that gives up at the end of a
// stop sequence (not ready within listen_timeout, max_restarts 0) is
// written to the state as errored, so a daemon that takes over after a
// crash does not start it again.
func TestErroredAfterStopIsStored(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	h := newHarnessWith(t, func(d *supervisor.Deps) { d.Store = state.NewStore(path) })
	spec := h.spec("never", "sleep", "forever")
	spec.WaitReady = true
	spec.ListenTimeout = api.Duration(time.Second)
	spec.MaxRestarts = 0
	spec.MinUptime = api.Duration(time.Minute) // its one run was unstable
	h.create(spec)
	waitInstance(t, h, "never", "the instance to give up", func(in api.InstanceInfo) bool {
		h.clk.Advance(time.Second) // to listen_timeout, then through the stop
		return in.Status == api.StatusErrored
	})
	waitFor(t, "the state to say errored", func() bool {
		s := storedSlots(t, path, "never")
		return len(s) == 1 && s[0].Errored != ""
	})
}

// TestShutdownDuringReloadLeavesNoErrored: a slot whose new process
// cannot start because the daemon began to shut down during a reload is
// stored stopped, not errored: the next daemon starts it. A slot that had
// given up before stays errored.
func TestShutdownDuringReloadLeavesNoErrored(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	h := newHarnessWith(t, func(d *supervisor.Deps) { d.Store = state.NewStore(path) })
	slow := h.spec("slow", "ignore", "INT", "sleep", "forever")
	slow.Instances = 2
	slow.KillTimeout = api.Duration(5 * time.Second)
	gaveUp := h.spec("gaveup", "exit", "3")
	gaveUp.MaxRestarts = 0
	apps := h.create(slow, h.spec("other", "sleep", "forever"), gaveUp)
	waitInstance(t, h, "gaveup", "gaveup to give up", func(in api.InstanceInfo) bool { return in.Status == api.StatusErrored })
	// The reload's stop must find slow's processes ignoring SIGINT, or it
	// ends at once instead of waiting for the kill timeout.
	for _, in := range apps[0].Instances {
		waitFor(t, "slow's processes to ignore SIGINT", func() bool { return ignoresSIGINT(in.PID) })
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = h.sup.Act(context.Background(), api.ActionReload, api.ActionRequest{Targets: []string{"slow"}})
	})
	waitInstance(t, h, "slow", "the reload to stop slot 0", func(in api.InstanceInfo) bool { return in.Status == api.StatusStopping })
	wg.Go(func() { h.sup.Shutdown(true) })
	// Shutdown stops "other" at once (the reload holds only slow's
	// actions): then it has begun.
	waitInstance(t, h, "other", "the shutdown to begin", func(in api.InstanceInfo) bool { return in.Status != api.StatusOnline })
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for {
		select {
		case <-done:
			for _, si := range storedSlots(t, path, "slow") {
				if si.Errored != "" {
					t.Errorf("slot %d of slow stored errored (%q); want stopped, to start again", si.Slot, si.Errored)
				}
			}
			if s := storedSlots(t, path, "gaveup"); len(s) != 1 || s[0].Errored == "" {
				t.Errorf("gaveup stored as %+v; want errored, as it was before the shutdown", s)
			}
			return
		case <-time.After(20 * time.Millisecond):
			h.clk.Advance(time.Second) // the kill timeout of slow's stop
		}
	}
}

// TestNeverReadyEndsErrored: a process that never says it is ready is
// stopped at listen_timeout each time, and however long that is (here
// more than min_uptime), each start counts as unstable: after
// max_restarts the instance is errored instead of restarted forever.
func TestNeverReadyEndsErrored(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	spec := h.spec("mute", "sleep", "forever")
	spec.WaitReady = true
	spec.ListenTimeout = api.Duration(3 * time.Second)
	spec.MinUptime = api.Duration(time.Second)
	spec.MaxRestarts = 2
	h.create(spec)
	in := waitInstance(t, h, "mute", "the instance to give up", func(in api.InstanceInfo) bool {
		h.clk.Advance(time.Second) // to listen_timeout, through the stop and the restart delay
		return in.Status == api.StatusErrored
	})
	if in.Restarts != 2 || !strings.Contains(in.Reason, "max_restarts") || !strings.Contains(in.Reason, "not ready after 3s") {
		t.Errorf("errored after %d restarts: %q; want 2, naming max_restarts and the readiness timeout", in.Restarts, in.Reason)
	}
}

// ignoresSIGINT reads SigIgn in /proc/<pid>/status.
func ignoresSIGINT(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && mask&(1<<(int(syscall.SIGINT)-1)) != 0
		}
	}
	return false
}
