package rawnet

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestParseAddr(t *testing.T) {
	good := map[string]string{
		"3000":               ":3000",
		":3000":              ":3000",
		"*:80":               ":80",
		"127.0.0.1:3000":     "127.0.0.1:3000",
		"localhost:8080":     "127.0.0.1:8080",
		"[::1]:3000":         "[::1]:3000",
		"[::]:3000":          "[::]:3000",
		"/run/app.sock":      "/run/app.sock",
		"unix:/tmp/a/../b":   "/tmp/b",
		"[::ffff:1.2.3.4]:1": "1.2.3.4:1",
	}
	for in, want := range good {
		a, err := ParseAddr(in)
		if err != nil {
			t.Errorf("ParseAddr(%q): %v", in, err)
			continue
		}
		if a.String() != want {
			t.Errorf("ParseAddr(%q) = %q, want %q", in, a, want)
		}
		if b, err := ParseAddr(a.String()); err != nil || b != a {
			t.Errorf("round trip of %q: %v, %v", a, b, err)
		}
	}
	for _, in := range []string{"", "0", "70000", "x", "example.com:80", "::1:3000", "[::1:3000", "unix:rel.sock", "1.2.3.4:"} {
		if a, err := ParseAddr(in); err == nil {
			t.Errorf("ParseAddr(%q) = %v, want an error", in, a)
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestListenDialAccept(t *testing.T) {
	l, err := Listen(Addr{Host: "127.0.0.1"}, ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port, err := LocalPort(l)
	if err != nil || port == 0 {
		t.Fatalf("LocalPort = %d, %v", port, err)
	}
	if Pending(l) {
		t.Fatal("Pending before any connection")
	}
	c, err := Dial(ctx(t), Addr{Host: "127.0.0.1", Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := Accept(ctx(t), l)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v", buf, err)
	}
	// The listening socket stays blocking: instances may read the flag.
	if fl, err := fcntlFlags(l); err != nil || fl&syscall.O_NONBLOCK != 0 {
		t.Fatalf("listener flags %#x, %v: want blocking", fl, err)
	}
}

func fcntlFlags(f *os.File) (int, error) {
	var fl int
	err := control(f, func(fd int) error {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
		if e != 0 {
			return e
		}
		fl = int(r)
		return nil
	})
	return fl, err
}

func TestDialRefused(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Dial(ctx(t), Addr{Host: "127.0.0.1", Port: port})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial to a closed port: %v, want ECONNREFUSED", err)
	}
}

func TestEveryInterfaceIsDualStack(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen(Addr{Port: port}, ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, host := range []string{"127.0.0.1", "::1"} {
		c, err := Dial(ctx(t), Addr{Host: host, Port: port})
		if err != nil {
			if host == "::1" && errors.Is(err, syscall.EADDRNOTAVAIL) {
				continue // no IPv6 loopback on this machine
			}
			t.Fatalf("dial %s: %v", host, err)
		}
		c.Close()
	}
}

func TestUnixSocketStaleAndBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.sock")
	a := Addr{Path: path}
	l, err := Listen(a, ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(a, ListenOptions{}); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second Listen on a live socket: %v, want EADDRINUSE", err)
	}
	l.Close() // the file stays: a stale socket
	l2, err := Listen(a, ListenOptions{})
	if err != nil {
		t.Fatalf("Listen over a stale socket file: %v", err)
	}
	l2.Close()
	if err := os.WriteFile(path+".txt", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(Addr{Path: path + ".txt"}, ListenOptions{}); err == nil {
		t.Fatal("Listen over a regular file succeeded")
	}
}

// TestSteer checks that a steered group leaves the sockets not named
// alone: they can be closed, or wait for a new process, with nothing new
// queued on them.
func TestSteer(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	a := Addr{Host: "127.0.0.1", Port: port}
	var group []*os.File
	for range 3 {
		l, err := Listen(a, ListenOptions{ReusePort: true})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		group = append(group, l)
	}
	if err := Steer(group[0], []int{0, 2}); err != nil {
		t.Fatalf("Steer: %v", err)
	}
	var conns []*os.File
	for range 60 {
		c, err := Dial(ctx(t), a)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	got := make([]int, 3)
	for i, l := range group {
		for Pending(l) {
			c, err := Accept(ctx(t), l)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			got[i]++
		}
	}
	if got[1] != 0 || got[0] == 0 || got[2] == 0 || got[0]+got[2] != 60 {
		t.Fatalf("connections per socket %v: want all 60 on sockets 0 and 2, both used", got)
	}
	if err := Unsteer(group[0]); err != nil {
		t.Fatalf("Unsteer: %v", err)
	}
}

func TestPrivatePort(t *testing.T) {
	p, err := PrivatePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen(Addr{Host: "127.0.0.1", Port: p}, ListenOptions{})
	if err != nil {
		t.Fatalf("PrivatePort %d is not free: %v", p, err)
	}
	l.Close()
}
