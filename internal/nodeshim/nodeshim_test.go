package nodeshim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
