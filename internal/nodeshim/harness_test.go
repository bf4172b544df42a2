package nodeshim

// The test harness: node processes, the sockets they inherit, a stand-in
// for the daemon's control socket, and clients that never retry.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// nodeBin finds node, which every machine that runs these tests has: its
// absence fails the tests rather than skipping them.
func nodeBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required by these tests: %v", err)
	}
	return p
}

// harness is one test's world: a directory for scripts and sockets, the
// installed preload, and TEND_HOME with a stand-in for the daemon.
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

// startNotifier serves the stand-in control socket at sock until the test ends.
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://tend/fence", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := unixClient(n.sock).Do(req)
	if err != nil {
		t.Fatalf("fence: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	c, err := strconv.Atoi(string(body))
	if err != nil {
		t.Fatalf("fence: %q", body)
	}
	return c - 1
}

// check compares the bodies received with want and reports any request
// that broke the contract (method, Origin or Referer, body framing).
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

// start runs node on script with env and files as descriptors 3, 4...
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

// stderrText returns what node wrote on stderr: once node has exited, all
// of it (given a few seconds, should a child of node still hold the pipe).
func (p *nodeProc) stderrText() string {
	select {
	case <-p.done:
		select {
		case <-p.errsIn:
		case <-time.After(5 * time.Second):
		}
	default:
	}
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

// unixClient opens a new connection to the unix socket path per request.
func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// get returns the body of a GET of url.
func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
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
	tls  *tls.Config // nil: plain HTTP
	c    net.Conn
	br   *bufio.Reader
}

// answer is what rawConn.do got back.
type answer struct {
	body   string
	closed bool // Connection: close
}

// do sends GET path, dialling first if the last answer closed the
// connection; any error closes it too.
func (r *rawConn) do(ctx context.Context, path string) (answer, error) {
	if r.c == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", r.addr)
		if err != nil {
			return answer{}, err
		}
		if r.tls != nil {
			tc := tls.Client(c, r.tls)
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return answer{}, err
			}
			c = tc
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
