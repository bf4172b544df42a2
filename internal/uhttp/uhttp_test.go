package uhttp

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/socket"
)

// serve starts a Server on a fresh socket and returns its path.
func serve(t *testing.T, h Handler) string {
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		srv := &Server{Handler: h, MaxBody: 1 << 10, HeaderTimeout: 5 * time.Second}
		_ = srv.Serve(ctx, ln)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return path
}

// raw sends bytes as they are and returns the whole answer.
func raw(t *testing.T, path, req string) string {
	t.Helper()
	c, err := socket.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	// Half-close: a server waiting for more of a cut-short request sees
	// the end at once instead of its timeout.
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = syscall.Shutdown(int(fd), syscall.SHUT_WR) })
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func echo(w *Response, r *Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Path", r.Path)
	fmt.Fprintf(w, "%s %s q=%s body=%s", r.Method, r.Path, r.Query.Get("q"), b)
}

func TestServerParses(t *testing.T) {
	t.Parallel()
	path := serve(t, echo)
	tests := []struct {
		name, req, want string
	}{
		{"get", "GET /v1/x%20y?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n"},
		{"body", "POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "body=hello"},
		{"bare LF", "GET /a HTTP/1.0\n\n", "200 OK"},
		{"continue", "POST /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"},
		{"garbage", "hello\r\n\r\n", "400 Bad Request"},
		{"not a path", "GET http://x/ HTTP/1.1\r\n\r\n", "400 Bad Request"},
		{"folded header", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", "400 Bad Request"},
		{"chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "411 Length Required"},
		{"too large", "POST / HTTP/1.1\r\nContent-Length: 4096\r\n\r\n", "413 Content Too Large"},
		{"short body", "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", "400 Bad Request"},
		{"bad length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "400 Bad Request"},
		{"long line", "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\n\r\n", "400 Bad Request"},
		{"many headers", "GET / HTTP/1.1\r\n" + strings.Repeat("A: b\r\n", 101) + "\r\n", "400 Bad Request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := raw(t, path, tt.req); !strings.Contains(got, tt.want) {
				t.Errorf("answer to %q:\n%q\nwant it to hold %q", tt.name, got, tt.want)
			}
		})
	}
	if got := raw(t, path, "GET /v1/x%20y HTTP/1.1\r\n\r\n"); !strings.Contains(got, "GET /v1/x y") || !strings.Contains(got, "X-Path: /v1/x y") || !strings.Contains(got, "Content-Length: ") {
		t.Errorf("unescaped path and headers: %q", got)
	}
}

func TestClientAndStreaming(t *testing.T) {
	t.Parallel()
	left := make(chan struct{})
	path := serve(t, func(w *Response, r *Request) {
		if r.Path == "/stream" {
			for i := 0; ; i++ {
				fmt.Fprintf(w, "line %d\n", i)
				if err := w.Flush(); err != nil {
					break
				}
				select {
				case <-r.Context().Done():
					close(left)
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
			return
		}
		echo(w, r)
	})
	c, err := socket.Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := Do(context.Background(), c, "POST", "/echo?q=7", Header{"tend-version": "x"}, []byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Status != 200 || string(b) != `POST /echo q=7 body={"a":1}` {
		t.Errorf("Do = %d %q", resp.Status, b)
	}

	// A stream ends for the server when the client hangs up.
	ctx, cancel := context.WithCancel(context.Background())
	c, err = socket.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = Do(ctx, c, "GET", "/stream", Header{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := resp.Body.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "line 0") {
		t.Fatalf("first read of the stream: %q %v", buf[:n], err)
	}
	cancel()
	select {
	case <-left:
	case <-time.After(5 * time.Second):
		t.Fatal("the server's request context was not cancelled when the client left")
	}
}
