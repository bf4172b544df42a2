package nodeshim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
)

// testTimeout bounds each test; the real waits are far shorter.
const testTimeout = 30 * time.Second

func TestInstall(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, err := Install(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^preload-[0-9a-f]{12}\.cjs$`).MatchString(filepath.Base(path)) || filepath.Dir(path) != dir {
		t.Errorf("Install(%q) = %q; want %s/preload-<12 hex>.cjs", dir, path, dir)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v; want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, script) {
		t.Errorf("installed file differs from the embedded script")
	}

	// Already there: left alone (same inode, not rewritten).
	again, err := Install(dir)
	if err != nil || again != path {
		t.Fatalf("second Install = %q, %v; want %q", again, err, path)
	}
	fi2, _ := os.Stat(path)
	if !os.SameFile(fi, fi2) {
		t.Errorf("second Install rewrote an intact file")
	}

	// Damaged: replaced, and no temporary file is left behind.
	if err := os.WriteFile(path, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, script) {
		t.Errorf("Install did not repair a damaged file")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("dir holds %d entries; want only the script", len(ents))
	}

	if _, err := Install(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("Install into a missing directory succeeded")
	}
}

func TestNodeOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, existing, path, want string
	}{
		{"empty", "", "/a/p.cjs", `--require "/a/p.cjs"`},
		{"kept", "--max-old-space-size=512", "/a/p.cjs", `--max-old-space-size=512 --require "/a/p.cjs"`},
		{"quoted", "", `/a b/"q"\p.cjs`, `--require "/a b/\"q\"\\p.cjs"`},
		{"once", `--inspect --require "/a/p.cjs"`, "/a/p.cjs", `--inspect --require "/a/p.cjs"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NodeOptions(tt.existing, tt.path); got != tt.want {
				t.Errorf("NodeOptions(%q, %q) = %q; want %q", tt.existing, tt.path, got, tt.want)
			}
		})
	}

	// Node itself must read the quoted path: install into a directory whose
	// name needs the quoting, and check that node loaded the script.
	node := nodeBin(t)
	dir := filepath.Join(t.TempDir(), `with space "and" back\slash`)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	preload, err := Install(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "-e", "console.log(process[Symbol.for('tend.nodeshim')] === true)")
	cmd.Env = append(cleanEnv(), "NODE_OPTIONS="+NodeOptions("--max-old-space-size=256", preload))
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "true\n" {
		t.Errorf("node with NODE_OPTIONS=%q: %q, %v; want the preload loaded", NodeOptions("--max-old-space-size=256", preload), out, err)
	}
}

func TestListenEnv(t *testing.T) {
	t.Parallel()
	entries := []Entry{{"3000", 3}, {"/run/app=x.sock", 4}}
	if got, want := ListenEnv(entries), "3000=3,/run/app=x.sock=4"; got != want {
		t.Errorf("ListenEnv = %q; want %q", got, want)
	}
	if err := ValidateAll(entries); err != nil {
		t.Errorf("ValidateAll(%v) = %v", entries, err)
	}
	bad := []Entry{
		{"0", 3}, {"65536", 3}, {"03000", 3}, {"http", 3}, {"run/app.sock", 3},
		{"/a,b", 3}, {"3000", 2}, {"", 3},
	}
	for _, e := range bad {
		if err := e.Validate(); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("%+v.Validate() = %v; want ErrInvalid", e, err)
		}
	}
	if err := ValidateAll([]Entry{{"3000", 3}, {"3000", 4}}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("ValidateAll(repeated key) = %v; want ErrInvalid", err)
	}
	if err := ValidateAll([]Entry{{"3000", 3}, {"/a.sock", 3}}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("ValidateAll(repeated fd) = %v; want ErrInvalid", err)
	}
}

// helloApp is an unmodified app: it listens where it is told to and knows
// nothing of tend. It prints its address so that tests can compare.
const helloApp = `
const http = require('http');
const server = http.createServer((q, s) => s.end('ok ' + process.pid)).listen(Number(process.env.PORT));
server.on('listening', () => console.log('listening ' + JSON.stringify(server.address())));
`

func TestServesInheritedSockets(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, port, tf := listenTCP(t)
	sockPath := filepath.Join(h.dir, "app.sock")
	_, uf := listenUnix(t, sockPath)
	// Two servers on two inherited sockets: both serve, READY=1 comes once.
	app := helloApp + `
const unix = http.createServer((q, s) => s.end('unix ' + process.pid)).listen(process.env.SOCK);
unix.on('listening', () => console.log('unix ' + JSON.stringify(unix.address())));
`
	p := h.start(app, h.env(fmt.Sprintf("%d=3,%s=4", port, sockPath), "PORT="+strconv.Itoa(port), "SOCK="+sockPath), tf, uf)

	addr := p.waitLine(ctx, "listening ")
	if want := fmt.Sprintf(`{"address":"127.0.0.1","family":"IPv4","port":%d}`, port); addr != want {
		t.Errorf("server.address() = %s; want %s", addr, want)
	}
	if got, want := p.waitLine(ctx, "unix "), strconv.Quote(sockPath); got != want {
		t.Errorf("unix server.address() = %s; want %s", got, want)
	}
	pid := p.cmd.Process.Pid
	for range 5 {
		if body, err := get(ctx, tcpClient(), fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || body != fmt.Sprintf("ok %d", pid) {
			t.Fatalf("GET on port %d = %q, %v; want an answer from node %d", port, body, err, pid)
		}
		if body, err := get(ctx, unixClient(sockPath), "http://app/"); err != nil || body != fmt.Sprintf("unix %d", pid) {
			t.Fatalf("GET on %s = %q, %v; want an answer from node %d", sockPath, body, err, pid)
		}
	}
	h.notes.waitReady(ctx, t)

	// SIGINT with no handler of the app's: both servers drain, exit 0.
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if st := p.wait(ctx); st.ExitCode() != 0 {
		t.Errorf("node after SIGINT: %v; want exit 0", st)
	}
	if n := h.notes.fence(ctx, t); n != 1 {
		t.Errorf("node opened %d connections to tend.sock; want 1 (READY=1 once)", n)
	}
	h.notes.check(t, []string{"READY=1"})
	p.checkStderr(t)
}

func TestTwoInstancesShareASocket(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	ln, port, f := listenTCP(t)
	f2, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	env := h.env(fmt.Sprintf("%d=3", port), "PORT="+strconv.Itoa(port))
	a := h.start(helloApp, env, f)
	b := h.start(helloApp, env, f2)
	a.waitLine(ctx, "listening ")
	b.waitLine(ctx, "listening ")

	want := map[string]bool{fmt.Sprintf("ok %d", a.cmd.Process.Pid): true, fmt.Sprintf("ok %d", b.cmd.Process.Pid): true}
	seen := map[string]int{}
	client := tcpClient() // a new connection per request
	for i := 0; i < 2000 && (i < 200 || len(seen) < 2); i++ {
		body, err := get(ctx, client, fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil || !want[body] {
			t.Fatalf("request %d = %q, %v; want an answer from one of %v", i, body, err, want)
		}
		seen[body]++
	}
	if len(seen) != 2 {
		t.Errorf("answers by process: %v; want both instances", seen)
	}
	t.Logf("answers by process: %v", seen)
}

func TestListenForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		unix  bool
		plain bool // net, not http
		app   string
	}{
		{"express app.listen(port, cb)", false, false, `
const app = (q, s) => s.end('ok ' + process.pid);
// what express's app.listen does
function listen() { const server = http.createServer(app); return server.listen.apply(server, arguments); }
const server = listen(Number(process.env.PORT), () => report(server));`},
		{"listen({port})", false, false, `
const server = http.createServer(hello).listen({ port: Number(process.env.PORT) });
server.on('listening', () => report(server));`},
		{"listen(string port)", false, false, `
const server = http.createServer(hello).listen(process.env.PORT);
server.on('listening', () => report(server));`},
		{"listen(port, host, backlog, cb)", false, false, `
const server = http.createServer(hello);
server.listen(Number(process.env.PORT), '127.0.0.1', 64, () => report(server));`},
		{"net server", false, true, `
const server = require('net').createServer((c) => c.end('ok ' + process.pid)).listen(Number(process.env.PORT));
server.on('listening', () => report(server));`},
		{"listen(path, cb)", true, false, `
const server = http.createServer(hello);
server.listen(process.env.SOCK, () => report(server));`},
		{"listen({path})", true, false, `
const server = http.createServer(hello).listen({ path: process.env.SOCK });
server.on('listening', () => report(server));`},
		{"listen(relative path)", true, false, `
process.chdir(require('path').dirname(process.env.SOCK));
const server = http.createServer(hello).listen(require('path').basename(process.env.SOCK));
server.on('listening', () => console.log('listening ' + JSON.stringify(require('path').resolve(server.address()))));`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			app := `
const http = require('http');
const hello = (q, s) => s.end('ok ' + process.pid);
const report = (server) => console.log('listening ' + JSON.stringify(typeof server.address() === 'string' ? server.address() : server.address().port));
` + tt.app
			var p *nodeProc
			var want, url string
			var client *http.Client
			if tt.unix {
				sockPath := filepath.Join(h.dir, "app.sock")
				_, f := listenUnix(t, sockPath)
				p = h.start(app, h.env(sockPath+"=3", "SOCK="+sockPath), f)
				want, client, url = strconv.Quote(sockPath), unixClient(sockPath), "http://app/"
			} else {
				_, port, f := listenTCP(t)
				p = h.start(app, h.env(fmt.Sprintf("%d=3", port), "PORT="+strconv.Itoa(port)), f)
				want, client = strconv.Itoa(port), tcpClient()
				url = fmt.Sprintf("http://127.0.0.1:%d/", port)
			}
			if got := p.waitLine(ctx, "listening "); got != want {
				t.Errorf("server.address() = %s; want %s", got, want)
			}
			var body string
			var err error
			if tt.plain {
				body, err = rawRead(ctx, strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"))
			} else {
				body, err = get(ctx, client, url)
			}
			if want := fmt.Sprintf("ok %d", p.cmd.Process.Pid); err != nil || body != want {
				t.Errorf("request = %q, %v; want %q", body, err, want)
			}
			h.notes.waitReady(ctx, t)
			p.checkStderr(t)
		})
	}
}

func TestUnmatchedListenIsUntouched(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, port, f := listenTCP(t)
	// The app asks for port 0 (any free port), not the one tend gave.
	p := h.start(helloApp, h.env(fmt.Sprintf("%d=3", port), "PORT=0"), f)
	var addr struct{ Port int }
	if err := json.Unmarshal([]byte(p.waitLine(ctx, "listening ")), &addr); err != nil {
		t.Fatal(err)
	}
	if addr.Port == port || addr.Port == 0 {
		t.Fatalf("app listens on %d; want a port of its own, not %d", addr.Port, port)
	}
	if body, err := get(ctx, tcpClient(), fmt.Sprintf("http://127.0.0.1:%d/", addr.Port)); err != nil || body != fmt.Sprintf("ok %d", p.cmd.Process.Pid) {
		t.Errorf("GET on the app's own port = %q, %v", body, err)
	}
	// No tend socket: node's default SIGINT (death by the signal).
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if st := p.wait(ctx); !killedBy(st, syscall.SIGINT) {
		t.Errorf("node after SIGINT: %v; want killed by SIGINT", st)
	}
	if n := h.notes.fence(ctx, t); n != 0 {
		t.Errorf("node opened %d connections to tend.sock; want none", n)
	}
	p.checkStderr(t)
}

func TestMalformedListenVar(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	p := h.start(helloApp, h.env("3000", "PORT=0"))
	p.waitLine(ctx, "listening ")
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if st := p.wait(ctx); !killedBy(st, syscall.SIGINT) {
		t.Errorf("node after SIGINT: %v; want killed by SIGINT", st)
	}
	if got := p.stderrText(); strings.Count(got, "\n") != 1 || !strings.HasPrefix(got, "tend preload: ignoring TEND_NODE_LISTEN=") {
		t.Errorf("stderr = %q; want one line about TEND_NODE_LISTEN", got)
	}
}

// TestGracefulStop hammers the server with keep-alive requests, sends
// SIGINT, and then serves the connections node no longer accepts from the
// test's own copy of the socket, as the next instance would: no request
// may fail.
func TestGracefulStop(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	ln, port, f := listenTCP(t)
	p := h.start(helloApp, h.env(fmt.Sprintf("%d=3", port), "PORT="+strconv.Itoa(port)), f)
	p.waitLine(ctx, "listening ")
	h.notes.waitReady(ctx, t)
	nodeBody := fmt.Sprintf("ok %d", p.cmd.Process.Pid)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	// An idle keep-alive connection: node must close it, but only after
	// the grace period.
	idle := &rawConn{addr: addr}
	if r, err := idle.do(ctx, "/"); err != nil || r.body != nodeBody || r.closed {
		t.Fatalf("first request on the idle connection = %+v, %v", r, err)
	}

	var (
		fromNode, closing, fromGo atomic.Int64
		mu                        sync.Mutex
		failures                  []error
	)
	enough := make(chan struct{}) // node answered plenty: time to stop it
	served := make(chan struct{}) // the test answered plenty after node left
	var enoughOnce, servedOnce sync.Once
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopWorkers := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &rawConn{addr: addr}
			defer c.close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
				r, err := c.do(rctx, "/")
				rcancel()
				switch {
				case err != nil:
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				case r.body == nodeBody:
					if fromNode.Add(1) >= 200 {
						enoughOnce.Do(func() { close(enough) })
					}
					if r.closed {
						closing.Add(1)
					}
				case r.body == "ok go":
					if fromGo.Add(1) >= 40 {
						servedOnce.Do(func() { close(served) })
					}
				default:
					mu.Lock()
					failures = append(failures, fmt.Errorf("unexpected body %q", r.body))
					mu.Unlock()
				}
			}
		}()
	}
	defer stopWorkers()

	select {
	case <-enough:
	case <-ctx.Done():
		t.Fatal("node did not answer 200 requests")
	}
	idleClosed := make(chan time.Time, 1)
	go func() {
		_, _ = idle.br.ReadByte() // EOF once node ends the connection
		idleClosed <- time.Now()
	}()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	beforeSignal := fromNode.Load()
	exitCtx, exitCancel := context.WithTimeout(ctx, 2*time.Second)
	defer exitCancel()
	st := p.wait(exitCtx)
	took := time.Since(signalled)
	if st.ExitCode() != 0 {
		t.Errorf("node after SIGINT: %v; want exit 0", st)
	}
	t.Logf("node exited %v after SIGINT; %d answers from node, %d after the signal, %d with Connection: close",
		took.Round(time.Millisecond), fromNode.Load(), fromNode.Load()-beforeSignal, closing.Load())

	// Serve what node left in the queue, as a next instance would.
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok go") })}
	go srv.Serve(ln)
	defer srv.Close()
	select {
	case <-served:
	case <-ctx.Done():
		t.Fatal("the test's own server answered too few requests")
	}
	stopWorkers()

	select {
	case at := <-idleClosed:
		if d := at.Sub(signalled); d < 450*time.Millisecond {
			t.Errorf("idle keep-alive connection closed %v after SIGINT; want after the ~500ms grace", d)
		}
	default:
		t.Errorf("idle keep-alive connection still open after node exited")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("%d requests failed; first: %v", len(failures), failures[0])
	}
	if closing.Load() == 0 {
		t.Errorf("no answer from node carried Connection: close")
	}
	p.checkStderr(t)
}

// TestServerCloseDrains: an app that calls server.close() itself gets the
// drain too, not Node's http close (which since Node 19 ends idle
// keep-alive connections at once).
func TestServerCloseDrains(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, port, f := listenTCP(t)
	app := `
const http = require('http');
const server = http.createServer((q, s) => {
  if (q.url === '/slow') {
    console.log('slow');
    setTimeout(() => s.end('slow ' + process.pid), 300);
    return;
  }
  s.end('ok ' + process.pid);
}).listen(Number(process.env.PORT));
server.on('listening', () => console.log('listening'));
process.on('SIGUSR2', () => { console.log('closing'); server.close(() => console.log('closed')); });
`
	p := h.start(app, h.env(fmt.Sprintf("%d=3", port), "PORT="+strconv.Itoa(port)), f)
	p.waitLine(ctx, "listening")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	pid := p.cmd.Process.Pid
	idleA, idleB, slow := &rawConn{addr: addr}, &rawConn{addr: addr}, &rawConn{addr: addr}
	for _, c := range []*rawConn{idleA, idleB, slow} {
		if r, err := c.do(ctx, "/"); err != nil || r.closed {
			t.Fatalf("request = %+v, %v", r, err)
		}
	}
	slowDone := make(chan error, 1)
	go func() {
		r, err := slow.do(ctx, "/slow")
		if err == nil && (r.body != fmt.Sprintf("slow %d", pid) || !r.closed) {
			err = fmt.Errorf("in-flight answer %+v; want its body with Connection: close", r)
		}
		slowDone <- err
	}()
	p.waitLine(ctx, "slow")
	if err := p.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	closedAt := time.Now()
	p.waitLine(ctx, "closing")

	// A request on an idle connection within the grace period is answered,
	// with Connection: close.
	if r, err := idleB.do(ctx, "/"); err != nil || r.body != fmt.Sprintf("ok %d", pid) || !r.closed {
		t.Errorf("request on an idle connection after close() = %+v, %v; want an answer with Connection: close", r, err)
	}
	if err := <-slowDone; err != nil {
		t.Error(err)
	}
	// The idle one is ended, but not before the grace period.
	if _, err := idleA.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("idle connection: read %v; want EOF", err)
	}
	if d := time.Since(closedAt); d < 450*time.Millisecond {
		t.Errorf("idle connection closed %v after close(); want after the ~500ms grace", d)
	}
	p.waitLine(ctx, "closed")
	if st := p.wait(ctx); st.ExitCode() != 0 {
		t.Errorf("node: %v; want exit 0 once its server closed", st)
	}
	p.checkStderr(t)
}

func TestAppSignalHandlerKeepsControl(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, port, f := listenTCP(t)
	app := helloApp + `
process.on('SIGINT', () => console.log('app handled SIGINT'));
`
	p := h.start(app, h.env(fmt.Sprintf("%d=3", port), "PORT="+strconv.Itoa(port)), f)
	p.waitLine(ctx, "listening ")
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	p.waitLine(ctx, "app handled SIGINT")
	// Still serving, not draining: keep-alive answers, no Connection: close.
	c := &rawConn{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	defer c.close()
	for range 3 {
		if r, err := c.do(ctx, "/"); err != nil || r.closed {
			t.Fatalf("request after the app's SIGINT = %+v, %v; want a keep-alive answer", r, err)
		}
	}
	// SIGTERM, which the app does not handle, drains and exits 0.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := p.wait(ctx); st.ExitCode() != 0 {
		t.Errorf("node after SIGTERM: %v; want exit 0", st)
	}
	p.checkStderr(t)
}

// TestNpmWrapper: `npm start` is node running a shell running node. The
// wrapper loads the preload too (NODE_OPTIONS is inherited) but never
// listens, so it keeps node's default signals; the app it runs gets the
// sockets, which node itself would not pass on (it marks inherited
// descriptors close-on-exec).
func TestNpmWrapper(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, wrapper string }{
		{"spawn, stdio inherit", `
const child = require('child_process').spawn(process.execPath, [process.env.APP], { stdio: 'inherit' });`},
		{"sh -c, as npm runs scripts", `
const env = { ...process.env, NODE: process.execPath };
const child = require('child_process').spawn('/bin/sh', ['-c', '"$NODE" "$APP"'], { stdio: 'inherit', env });`},
		{"fork, IPC at fd 3", `
const child = require('child_process').fork(process.env.APP);`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
			defer cancel()
			_, port, f := listenTCP(t)
			appPath := filepath.Join(h.dir, "server.js")
			app := helloApp + `
console.log('app ' + process.pid);
process.on('exit', (code) => console.log('app exit ' + code));
`
			if err := os.WriteFile(appPath, []byte(app), 0o600); err != nil {
				t.Fatal(err)
			}
			p := h.start(tt.wrapper, h.env(fmt.Sprintf("%d=3", port), "PORT="+strconv.Itoa(port), "APP="+appPath), f)
			appPid := p.waitLine(ctx, "app ")
			if want := fmt.Sprintf(`{"address":"127.0.0.1","family":"IPv4","port":%d}`, port); p.waitLine(ctx, "listening ") != want {
				t.Errorf("the app does not listen on the inherited socket")
			}
			if appPid == strconv.Itoa(p.cmd.Process.Pid) {
				t.Fatalf("the app runs in the wrapper's process")
			}
			if body, err := get(ctx, tcpClient(), fmt.Sprintf("http://127.0.0.1:%d/", port)); err != nil || body != "ok "+appPid {
				t.Errorf("GET = %q, %v; want an answer from the app, pid %s", body, err, appPid)
			}
			h.notes.waitReady(ctx, t)

			// As the daemon does: SIGINT to the whole group.
			if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			if st := p.wait(ctx); !killedBy(st, syscall.SIGINT) {
				t.Errorf("wrapper after SIGINT: %v; want killed by SIGINT (node's default)", st)
			}
			if got := p.waitLine(ctx, "app exit "); got != "0" {
				t.Errorf("app exit code %s; want 0 (drained)", got)
			}
			if n := h.notes.fence(ctx, t); n != 1 {
				t.Errorf("%d connections to tend.sock; want 1 (the app's READY=1)", n)
			}
			p.checkStderr(t)
		})
	}
}

// TestAppChildren: an app that uses its socket does not pass it on, and
// its children are not told of it: a forked child's descriptor 3 is its
// IPC channel, which must not be taken for a listening socket.
func TestAppChildren(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, port, f := listenTCP(t)
	childPath := filepath.Join(h.dir, "child.js")
	child := `
console.log('child env ' + (process.env.TEND_NODE_LISTEN || 'none'));
require('http').createServer().listen(Number(process.env.PORT)).on('error', (e) => {
  console.log('child listen ' + e.code);
  process.send('hi', () => process.disconnect());
});
`
	if err := os.WriteFile(childPath, []byte(child), 0o600); err != nil {
		t.Fatal(err)
	}
	app := helloApp + `
server.on('listening', () => {
  const c = require('child_process').fork(process.env.CHILD);
  c.on('message', (m) => console.log('ipc ' + m));
});
`
	p := h.start(app, h.env(fmt.Sprintf("%d=3", port), "PORT="+strconv.Itoa(port), "CHILD="+childPath), f)
	if got := p.waitLine(ctx, "child env "); got != "none" {
		t.Errorf("child's TEND_NODE_LISTEN = %q; want none", got)
	}
	if got := p.waitLine(ctx, "child listen "); got != "EADDRINUSE" {
		t.Errorf("child's listen: %s; want EADDRINUSE, as without tend", got)
	}
	if got := p.waitLine(ctx, "ipc "); got != "hi" {
		t.Errorf("message from the child: %q", got)
	}
	p.checkStderr(t)
}

// TestClusterApp: a cluster app's workers listen through the primary,
// whose listen takes the inherited socket and hands connections out.
func TestClusterApp(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	_, port, f := listenTCP(t)
	app := `
const cluster = require('cluster');
const http = require('http');
if (cluster.isPrimary) {
  cluster.fork();
  cluster.fork();
  cluster.on('listening', (w, a) => console.log('worker ' + w.process.pid + ' ' + a.port));
} else {
  http.createServer((q, s) => s.end('ok ' + process.pid)).listen(Number(process.env.PORT));
}
`
	p := h.start(app, h.env(fmt.Sprintf("%d=3", port), "PORT="+strconv.Itoa(port)), f)
	want := map[string]bool{}
	for range 2 {
		pid, wport, _ := strings.Cut(p.waitLine(ctx, "worker "), " ")
		if wport != strconv.Itoa(port) {
			t.Errorf("worker %s listens on %s; want %d", pid, wport, port)
		}
		want["ok "+pid] = true
	}
	seen := map[string]int{}
	for i := 0; i < 2000 && (i < 50 || len(seen) < 2); i++ {
		body, err := get(ctx, tcpClient(), fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil || !want[body] {
			t.Fatalf("request %d = %q, %v; want an answer from a worker %v", i, body, err, want)
		}
		seen[body]++
	}
	if len(seen) != 2 {
		t.Errorf("answers by worker: %v; want both", seen)
	}
	h.notes.waitReady(ctx, t)
	p.checkStderr(t)
}

// --- harness ---

func nodeBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required by these tests: %v", err)
	}
	return p
}

type harness struct {
	t       *testing.T
	node    string
	dir     string // scripts and unix sockets
	preload string
	home    string
	notes   *notifier
	scripts atomic.Int32
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, node: nodeBin(t)}
	// Short directories: a unix socket path must fit in 108 bytes.
	var err error
	if h.dir, err = os.MkdirTemp("", "ns"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(h.dir) })
	if h.preload, err = Install(h.dir); err != nil {
		t.Fatal(err)
	}
	h.home = filepath.Join(h.dir, "home")
	if err := os.Mkdir(h.home, 0o700); err != nil {
		t.Fatal(err)
	}
	h.notes = startNotifier(t, filepath.Join(h.home, "tend.sock"))
	return h
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "NODE_OPTIONS=") || strings.HasPrefix(kv, "TEND_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// env is the environment the daemon gives an instance, plus extra.
func (h *harness) env(listen string, extra ...string) []string {
	env := append(cleanEnv(),
		"NODE_OPTIONS="+NodeOptions("--max-http-header-size=16384", h.preload),
		"TEND_HOME="+h.home,
		ListenVar+"="+listen)
	return append(env, extra...)
}

// notifier plays the daemon's control socket: it records POST /v1/notify.
type notifier struct {
	sock  string
	ready chan struct{} // closed at the first READY=1

	mu     sync.Mutex
	conns  int // accepted, in order (Serve's loop counts them)
	bodies []string
	bad    []string
}

func startNotifier(t *testing.T, sock string) *notifier {
	n := &notifier{sock: sock, ready: make(chan struct{})}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	srv := &http.Server{
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				n.mu.Lock()
				n.conns++
				n.mu.Unlock()
			}
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/fence" {
				n.mu.Lock()
				fmt.Fprint(w, n.conns)
				n.mu.Unlock()
				return
			}
			body, _ := io.ReadAll(r.Body)
			var problems []string
			if r.Method != http.MethodPost || r.URL.Path != "/v1/notify" {
				problems = append(problems, r.Method+" "+r.URL.Path)
			}
			if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
				problems = append(problems, "Origin or Referer sent")
			}
			if len(r.TransferEncoding) > 0 || r.ContentLength != int64(len(body)) {
				problems = append(problems, fmt.Sprintf("body framing: %v, Content-Length %d", r.TransferEncoding, r.ContentLength))
			}
			n.mu.Lock()
			n.bodies = append(n.bodies, string(body))
			n.bad = append(n.bad, problems...)
			n.mu.Unlock()
			if string(body) == "READY=1" {
				once.Do(func() { close(n.ready) })
			}
			w.WriteHeader(http.StatusNoContent)
		}),
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return n
}

func (n *notifier) waitReady(ctx context.Context, t *testing.T) {
	t.Helper()
	select {
	case <-n.ready:
	case <-ctx.Done():
		t.Fatal("no READY=1 on tend.sock")
	}
}

// fence returns how many connections reached the socket before it: the
// server accepts in order, so once node is gone, anything it ever sent
// was accepted before the fence's own connection.
func (n *notifier) fence(ctx context.Context, t *testing.T) int {
	t.Helper()
	body, err := get(ctx, unixClient(n.sock), "http://tend/fence")
	if err != nil {
		t.Fatalf("fence: %v", err)
	}
	c, err := strconv.Atoi(body)
	if err != nil {
		t.Fatalf("fence: %q", body)
	}
	return c - 1
}

func (n *notifier) check(t *testing.T, want []string) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if strings.Join(n.bodies, "|") != strings.Join(want, "|") || len(n.bad) > 0 {
		t.Errorf("notify bodies %q (problems %q); want %q", n.bodies, n.bad, want)
	}
}

// nodeProc is a node process in its own process group, killed at cleanup.
type nodeProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	done   chan struct{} // closed when Wait returned
	mu     sync.Mutex
	stderr bytes.Buffer
	errsIn chan struct{} // closed when stderr reached EOF
}

func (h *harness) start(script string, env []string, files ...*os.File) *nodeProc {
	t := h.t
	t.Helper()
	path := filepath.Join(h.dir, fmt.Sprintf("app%d.js", h.scripts.Add(1)))
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &nodeProc{t: t, lines: make(chan string, 1000), done: make(chan struct{}), errsIn: make(chan struct{})}
	p.cmd = exec.Command(h.node, path)
	p.cmd.Dir = h.dir
	p.cmd.Env = env
	p.cmd.ExtraFiles = files
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Pipes of our own, so that Wait returns when node exits even while a
	// child it started still holds them.
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = outW, errW
	err = p.cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	go func() {
		defer errR.Close()
		b := make([]byte, 4096)
		for {
			n, err := errR.Read(b)
			p.mu.Lock()
			p.stderr.Write(b[:n])
			p.mu.Unlock()
			if err != nil {
				close(p.errsIn)
				return
			}
		}
	}()
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("node %d did not die", p.cmd.Process.Pid)
		}
	})
	return p
}

// waitLine returns the rest of the next stdout line that starts with prefix.
func (p *nodeProc) waitLine(ctx context.Context, prefix string) string {
	p.t.Helper()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("node's output ended before a line %q; stderr: %s", prefix, p.stderrText())
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		case <-ctx.Done():
			p.t.Fatalf("no line %q from node: %v; stderr: %s", prefix, ctx.Err(), p.stderrText())
		}
	}
}

// wait returns node's exit status, failing the test if it is still
// running when ctx ends.
func (p *nodeProc) wait(ctx context.Context) *os.ProcessState {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState
	case <-ctx.Done():
		p.t.Fatalf("node %d still running: %v; stderr: %s", p.cmd.Process.Pid, ctx.Err(), p.stderrText())
		return nil
	}
}

func (p *nodeProc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// checkStderr: the preload says nothing when all goes well.
func (p *nodeProc) checkStderr(t *testing.T) {
	t.Helper()
	if s := p.stderrText(); s != "" {
		t.Errorf("node's stderr: %s", s)
	}
}

func killedBy(st *os.ProcessState, sig syscall.Signal) bool {
	ws, ok := st.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

// listenTCP makes the socket the daemon would, and the copy of it to pass.
func listenTCP(t *testing.T) (*net.TCPListener, int, *os.File) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := ln.(*net.TCPListener)
	f, err := tl.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(); tl.Close() })
	return tl, tl.Addr().(*net.TCPAddr).Port, f
}

func listenUnix(t *testing.T, path string) (*net.UnixListener, *os.File) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ul := ln.(*net.UnixListener)
	f, err := ul.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(); ul.Close() })
	return ul, f
}

// tcpClient opens a new connection per request.
func tcpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

func get(ctx context.Context, c *http.Client, url string) (string, error) {
	method := http.MethodGet
	if strings.HasSuffix(url, "/fence") {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// rawRead reads what a plain TCP server sends before it closes.
func rawRead(ctx context.Context, addr string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// rawConn is a keep-alive HTTP/1.1 client on one connection with no
// retries of any kind: every failure is the test's to see.
type rawConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
}

type answer struct {
	body   string
	closed bool // Connection: close
}

func (r *rawConn) do(ctx context.Context, path string) (answer, error) {
	if r.c == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", r.addr)
		if err != nil {
			return answer{}, err
		}
		r.c, r.br = c, bufio.NewReader(c)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = r.c.SetDeadline(dl)
	}
	a, err := r.roundTrip(path)
	if err != nil || a.closed {
		r.close()
	}
	return a, err
}

func (r *rawConn) roundTrip(path string) (answer, error) {
	if _, err := io.WriteString(r.c, "GET "+path+" HTTP/1.1\r\nHost: app\r\n\r\n"); err != nil {
		return answer{}, err
	}
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{body: string(b), closed: resp.Close}, err
}

func (r *rawConn) close() {
	if r.c != nil {
		r.c.Close()
		r.c = nil
	}
}
