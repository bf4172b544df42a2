package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/rawnet"
)

// server is a real TCP backend: it writes its name and a newline on each
// connection, then echoes until the client half-closes, then closes.
type server struct {
	name string
	ln   net.Listener
	addr rawnet.Addr
}

func newBackend(t *testing.T, name string) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	b := &server{name: name, ln: ln, addr: rawnet.Addr{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := io.WriteString(c, name+"\n"); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return b
}

func newProxy(t *testing.T, opts Options) (*Proxy, rawnet.Addr) {
	t.Helper()
	ln, err := rawnet.Listen(rawnet.Addr{Host: "127.0.0.1"}, rawnet.ListenOptions{NonBlocking: true})
	if err != nil {
		t.Fatal(err)
	}
	port, err := rawnet.LocalPort(ln)
	if err != nil {
		t.Fatal(err)
	}
	p := New(ln, opts)
	go p.Serve()
	t.Cleanup(func() { _ = p.Close() })
	return p, rawnet.Addr{Host: "127.0.0.1", Port: port}
}

// dial connects through the proxy and returns the connection and the name
// of the backend that answered.
func dial(t *testing.T, addr rawnet.Addr) (*os.File, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rawnet.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read the backend's name: %v", err)
	}
	return c, strings.TrimSpace(line)
}

func TestLeastConnections(t *testing.T) {
	p, addr := newProxy(t, Options{})
	a, b := newBackend(t, "a"), newBackend(t, "b")
	p.Add(1, a.addr)
	p.Add(2, b.addr)
	p.SetReady(1, true)
	p.SetReady(2, true)
	got := map[string]int{}
	for range 6 {
		_, name := dial(t, addr)
		got[name]++
	}
	if got["a"] != 3 || got["b"] != 3 {
		t.Fatalf("6 open connections went %v, want 3 and 3", got)
	}
	if p.Conns(1) != 3 || p.Conns(2) != 3 {
		t.Fatalf("Conns = %d, %d; want 3, 3", p.Conns(1), p.Conns(2))
	}
}

func TestNotReadyGetsNothingAndClientsWait(t *testing.T) {
	p, addr := newProxy(t, Options{})
	a := newBackend(t, "a")
	p.Add(1, a.addr)
	done := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := rawnet.Dial(ctx, addr)
		if err != nil {
			done <- "dial: " + err.Error()
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			done <- "read: " + err.Error()
			return
		}
		done <- strings.TrimSpace(line)
	}()
	select {
	case got := <-done:
		t.Fatalf("a client got %q while no backend was ready", got)
	case <-time.After(100 * time.Millisecond):
	}
	p.SetReady(1, true)
	if got := <-done; got != "a" {
		t.Fatalf("the waiting client got %q, want a", got)
	}
}

func TestRefusingBackendIsSkipped(t *testing.T) {
	p, addr := newProxy(t, Options{})
	free, err := rawnet.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p.Add(1, rawnet.Addr{Host: "127.0.0.1", Port: free}) // nothing listens
	b := newBackend(t, "b")
	p.Add(2, b.addr)
	p.SetReady(1, true)
	p.SetReady(2, true)
	for range 4 {
		if _, name := dial(t, addr); name != "b" {
			t.Fatalf("got %q, want b", name)
		}
	}
}

func TestDrain(t *testing.T) {
	p, addr := newProxy(t, Options{})
	a := newBackend(t, "a")
	p.Add(1, a.addr)
	p.SetReady(1, true)
	c, _ := dial(t, addr)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	left := p.Drain(ctx, 1)
	cancel()
	if left != 1 {
		t.Fatalf("Drain with an open connection left %d, want 1", left)
	}
	// Half close: the backend sees EOF, echoes nothing more and closes;
	// the proxy passes that on and the drain completes.
	if err := rawnet.CloseWrite(c); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("read to EOF: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if left := p.Drain(ctx, 1); left != 0 {
		t.Fatalf("Drain after the connection closed left %d", left)
	}
	// A draining backend gets no new connection, even marked ready.
	p.SetReady(1, true)
	b := newBackend(t, "b")
	p.Add(2, b.addr)
	p.SetReady(2, true)
	if _, name := dial(t, addr); name != "b" {
		t.Fatalf("new connection went to %q, want b (a drains)", name)
	}
}

func TestProxyProtocolHeader(t *testing.T) {
	p, addr := newProxy(t, Options{ProxyProtocol: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		got <- line
	}()
	p.Add(1, rawnet.Addr{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port})
	p.SetReady(1, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rawnet.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line := <-got
	want := "PROXY TCP4 127.0.0.1 127.0.0.1 "
	if !strings.HasPrefix(line, want) || !strings.HasSuffix(line, " "+strconv.Itoa(addr.Port)+"\r\n") {
		t.Fatalf("header %q, want %s<client port> %d", line, want, addr.Port)
	}
}
