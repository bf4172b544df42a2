package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/loadgen"
	"github.com/tend-pm/tend/internal/rawnet"
	"github.com/tend-pm/tend/internal/testproc"
)

// Cluster mode under load. Every test here runs real instances behind a
// real port held by a real daemon, with clients that never retry, and
// asserts zero failed requests where tend promises zero.

// freePort returns a TCP port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := rawnet.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// load runs clients against port until stopped: keep-alive and a new
// connection per request at once.
type load struct {
	runners []*loadgen.Runner
}

func startLoad(t *testing.T, port int) *load {
	t.Helper()
	dial := loadgen.Dial(rawnet.Addr{Host: "127.0.0.1", Port: port})
	l := &load{}
	for _, keep := range []bool{true, false} {
		r, err := loadgen.Start(context.Background(), loadgen.Config{Dial: dial, Connections: 4, KeepAlive: keep, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		l.runners = append(l.runners, r)
	}
	t.Cleanup(func() { l.stop() })
	// Some requests must have succeeded before anything is changed.
	waitFor(t, "the first responses", func() bool {
		for _, r := range l.runners {
			if r.Snapshot().OK == 0 {
				return false
			}
		}
		return true
	})
	return l
}

// stop ends the load and returns the keep-alive and the close results.
func (l *load) stop() []loadgen.Result {
	var out []loadgen.Result
	for _, r := range l.runners {
		out = append(out, r.Stop())
	}
	return out
}

// requireNoFailures stops the load and fails the test on any failure.
func (l *load) requireNoFailures(t *testing.T) []loadgen.Result {
	t.Helper()
	res := l.stop()
	for i, r := range res {
		mode := []string{"keep-alive", "new connection per request"}[i]
		if r.Failed() > 0 || r.OK == 0 {
			t.Errorf("%s: %d ok, %d failed %v; first failures (from %s): %v", mode, r.OK, r.Failed(), r.Failures, r.Start.UTC().Format("15:04:05.000"), r.FailureSamples)
		} else {
			t.Logf("%s: %d requests, 0 failed, p50 %v p99 %v", mode, r.OK, r.P50, r.P99)
		}
	}
	return res
}

// pids returns the instance pids of app, in slot order.
func (e *env) pids(name string) []int {
	var out []int
	for _, in := range e.app(name).Instances {
		out = append(out, in.PID)
	}
	return out
}

// waitReady waits until every instance of app runs and is ready.
func (e *env) waitReady(name string) api.AppInfo {
	e.t.Helper()
	var a api.AppInfo
	waitFor(e.t, name+" to be ready", func() bool {
		a = e.app(name)
		for _, in := range a.Instances {
			if in.Status != api.StatusOnline || !in.Ready {
				return false
			}
		}
		return len(a.Instances) > 0
	})
	return a
}

// writeConfig writes a tend.json with apps and returns its path.
func (e *env) writeConfig(name string, apps ...map[string]any) string {
	e.t.Helper()
	b, err := json.Marshal(map[string]any{"apps": apps})
	if err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// serveApp is the config of this test binary serving HTTP (testproc's
// "serve" verb) on port.
func serveApp(name, how string, port int, extra map[string]any) map[string]any {
	app := map[string]any{
		"name": name, "script": testproc.Command()[0], "args": []string{"serve", how},
		"instances": 2, "port": port, "kill_timeout": "5s",
	}
	for k, v := range extra {
		app[k] = v
	}
	return app
}

func reloadUnderLoad(t *testing.T, e *env, name string, port, reloads int) {
	t.Helper()
	before := e.pids(name)
	l := startLoad(t, port)
	for i := range reloads {
		if out, errs, code := e.run("reload", name); code != 0 {
			t.Fatalf("reload %d: exit %d\n%s%s", i+1, code, out, errs)
		}
	}
	res := l.requireNoFailures(t)
	after := e.waitReady(name)
	for _, in := range after.Instances {
		if slices.Contains(before, in.PID) {
			t.Errorf("slot %d still runs pid %d from before the reloads", in.Slot, in.PID)
		}
		if in.Restarts != reloads {
			t.Errorf("slot %d: %d restarts after %d reloads", in.Slot, in.Restarts, reloads)
		}
	}
	if tags := len(res[1].ByTag); tags < 2*reloads/2 {
		t.Errorf("responses came from %d distinct processes over %d reloads of 2 instances: %v", tags, reloads, res[1].ByTag)
	}
}

// TestReloadGoListenFDs: a Go program taking its socket the systemd way
// (LISTEN_FDS, LISTEN_PID checked against its own pid), with each
// daemon-held balancing mode.
func TestReloadGoListenFDs(t *testing.T) {
	for _, balance := range []string{api.BalanceReusePort, api.BalanceShared} {
		t.Run(balance, func(t *testing.T) {
			e := newEnv(t)
			port := freePort(t)
			cfg := e.writeConfig("tend.json", serveApp("go", "fds", port, map[string]any{"balance": balance, "ready": "notify"}))
			e.ok("start", cfg)
			e.waitReady("go")
			reloadUnderLoad(t, e, "go", port, 20)
		})
	}
}

// TestReloadProxy: a program that only knows $PORT, through the proxy.
func TestReloadProxy(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	cfg := e.writeConfig("tend.json", serveApp("px", "port", port, nil))
	e.ok("start", cfg)
	a := e.waitReady("px")
	for _, in := range a.Instances {
		if in.Port == 0 || in.Port == port {
			t.Fatalf("slot %d: private port %d (public %d)", in.Slot, in.Port, port)
		}
	}
	reloadUnderLoad(t, e, "px", port, 20)
}

// nodeServer is an unmodified Node.js server: it knows nothing of tend.
const nodeServer = `const http = require('node:http');
http.createServer((req, res) => res.end('ok ' + process.pid + '\n')).listen(process.env.PORT || 3000);
`

// TestReloadNode: an unmodified node:http server, run by tend's preload
// on the daemon's sockets.
func TestReloadNode(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	script := filepath.Join(e.dir, "server.js")
	if err := os.WriteFile(script, []byte(nodeServer), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok("start", script, "-i", "2", "--port", strconv.Itoa(port), "--name", "node")
	e.waitReady("node")
	reloadUnderLoad(t, e, "node", port, 20)
}

// TestKillOneInstanceUnderLoad: SIGKILL of one instance refuses nothing,
// and fails at most the requests that instance had taken.
func TestKillOneInstanceUnderLoad(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	e.ok("start", e.writeConfig("tend.json", serveApp("k", "fds", port, map[string]any{"balance": api.BalanceReusePort})))
	e.waitReady("k")
	l := startLoad(t, port)
	victim := e.pids("k")[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new process in slot 0", func() bool {
		in := e.app("k").Instances[0]
		return in.PID != victim && in.Ready
	})
	for _, r := range l.stop() {
		if r.Failures[loadgen.Refused] > 0 || r.Failures[loadgen.Timeout] > 0 {
			t.Errorf("refused or timed out after a kill: %v %v", r.Failures, r.FailureSamples)
		}
		// Each of the 4 clients had at most one request (or one idle
		// kept-alive connection) with the killed process.
		if r.Failed() > 4 {
			t.Errorf("%d failures after killing one instance, more than its 4 possible connections: %v", r.Failed(), r.FailureSamples)
		}
		if r.OK == 0 {
			t.Error("no request succeeded")
		}
	}
}

// TestReloadNeverReady: a new version that never says it is ready fails
// the reload with a non-zero exit; the old processes keep serving.
func TestReloadNeverReady(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	v1 := e.writeConfig("v1.json", serveApp("nr", "fds", port, map[string]any{"ready": "notify", "listen_timeout": "1s", "balance": "reuseport"}))
	e.ok("start", v1)
	old := e.waitReady("nr")
	v2 := e.writeConfig("v2.json", serveApp("nr", "fds-silent", port, map[string]any{"ready": "notify", "listen_timeout": "1s", "balance": "reuseport"}))
	l := startLoad(t, port)
	out, errs, code := e.run("reload", v2)
	if code == 0 {
		t.Fatalf("reload to a version that is never ready succeeded:\n%s", out)
	}
	if !strings.Contains(errs, "slot 0") || !strings.Contains(errs, "not ready after 1s") {
		t.Errorf("the error does not say which slot failed and why: %s", errs)
	}
	l.requireNoFailures(t)
	now := e.waitReady("nr")
	for i, in := range now.Instances {
		if in.PID != old.Instances[i].PID {
			t.Errorf("slot %d: pid %d, want the old %d still serving", i, in.PID, old.Instances[i].PID)
		}
	}
	if n := len(processes("fds-silent")); n != 0 {
		t.Errorf("%d processes of the failed version are left", n)
	}
}

// TestScaleUnderLoad: adding and removing instances fails no request, in
// each balancing mode.
func TestScaleUnderLoad(t *testing.T) {
	for _, c := range []struct{ balance, how string }{
		{api.BalanceReusePort, "fds"}, {api.BalanceShared, "fds"}, {api.BalanceProxy, "port"},
	} {
		t.Run(c.balance, func(t *testing.T) {
			e := newEnv(t)
			port := freePort(t)
			e.ok("start", e.writeConfig("tend.json", serveApp("sc", c.how, port, map[string]any{"balance": c.balance})))
			e.waitReady("sc")
			l := startLoad(t, port)
			for _, step := range []struct {
				how  string
				want int
			}{{"4", 4}, {"-3", 1}, {"+2", 3}, {"1", 1}} {
				e.ok("scale", "sc", step.how)
				if a := e.waitReady("sc"); len(a.Instances) != step.want {
					t.Fatalf("scale %s: %d instances, want %d", step.how, len(a.Instances), step.want)
				}
			}
			l.requireNoFailures(t)
		})
	}
}

// TestWatchdog: an instance that stops sending WATCHDOG=1 is restarted.
func TestWatchdog(t *testing.T) {
	e := newEnv(t)
	e.ok("start", testproc.Command()[0], "--name", "wd", "--watchdog", "300ms", "--", "notify", "READY=1", "watchdog", "3", "sleep", "forever")
	first := e.waitReady("wd").Instances[0].PID
	var in api.InstanceInfo
	waitFor(t, "the watchdog to restart the hung instance", func() bool {
		in = e.app("wd").Instances[0]
		return in.Restarts >= 1 && in.PID != first && in.PID != 0
	})
	if in.LastExit == nil || in.LastExit.Signal != "SIGINT" && in.LastExit.Signal != "SIGKILL" {
		t.Errorf("last exit %+v: want the stop sequence's signal", in.LastExit)
	}
	desc := e.ok("describe", "wd")
	if !strings.Contains(e.readDaemonLog(), "watchdog timeout") {
		t.Errorf("daemon.log does not mention the watchdog; describe:\n%s", desc)
	}
}

func (e *env) readDaemonLog() string {
	b, _ := os.ReadFile(filepath.Join(e.home, "daemon.log"))
	return string(b)
}

// TestNpmStart: the same unmodified server run by `npm start`, which runs
// node under npm and a shell. The sockets reach the grandchild, its
// readiness counts for the instance, and reloads fail no request.
func TestNpmStart(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	for name, text := range map[string]string{
		"server.js":    nodeServer,
		"package.json": `{"name": "web", "private": true, "scripts": {"start": "node server.js"}}`,
	} {
		if err := os.WriteFile(filepath.Join(e.dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.ok("start", "npm", "--name", "npmweb", "-i", "2", "--port", strconv.Itoa(port), "--", "start")
	a := e.waitReady("npmweb")
	if a.Balance != api.BalanceReusePort {
		t.Errorf("npm start got balance %q, want reuseport (a Node app)", a.Balance)
	}
	reloadUnderLoad(t, e, "npmweb", port, 5)
}

// TestWaitReadyIPC: pm2's wait_ready. A Node app that says
// process.send('ready') is ready only then, through Node's own IPC
// channel; a program that is not Node gets no such channel.
func TestWaitReadyIPC(t *testing.T) {
	e := newEnv(t)
	script := filepath.Join(e.dir, "worker.js")
	marker := filepath.Join(e.dir, "go")
	app := `const fs = require('node:fs');
if (typeof process.send !== 'function') { console.error('no IPC channel'); process.exit(3); }
const t = setInterval(() => {
  if (fs.existsSync(` + strconv.Quote(marker) + `)) { clearInterval(t); process.send('ready'); setInterval(() => {}, 1000); }
}, 10);
`
	if err := os.WriteFile(script, []byte(app), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok("start", script, "--name", "w", "--wait-ready")
	waitFor(t, "the worker to run", func() bool { return e.app("w").Instances[0].PID != 0 })
	if in := e.app("w").Instances[0]; in.Ready {
		t.Fatal("ready before the app sent 'ready'")
	}
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.waitReady("w")

	envFile := filepath.Join(e.dir, "env.txt")
	e.ok("start", testproc.Command()[0], "--name", "notnode", "--wait-ready", "--", "env", envFile, "notify", "READY=1", "sleep", "forever")
	e.waitReady("notnode")
	b, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "NODE_CHANNEL_FD") {
		t.Error("a program that is not Node got NODE_CHANNEL_FD")
	}
}

// TestVerify: `tend verify` passes a well-behaved app and fails, with exit
// code 1 and the kind counted, one whose every answer is a 5xx.
func TestVerify(t *testing.T) {
	e := newEnv(t)
	good, bad := freePort(t), freePort(t)
	e.ok("start", e.writeConfig("tend.json",
		serveApp("good", "fds", good, map[string]any{"balance": api.BalanceReusePort}),
		serveApp("bad", "port", bad, map[string]any{"env": map[string]string{"STATUS": "503"}, "ready": "tcp"})))
	e.waitReady("good")
	e.waitReady("bad")

	out, errs, code := e.run("verify", "good", "--reloads", "2", "--settle", "200ms")
	if code != 0 || !strings.Contains(out, "failures:  0 (") || !strings.Contains(out, "result:    OK") ||
		!strings.Contains(out, "SIGKILL to instance 0") || !strings.Contains(out, "reload 2/2: done") {
		t.Errorf("verify good: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = e.run("verify", "bad", "--reloads", "0", "--kill=false", "--settle", "200ms")
	if code != 1 || !strings.Contains(out, "result:    FAILED") || strings.Contains(out, "5xx 0") {
		t.Errorf("verify of an app answering 503: exit %d, want 1 with 5xx counted\n%s%s", code, out, errs)
	}
	if _, errs, code := e.run("verify", "nope"); code == 0 || !strings.Contains(errs, "nope") {
		t.Errorf("verify of an unknown app: exit %d: %s", code, errs)
	}
}

// TestProxyProtocol: with proxy_protocol the app's first line is a PROXY
// v1 header naming the client.
func TestProxyProtocol(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	e.ok("start", e.writeConfig("tend.json", map[string]any{
		"name": "pp", "script": testproc.Command()[0], "args": []string{"firstline"},
		"port": port, "proxy_protocol": true,
	}))
	e.waitReady("pp")
	c, err := rawnet.Dial(context.Background(), rawnet.Addr{Host: "127.0.0.1", Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ ` + strconv.Itoa(port) + "\r\n$")
	if !want.MatchString(line) {
		t.Errorf("first line the app got: %q, want a PROXY v1 header", line)
	}
}

// TestReadyHTTPAndUnixSocket: an HTTP readiness probe on the private port,
// and an app held on a unix socket path in shared mode.
func TestReadyHTTPAndUnixSocket(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	sock := filepath.Join(e.dir, "app.sock")
	e.ok("start", e.writeConfig("tend.json",
		serveApp("probed", "port", port, map[string]any{"ready": "http:/healthz"}),
		map[string]any{"name": "unix", "script": testproc.Command()[0], "args": []string{"serve", "fds"},
			"listen": sock, "balance": api.BalanceShared, "instances": 2}))
	e.waitReady("probed")
	e.waitReady("unix")
	c, err := rawnet.Dial(context.Background(), rawnet.Addr{Path: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200") || !strings.Contains(string(b), "ok ") {
		t.Errorf("GET over the app's unix socket: %q", b)
	}
	e.ok("stop", "unix")
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the unix socket file is left after stop: %v", err)
	}
}

// TestCrashedSlotSteeredAround: in reuseport mode, while a crashed slot
// waits for its restart, new connections go to the slots that serve
// instead of queueing on the dead slot's socket.
func TestCrashedSlotSteeredAround(t *testing.T) {
	e := newEnv(t)
	port := freePort(t)
	e.ok("start", e.writeConfig("tend.json", serveApp("st", "fds", port, map[string]any{
		"balance": api.BalanceReusePort, "restart_delay": "20s"})))
	before := e.waitReady("st")
	if err := syscall.Kill(before.Instances[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "slot 0 to wait for its restart", func() bool {
		return e.app("st").Instances[0].Status == api.StatusWaitingRestart
	})
	dial := loadgen.Dial(rawnet.Addr{Host: "127.0.0.1", Port: port})
	// Half of these would wait for the restart 20 s away if they were
	// hashed onto slot 0's socket.
	res, err := loadgen.Run(context.Background(), loadgen.Config{Dial: dial, Connections: 2, Requests: 40, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 40 || res.Failed() > 0 {
		t.Fatalf("%d ok, %d failed %v: new connections queued on the crashed slot", res.OK, res.Failed(), res.FailureSamples)
	}
	if len(res.ByTag) != 1 {
		t.Errorf("answers came from %v, want only slot 1's process", res.ByTag)
	}
}

// pythonServer serves HTTP on the socket tend passes as fd 3, as a Python
// service written for systemd socket activation does.
const pythonServer = `import os, socket, http.server, socketserver
assert os.environ["LISTEN_PID"] == str(os.getpid()), "LISTEN_PID is not this process"
assert os.environ["LISTEN_FDS"] == "1"
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok %d\n" % os.getpid()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = socketserver.ThreadingTCPServer(("", 0), Handler, bind_and_activate=False)
server.socket = socket.socket(fileno=3)
server.serve_forever()
`

// TestSocketActivatedApps: programs written for systemd socket activation
// run unchanged: Go with coreos/go-systemd (activation.Listeners and
// sd_notify), reloaded under load; Python with socket.socket(fileno=3).
func TestSocketActivatedApps(t *testing.T) {
	e := newEnv(t)
	goPort, pyPort := freePort(t), freePort(t)
	script := filepath.Join(e.dir, "server.py")
	if err := os.WriteFile(script, []byte(pythonServer), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok("start", e.writeConfig("tend.json",
		serveApp("gosd", "systemd", goPort, map[string]any{"balance": api.BalanceReusePort, "ready": "notify"}),
		map[string]any{"name": "py", "script": script, "instances": 2, "port": pyPort, "balance": api.BalanceShared}))
	e.waitReady("gosd")
	reloadUnderLoad(t, e, "gosd", goPort, 5)

	e.waitReady("py")
	dial := loadgen.Dial(rawnet.Addr{Host: "127.0.0.1", Port: pyPort})
	res, err := loadgen.Run(context.Background(), loadgen.Config{Dial: dial, Connections: 4, Requests: 200, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 200 {
		t.Fatalf("python: %d of 200 ok: %v", res.OK, res.FailureSamples)
	}
	for _, in := range e.app("py").Instances {
		if in.Restarts != 0 {
			t.Errorf("python instance %d restarted %d times (its assertions failed?)", in.Slot, in.Restarts)
		}
	}
}

// TestReadyTimeoutRestarts: outside a reload, an instance that does not
// say it is ready within listen_timeout has failed: it is stopped and the
// restart policy runs, as after a crash.
func TestReadyTimeoutRestarts(t *testing.T) {
	e := newEnv(t)
	e.ok("start", testproc.Command()[0], "--name", "mute", "--ready", "notify", "--listen-timeout", "300ms", "--", "sleep", "forever")
	first := e.app("mute").Instances[0].PID
	var in api.InstanceInfo
	waitFor(t, "the silent instance to be restarted", func() bool {
		in = e.app("mute").Instances[0]
		return in.Restarts >= 1 && in.PID != first
	})
	if in.Ready {
		t.Error("the restarted silent instance reads as ready")
	}
	if !strings.Contains(e.readDaemonLog(), "not ready in time") {
		t.Error("daemon.log does not say why")
	}
}

// TestListenConflicts: a second app on a unix socket path someone listens
// on is refused, and the first keeps its socket file; readiness probes
// that need a private port are refused outside proxy mode.
func TestListenConflicts(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(e.dir, "app.sock")
	e.ok("start", e.writeConfig("a.json", map[string]any{"name": "a", "script": testproc.Command()[0],
		"args": []string{"serve", "fds"}, "listen": sock, "balance": api.BalanceShared}))
	e.waitReady("a")
	_, errs, code := e.run("start", e.writeConfig("b.json", map[string]any{"name": "b", "script": testproc.Command()[0],
		"args": []string{"serve", "fds"}, "listen": sock, "balance": api.BalanceShared}))
	if code == 0 || !strings.Contains(errs, "already listening") {
		t.Errorf("second app on a busy socket path: exit %d: %s", code, errs)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Errorf("the first app's socket file is gone after the refused start: %v", err)
	}
	if names := appNames(e.list()); !slices.Equal(names, []string{"a"}) {
		t.Errorf("apps after the refused start: %v", names)
	}
	_, errs, code = e.run("start", testproc.Command()[0], "--name", "c", "--port", strconv.Itoa(freePort(t)),
		"--balance", "reuseport", "--ready", "tcp", "--", "serve", "fds")
	if code != 2 || !strings.Contains(errs, "proxy") {
		t.Errorf("ready tcp with reuseport: exit %d, want 2 naming proxy mode: %s", code, errs)
	}
}

func appNames(apps []api.AppInfo) []string {
	var out []string
	for _, a := range apps {
		out = append(out, a.Name)
	}
	return out
}
