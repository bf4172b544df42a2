package supervisor_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/applog"
	"github.com/tend-pm/tend/internal/clock/clocktest"
	"github.com/tend-pm/tend/internal/proc"
	"github.com/tend-pm/tend/internal/procfs"
	"github.com/tend-pm/tend/internal/supervisor"
	"github.com/tend-pm/tend/internal/testproc"
)

func TestMain(m *testing.M) {
	testproc.MaybeRun()
	// The test process reaps the children the supervisor starts, and the
	// grandchildren they leave, as the daemon does.
	if err := proc.BecomeSubreaper(); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// harness is a Supervisor with a fake clock and a real Reaper, real log
// files and real child processes.
type harness struct {
	t      *testing.T
	sup    *supervisor.Supervisor
	clk    *clocktest.Clock
	dir    string
	logDir string
}

// The supervisors alive in this test binary, told about every reap.
var (
	supsMu sync.Mutex
	sups   = map[*supervisor.Supervisor]bool{}
)

func register(s *supervisor.Supervisor) {
	supsMu.Lock()
	defer supsMu.Unlock()
	sups[s] = true
}

func unregister(s *supervisor.Supervisor) {
	supsMu.Lock()
	defer supsMu.Unlock()
	delete(sups, s)
}

func supervisors() []*supervisor.Supervisor {
	supsMu.Lock()
	defer supsMu.Unlock()
	out := make([]*supervisor.Supervisor, 0, len(sups))
	for s := range sups {
		out = append(out, s)
	}
	return out
}

// The tests share one Reaper: it waits for every child of the process, so
// two would steal each other's exits.
var reaper = func() *proc.Reaper {
	r := proc.NewReaper(func() {
		for _, s := range supervisors() {
			s.OnReap()
		}
	})
	go r.Run(context.Background())
	return r
}()

func newHarness(t *testing.T) *harness { return newHarnessWith(t, nil) }

// newHarnessWith is newHarness with Deps changed by mod.
func newHarnessWith(t *testing.T, mod func(*supervisor.Deps)) *harness {
	t.Helper()
	dir := t.TempDir()
	h := &harness{t: t, clk: clocktest.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), dir: dir, logDir: filepath.Join(dir, "logs")}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	deps := supervisor.Deps{
		Clock: h.clk, Reaper: reaper, Logs: applog.NewRouter(h.logDir, h.clk, log), Home: dir, Log: log,
	}
	if mod != nil {
		mod(&deps)
	}
	h.sup = supervisor.New(deps)
	register(h.sup)
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { h.sup.Shutdown(false); close(done) }()
		// Shutdown may wait on a kill timeout of the fake clock.
		for {
			select {
			case <-done:
				unregister(h.sup)
				h.sup.CloseSampler()
				return
			case <-time.After(20 * time.Millisecond):
				h.clk.Advance(time.Second)
			}
		}
	})
	return h
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// spec returns an app that runs the scripted child with script.
func (h *harness) spec(name string, script ...string) api.AppSpec {
	s := api.NewSpec()
	s.Name = name
	s.Script = "testproc"
	s.Command = testproc.Command(script...)
	s.Cwd = h.dir
	s.BaseEnv = map[string]string{testproc.EnvVar: "1"}
	return s
}

func (h *harness) create(specs ...api.AppSpec) []api.AppInfo {
	h.t.Helper()
	apps, err := h.sup.Create(context.Background(), specs)
	if err != nil {
		h.t.Fatalf("Create: %v", err)
	}
	return apps
}

func (h *harness) act(action string, targets ...string) []api.AppInfo {
	h.t.Helper()
	apps, err := h.sup.Act(context.Background(), action, api.ActionRequest{Targets: targets})
	if err != nil {
		h.t.Fatalf("%s %v: %v", action, targets, err)
	}
	return apps
}

// instance returns the current state of one instance.
func (h *harness) instance(name string, slot int) api.InstanceInfo {
	h.t.Helper()
	apps, err := h.sup.Describe(name)
	if err != nil {
		h.t.Fatalf("Describe(%q): %v", name, err)
	}
	return apps[0].Instances[slot]
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStatus waits until instance slot of name has status.
func (h *harness) waitStatus(name string, slot int, status string) api.InstanceInfo {
	h.t.Helper()
	var in api.InstanceInfo
	waitFor(h.t, name+" to be "+status, func() bool {
		in = h.instance(name, slot)
		return in.Status == status
	})
	return in
}

// waitPending waits until the fake clock has n timers pending and returns
// their delays.
func (h *harness) waitPending(n int) []time.Duration {
	h.t.Helper()
	var p []time.Duration
	waitFor(h.t, "timers to be armed", func() bool {
		p = h.clk.Pending()
		return len(p) >= n
	})
	return p
}

// alive reports whether pid runs (zombies do not count).
func alive(pid int) bool { return procfs.Alive(pid, 0) }

// readPID waits for a pid file written by a scripted child.
func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "pid file "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			return false
		}
		_, err = fmt.Sscan(string(b), &pid)
		return err == nil
	})
	return pid
}

// logFile waits until the app's out log holds want and returns it.
func (h *harness) waitLog(name, want string) string {
	h.t.Helper()
	var s string
	waitFor(h.t, "log of "+name+" to hold "+want, func() bool {
		b, _ := os.ReadFile(filepath.Join(h.logDir, name+"-out.log"))
		s = string(b)
		return strings.Contains(s, want)
	})
	return s
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
