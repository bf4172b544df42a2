package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/procfs"
	"github.com/tend-pm/tend/internal/testproc"
)

// tendBin is the binary under test, built once by TestMain.
var tendBin string

func TestMain(m *testing.M) {
	testproc.MaybeRun()
	dir, err := os.MkdirTemp("", "tend-e2e-bin")
	if err != nil {
		panic(err)
	}
	tendBin = filepath.Join(dir, "tend")
	build := exec.Command("go", "build", "-o", tendBin, "../cmd/tend")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot build tend:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's TEND_HOME and the commands run against it.
type env struct {
	t    *testing.T
	home string
	dir  string // scratch space for the test
}

// newEnv returns a fresh TEND_HOME, short enough for a unix socket path,
// and makes sure the daemon and every process it started are gone when the
// test ends, whatever happened.
func newEnv(t *testing.T) *env {
	t.Helper()
	root, err := os.MkdirTemp("/tmp", "te")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, home: filepath.Join(root, "h"), dir: root}
	t.Cleanup(func() {
		_, _, _ = e.run("kill")
		killByHome(e.home)
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(e.home, "daemon.log")); err == nil {
				t.Logf("daemon.log:\n%s", b)
			}
			errLogs, _ := filepath.Glob(filepath.Join(e.home, "logs", "*error*.log"))
			for _, f := range errLogs {
				if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
					t.Logf("%s:\n%s", filepath.Base(f), b[max(0, len(b)-4000):])
				}
			}
		}
		os.RemoveAll(root)
	})
	return e
}

// environ is what the CLI runs with: TEND_HOME, and the variable that
// makes the apps (this binary) run their scripts.
func (e *env) environ(extra ...string) []string {
	out := []string{"TEND_HOME=" + e.home, testproc.Env(), "PATH=" + os.Getenv("PATH"), "HOME=" + e.dir}
	return append(out, extra...)
}

// run runs tend with args and returns stdout, stderr and the exit code.
func (e *env) run(args ...string) (string, string, int) {
	return e.runEnv(nil, args...)
}

func (e *env) runEnv(extra []string, args ...string) (string, string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tendBin, args...)
	cmd.Env = e.environ(extra...)
	cmd.Dir = e.dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run tend %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// ok runs tend and fails the test unless it exits 0.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	out, errs, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("tend %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// list returns `tend ls --json`.
func (e *env) list() []api.AppInfo {
	e.t.Helper()
	var apps []api.AppInfo
	if err := json.Unmarshal([]byte(e.ok("ls", "--json")), &apps); err != nil {
		e.t.Fatalf("ls --json: %v", err)
	}
	return apps
}

// app returns one app from the list.
func (e *env) app(name string) api.AppInfo {
	e.t.Helper()
	for _, a := range e.list() {
		if a.Name == name {
			return a
		}
	}
	e.t.Fatalf("app %q is not listed", name)
	return api.AppInfo{}
}

// waitStatus waits until every instance of app has status.
func (e *env) waitStatus(name, status string) api.AppInfo {
	e.t.Helper()
	var a api.AppInfo
	waitFor(e.t, name+" to be "+status, func() bool {
		a = e.app(name)
		return a.Status == status
	})
	return a
}

// startApp starts this test binary as an app running script.
func (e *env) startApp(name string, script ...string) api.AppInfo {
	e.t.Helper()
	args := append([]string{"start", testproc.Command()[0], "--name", name, "--"}, script...)
	e.ok(args...)
	return e.waitStatus(name, api.StatusOnline)
}

// daemonPID returns the daemon's pid from its pid file.
func (e *env) daemonPID() int {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.home, "daemon.pid"))
	if err != nil {
		e.t.Fatalf("read daemon.pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		e.t.Fatalf("daemon.pid: %v", err)
	}
	return pid
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processes returns the live (non-zombie) processes whose command line
// contains s.
func processes(s string) []int {
	procs, _ := procfs.Scan()
	var out []int
	for _, p := range procs {
		if p.Zombie() || p.PID == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/cmdline")
		if err == nil && bytes.Contains(b, []byte(s)) {
			out = append(out, p.PID)
		}
	}
	return out
}

// killByHome kills every process whose environment names home: the daemon
// and the apps it started (they get TEND_HOME), as a last resort after a
// failed test.
func killByHome(home string) {
	procs, _ := procfs.Scan()
	for _, p := range procs {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/environ")
		if err == nil && bytes.Contains(b, []byte("TEND_HOME="+home+"\x00")) {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
}

func alive(pid int) bool { return procfs.Alive(pid, 0) }

func readPID(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, "pid file "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}
