package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/cli"
	"github.com/tend-pm/tend/internal/testproc"
)

// TestTakeoverByEnvironment: after the daemon is SIGKILLed, the next one
// stops every process the environment ties to an app of this TEND_HOME,
// recorded or not (one started by hand here stands for an instance the
// old daemon started just before it died), and leaves alone a process that
// merely has TEND_HOME set (a user's shell).
func TestTakeoverByEnvironment(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startApp("a", "sleep", "forever")
	old := e.daemonPID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old daemon to die", func() bool { return !alive(old) })
	start := func(env ...string) int {
		cmd := exec.Command(testproc.Command()[0], "sleep", "forever")
		cmd.Env = append([]string{testproc.Env()}, env...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = cmd.Wait() }()
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		return cmd.Process.Pid
	}
	untracked := start("TEND_HOME="+e.home, "TEND_APP=a", "TEND_INSTANCE=0")
	shell := start("TEND_HOME=" + e.home)
	e.ok("ls")
	e.waitStatus("a", api.StatusOnline)
	waitFor(t, "the untracked instance to be stopped", func() bool { return !alive(untracked) })
	if !alive(shell) {
		t.Error("a process with only TEND_HOME in its environment was killed")
	}
}

// TestNoAppsWithoutASocket: a daemon that cannot listen starts no app.
func TestNoAppsWithoutASocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mark := "mk-nosock-" + filepath.Base(e.dir)
	e.startApp("a", "print", mark, "sleep", "forever")
	old := e.daemonPID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old daemon to die", func() bool { return !alive(old) })
	killByHome(e.home) // the app too: only the state remains
	waitFor(t, "the app to die", func() bool { return len(processes(mark)) == 0 })
	sock := filepath.Join(e.home, "tend.sock")
	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(sock, "in-the-way"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, errs, code := e.run("ls")
	if code != cli.ExitNoDaemon || !strings.Contains(errs, "tend.sock") {
		t.Errorf("ls with the socket path blocked: exit %d, %q", code, errs)
	}
	if got := processes(mark); len(got) != 0 {
		t.Errorf("a daemon that could not listen started the app: %v", got)
	}
}

// TestNoInheritedDescriptors: file descriptors of the shell that ran tend
// (here, one that is not close-on-exec) reach neither the daemon nor the
// apps.
func TestNoInheritedDescriptors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	leak, err := os.Create(filepath.Join(e.dir, "leak"))
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tendBin, "start", sleep, "--name", "nap", "--", "1000")
	cmd.Env = e.environ()
	// fds 3 and 4 of the CLI: the daemon gets its readiness pipe as fd 3,
	// so fd 4 is the one that would leak.
	cmd.ExtraFiles = []*os.File{leak, leak}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start: %v %s", err, out)
	}
	app := e.waitStatus("nap", api.StatusOnline)
	for _, pid := range []int{e.daemonPID(), app.Instances[0].PID} {
		dir := "/proc/" + strconv.Itoa(pid) + "/fd"
		entries, _ := os.ReadDir(dir)
		for _, en := range entries {
			if target, _ := os.Readlink(filepath.Join(dir, en.Name())); target == leak.Name() {
				t.Errorf("process %d holds the CLI's file %s as fd %s", pid, target, en.Name())
			}
		}
		if pid == app.Instances[0].PID && len(entries) != 3 {
			var fds []string
			for _, en := range entries {
				target, _ := os.Readlink(filepath.Join(dir, en.Name()))
				fds = append(fds, en.Name()+"->"+target)
			}
			t.Errorf("the app has fds %v; want only 0, 1 and 2", fds)
		}
	}
}

// TestBadRestartLeavesAppRunning: restarting from a config file whose new
// spec cannot be applied leaves the app running as it was.
func TestBadRestartLeavesAppRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bin := testproc.Command()[0]
	cfg := filepath.Join(e.dir, "app.yaml")
	writeFile(t, cfg, "apps:\n  - name: steady\n    script: "+bin+"\n    args: [sleep, forever]\n", 0o644)
	e.ok("start", "app.yaml")
	before := e.waitStatus("steady", api.StatusOnline).Instances[0].PID
	if err := os.Mkdir(filepath.Join(e.dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg, "apps:\n  - name: steady\n    script: "+bin+"\n    args: [sleep, forever]\n    out_file: ./adir\n", 0o644)
	if _, errs, code := e.run("restart", "app.yaml"); code == 0 {
		t.Errorf("restart with an out_file that is a directory succeeded: %s", errs)
	}
	a := e.app("steady")
	if a.Status != api.StatusOnline || a.Instances[0].PID != before {
		t.Errorf("after a refused restart: %s pid %d; want still online as pid %d", a.Status, a.Instances[0].PID, before)
	}
}

// TestStartPrecedence: a stopped app is started by name even when a
// directory has that name; an unknown id says so; a program that cannot
// be executed is refused and leaves nothing in the list.
func TestStartPrecedence(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startApp("api", "sleep", "forever")
	e.ok("stop", "api")
	if err := os.Mkdir(filepath.Join(e.dir, "api"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.ok("start", "api")
	e.waitStatus("api", api.StatusOnline)

	if _, errs, code := e.run("start", "7"); code != cli.ExitFailed || !strings.Contains(errs, "no app has id 7") {
		t.Errorf("start 7: exit %d %q", code, errs)
	}
	writeFile(t, filepath.Join(e.dir, "noshebang"), "echo hi\n", 0o755)
	if _, errs, code := e.run("start", "noshebang"); code != cli.ExitFailed || !strings.Contains(errs, "cannot start") {
		t.Errorf("start of a file with no shebang: exit %d %q; want a refusal saying it cannot start", code, errs)
	}
	if n := len(e.list()); n != 1 {
		t.Errorf("after refused starts the list has %d apps; want 1", n)
	}
}
