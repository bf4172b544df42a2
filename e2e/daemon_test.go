package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/procfs"
	"github.com/tend-pm/tend/internal/testproc"
)

// TestAutoStartOneDaemon runs eight CLIs at once against a TEND_HOME with
// no daemon: every one succeeds, and exactly one daemon runs afterwards.
func TestAutoStartOneDaemon(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make([]string, 8)
	for i := range errs {
		wg.Go(func() {
			if out, stderr, code := e.run("ping"); code != 0 || !strings.HasPrefix(out, "pong") {
				errs[i] = "exit " + strconv.Itoa(code) + ": " + out + stderr
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != "" {
			t.Errorf("CLI %d: %s", i, err)
		}
	}
	var daemons []int
	procs, _ := procfs.Scan()
	for _, p := range procs {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/cmdline")
		environ, _ := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/environ")
		if !p.Zombie() && bytes.Equal(cmdline, []byte(tendBin+"\x00daemon\x00")) && bytes.Contains(environ, []byte("TEND_HOME="+e.home+"\x00")) {
			daemons = append(daemons, p.PID)
		}
	}
	if len(daemons) != 1 || daemons[0] != e.daemonPID() {
		t.Errorf("daemons running for this TEND_HOME: %v (pid file says %d); want exactly one", daemons, e.daemonPID())
	}
}

// TestFilesArePrivate checks the modes of everything in TEND_HOME.
func TestFilesArePrivate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startApp("web", "print", "hello", "sleep", "forever")
	for path, want := range map[string]os.FileMode{
		"":                   0o700 | os.ModeDir,
		"tend.sock":          0o600 | os.ModeSocket,
		"state.json":         0o600,
		"daemon.log":         0o600,
		"logs":               0o700 | os.ModeDir,
		"logs/web-out.log":   0o600,
		"logs/web-error.log": 0o600,
		"daemon.pid":         0o600,
	} {
		fi, err := os.Stat(filepath.Join(e.home, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if got := fi.Mode() & (os.ModeType | os.ModePerm); got != want {
			t.Errorf("mode of %q = %v; want %v", path, got, want)
		}
	}
}

// TestRefusedRequests: a browser's request (Origin header) and a request
// from another user are refused, even with the socket's permissions
// loosened, and change nothing.
func TestRefusedRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("ping")
	sock := filepath.Join(e.home, "tend.sock")
	out := filepath.Join(e.dir, "resp")

	// The owner, from another process: allowed.
	cmd := exec.Command(testproc.Command()[0], "httpget", sock, "/v1/ping", out)
	cmd.Env = []string{testproc.Env()}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "200 OK") {
		t.Fatalf("plain request from the owner: %q; want 200", b)
	}
	// A browser's request (it carries Origin): refused, and the daemon,
	// asked to die, lives on.
	if status, body := rawRequest(t, sock, "POST /v1/kill HTTP/1.0\r\nHost: tend\r\nOrigin: http://evil.example\r\n\r\n"); status != 403 || !strings.Contains(body, `"code":"invalid"`) {
		t.Errorf("request with Origin: %d %s; want 403 with the error envelope", status, body)
	}
	if _, _, code := e.run("ping"); code != 0 {
		t.Errorf("the daemon is gone after a refused kill request")
	}

	if os.Getuid() != 0 {
		t.Log("not root: the other-user check needs root to switch users")
		return
	}
	// Loosen the permissions as a careless admin might: the uid check
	// still refuses the other user.
	if err := os.Chmod(e.home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.dir, 0o777); err != nil {
		t.Fatal(err)
	}
	// The test binary sits in a directory only root may enter: the other
	// user runs a copy.
	child := filepath.Join(e.dir, "child")
	bin, err := os.ReadFile(testproc.Command()[0])
	if err == nil {
		err = os.WriteFile(child, bin, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(out)
	// Another test's fork may hold the copy open for writing for a moment
	// (until its child execs): the exec then fails with "text file busy"
	// (golang.org/issue/22315) and is tried again.
	for tries := 0; ; tries++ {
		cmd = exec.Command(child, "httpget", sock, "/v1/ping", out)
		cmd.Env = []string{testproc.Env()}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		b, err := cmd.CombinedOutput()
		if errors.Is(err, syscall.ETXTBSY) && tries < 100 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("run a client as uid 65534: %v %s", err, b)
		}
		break
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), "403 Forbidden") || !strings.Contains(string(b), "uid 65534 may not use this daemon") {
		t.Errorf("request from uid 65534: %q; want 403 naming the uid", b)
	}
}

// TestKill9Restore kills the daemon with SIGKILL; the next command finds
// every app as it was, with one process each.
func TestKill9Restore(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mark := "mk" + strconv.Itoa(os.Getpid()) + filepath.Base(e.dir)
	e.startApp("a", "print", mark+"-a", "sleep", "forever")
	e.startApp("b", "print", mark+"-b", "sleep", "forever")
	e.startApp("c", "sleep", "forever")
	e.ok("stop", "c")
	old := e.daemonPID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old daemon to die", func() bool { return !alive(old) })

	e.ok("ls") // starts a new daemon, which takes over
	e.waitStatus("a", api.StatusOnline)
	e.waitStatus("b", api.StatusOnline)
	if st := e.app("c").Status; st != api.StatusStopped {
		t.Errorf("app c was stopped before the crash; now %s", st)
	}
	if e.daemonPID() == old {
		t.Fatal("the daemon pid did not change")
	}
	for _, m := range []string{mark + "-a", mark + "-b"} {
		if got := processes(m); len(got) != 1 {
			t.Errorf("processes of %s after the takeover: %v; want exactly 1", m, got)
		}
	}
}

// TestNoOrphans: an app's tree, with a grandchild in its group and one
// that called setsid, is gone after stop, delete and kill.
func TestNoOrphans(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, verb := range [][]string{{"stop", "tree"}, {"delete", "tree"}, {"kill"}} {
		a, b := filepath.Join(e.dir, "a.pid"), filepath.Join(e.dir, "b.pid")
		os.Remove(a)
		os.Remove(b)
		app := e.startApp("tree", "spawn", a, "spawnsid", b, "sleep", "forever")
		pids := []int{app.Instances[0].PID, readPID(t, a), readPID(t, b)}
		e.ok(verb...)
		for _, pid := range pids {
			if alive(pid) {
				t.Errorf("after tend %s: process %d of the tree is alive", strings.Join(verb, " "), pid)
			}
		}
		if verb[0] == "stop" {
			e.ok("delete", "tree")
		}
	}
	if _, err := os.Stat(filepath.Join(e.home, "tend.sock")); !os.IsNotExist(err) {
		t.Errorf("after tend kill the socket is still there: %v", err)
	}
	if a := e.startApp("again", "sleep", "forever"); a.ID != 0 {
		t.Errorf("the first app after tend kill has id %d; want 0, as under pm2", a.ID)
	}
}

// TestUpdateKeepsApps: `tend update` replaces the daemon and the apps come
// back in their states: running, stopped, or errored (not started again),
// with their restart counts. A config.yaml the new daemon would refuse
// stops the update before anything is stopped.
func TestUpdateKeepsApps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	up := e.startApp("up", "sleep", "forever")
	e.startApp("down", "sleep", "forever")
	e.ok("stop", "down")
	e.ok("start", testproc.Command()[0], "--name", "flaky", "--max-restarts", "1", "--restart-delay", "10ms", "--", "exit", "3")
	flaky := e.waitStatus("flaky", api.StatusErrored)
	if err := syscall.Kill(up.Instances[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "up to be restarted", func() bool {
		a := e.app("up")
		return a.Status == api.StatusOnline && a.Instances[0].Restarts == 1
	})

	cfg := filepath.Join(e.home, "config.yaml")
	if err := os.WriteFile(cfg, []byte("bus:\n  leafnode: [nats://h:7422]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := e.daemonPID()
	_, stderr, code := e.run("update")
	if code != 2 || !strings.Contains(stderr, `unknown field "leafnode" (did you mean "leafnodes"?)`) || !strings.Contains(stderr, "nothing was stopped") {
		t.Errorf("update with a bad config.yaml: exit %d, %q; want 2, the field, a suggestion, and that nothing was stopped", code, stderr)
	}
	if e.daemonPID() != old || e.app("up").Status != api.StatusOnline {
		t.Fatal("a refused update changed the daemon or its apps")
	}
	if err := os.Remove(cfg); err != nil {
		t.Fatal(err)
	}

	e.ok("update")
	if e.daemonPID() == old {
		t.Error("update kept the same daemon")
	}
	if a := e.waitStatus("up", api.StatusOnline); a.Instances[0].Restarts != 1 {
		t.Errorf("restarts of up after update = %d; want 1, as before", a.Instances[0].Restarts)
	}
	if st := e.app("down").Status; st != api.StatusStopped {
		t.Errorf("a stopped app came back %s after update", st)
	}
	after := e.app("flaky")
	if after.Status != api.StatusErrored || after.Instances[0].Reason != flaky.Instances[0].Reason || after.Instances[0].Restarts != flaky.Instances[0].Restarts {
		t.Errorf("errored app after update: %s, %q, %d restarts; want errored, %q, %d", after.Status, after.Instances[0].Reason, after.Instances[0].Restarts, flaky.Instances[0].Reason, flaky.Instances[0].Restarts)
	}
	e.ok("restart", "flaky") // the user can still start it again
	waitFor(t, "flaky to run again", func() bool { return e.app("flaky").Instances[0].Restarts > flaky.Instances[0].Restarts })
}
