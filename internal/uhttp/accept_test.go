package uhttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/socket"
)

// failing is a Listener whose first accepts fail with err.
type failing struct {
	Listener
	mu     sync.Mutex
	fails  int
	err    error
	closed bool
}

func (l *failing) Accept() (*os.File, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, l.err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func (l *failing) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.Listener.Close()
}

func listenTemp(t *testing.T) (*socket.Listener, string) {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "uh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s.sock")
	ln, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	return ln, path
}

// TestAcceptRetriedOutOfDescriptors: accept failing with EMFILE, ENFILE,
// ENOBUFS or ENOMEM does not end Serve: it waits, longer each time, and
// the next connection is served.
func TestAcceptRetriedOutOfDescriptors(t *testing.T) {
	t.Parallel()
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		t.Run(errno.Error(), func(t *testing.T) {
			t.Parallel()
			ln, path := listenTemp(t)
			fl := &failing{Listener: ln, fails: 4, err: fmt.Errorf("accept: %w", errno)}
			var mu sync.Mutex
			var delays []time.Duration
			srv := &Server{Handler: echo, HeaderTimeout: 5 * time.Second, OnAcceptError: func(err error, retry time.Duration) {
				if !errors.Is(err, errno) {
					t.Errorf("OnAcceptError(%v); want %v", err, errno)
				}
				mu.Lock()
				delays = append(delays, retry)
				mu.Unlock()
			}}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ctx, fl) }()
			if got := raw(t, path, "GET /after HTTP/1.1\r\n\r\n"); !strings.Contains(got, "200 OK") {
				t.Errorf("answer after %v: %q", errno, got)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve = %v; want nil once ctx is done", err)
			}
			mu.Lock()
			defer mu.Unlock()
			want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
			if fmt.Sprint(delays) != fmt.Sprint(want) {
				t.Errorf("retried after %v; want %v", delays, want)
			}
		})
	}
}

// TestAcceptErrorEndsServe: any other accept error ends Serve at once,
// returned, with the listener closed so clients are refused instead of
// waiting on a socket nobody accepts on.
func TestAcceptErrorEndsServe(t *testing.T) {
	t.Parallel()
	ln, path := listenTemp(t)
	fl := &failing{Listener: ln, fails: 1, err: fmt.Errorf("accept: %w", syscall.EINVAL)}
	srv := &Server{Handler: echo, OnAcceptError: func(err error, _ time.Duration) { t.Errorf("retried %v", err) }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), fl) }()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Serve = %v; want the accept error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return on EINVAL")
	}
	fl.mu.Lock()
	closed := fl.closed
	fl.mu.Unlock()
	if !closed {
		t.Error("the listener was left open")
	}
	if c, err := socket.Dial(context.Background(), path); err == nil {
		c.Close()
		t.Error("a client could still connect")
	}
}

// TestAcceptAtRlimit runs Serve in a child process whose RLIMIT_NOFILE
// is used up: a connection waiting then is served once descriptors
// are free again, and the server said it was out of them.
func TestAcceptAtRlimit(t *testing.T) {
	if os.Getenv("UHTTP_RLIMIT_CHILD") == "1" {
		if err := acceptAtRlimit(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptAtRlimit$")
	cmd.Env = append(os.Environ(), "UHTTP_RLIMIT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func acceptAtRlimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	lim.Cur = min(64, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("/tmp", "uh")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s.sock")
	ln, err := socket.Listen(path)
	if err != nil {
		return err
	}
	// The client connects and sends its request before the server runs,
	// which then finds the connection waiting with every descriptor
	// taken.
	c, err := socket.Dial(context.Background(), path)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /late HTTP/1.1\r\n\r\n"); err != nil {
		return err
	}
	var fill []*os.File
	defer func() {
		for _, f := range fill {
			f.Close()
		}
	}()
	for {
		f, err := os.Open(os.DevNull)
		if errors.Is(err, syscall.EMFILE) {
			break
		}
		if err != nil {
			return err
		}
		fill = append(fill, f)
	}
	emfile := make(chan struct{}, 100)
	srv := &Server{Handler: echo, HeaderTimeout: 10 * time.Second, OnAcceptError: func(err error, _ time.Duration) {
		if errors.Is(err, syscall.EMFILE) {
			select {
			case emfile <- struct{}{}:
			default:
			}
		}
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	for range 2 { // retried, not given up on
		select {
		case <-emfile:
		case err := <-served:
			return fmt.Errorf("Serve returned at the limit: %w", err)
		case <-time.After(10 * time.Second):
			return errors.New("the server never met EMFILE")
		}
	}
	for _, f := range fill {
		f.Close()
	}
	fill = nil
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("read the answer: %w", err)
	}
	if !strings.Contains(string(b), "200 OK") || !strings.Contains(string(b), "GET /late") {
		return fmt.Errorf("answer once descriptors were free: %q", b)
	}
	return nil
}

// TestMaxConns: with MaxConns connections open, the next waits until one
// ends.
func TestMaxConns(t *testing.T) {
	t.Parallel()
	ln, path := listenTemp(t)
	entered := make(chan string, 10)
	release := make(chan struct{})
	srv := &Server{MaxConns: 2, HeaderTimeout: 10 * time.Second, Handler: func(w *Response, r *Request) {
		entered <- r.Path
		<-release
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = srv.Serve(ctx, ln); close(done) }()
	defer func() { close(release); cancel(); <-done }()
	send := func(p string) {
		c, err := socket.Dial(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET "+p+" HTTP/1.1\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(d time.Duration) (string, bool) {
		select {
		case p := <-entered:
			return p, true
		case <-time.After(d):
			return "", false
		}
	}
	send("/1")
	send("/2")
	for range 2 {
		if _, ok := wait(10 * time.Second); !ok {
			t.Fatal("the first two requests were not served")
		}
	}
	send("/3")
	if p, ok := wait(300 * time.Millisecond); ok {
		t.Fatalf("%s was served beside two open connections; MaxConns is 2", p)
	}
	release <- struct{}{} // one of the first two ends
	if p, ok := wait(10 * time.Second); !ok || p != "/3" {
		t.Fatalf("the third request after one ended: %q %v", p, ok)
	}
}
