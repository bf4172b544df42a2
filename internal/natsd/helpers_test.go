package natsd

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

const (
	testUser = "tend"
	testPass = "s3cret"
)

// start starts a server with test credentials and closes it at the end
// of the test; edit adjusts the options first.
func start(t testing.TB, edit ...func(*Options)) *Server {
	t.Helper()
	o := Options{User: testUser, Password: testPass, Name: "test"}
	for _, e := range edit {
		e(&o)
	}
	s, err := Start(o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// connect connects a nats.go client to s and closes it at the end of
// the test.
func connect(t testing.TB, s *Server, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.Timeout(5 * time.Second)}, opts...)
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// next waits for a message on a synchronous subscription.
func next(t testing.TB, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("next message on %q: %v", sub.Subject, err)
	}
	return m
}

// raw is a protocol-level client over a plain TCP connection.
type raw struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

// dialRaw connects without CONNECT; it reads the INFO line.
func dialRaw(t testing.TB, s *Server) *raw {
	t.Helper()
	c, err := net.Dial("tcp", joinHostPort("127.0.0.1", s.Port()))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, br: bufio.NewReader(c)}
	if line := r.line(); !strings.HasPrefix(line, "INFO {") {
		t.Fatalf("first line %q; want INFO", line)
	}
	return r
}

func (r *raw) send(s string) {
	r.t.Helper()
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// line reads one line, without its CRLF.
func (r *raw) line() string {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (so far %q)", err, l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads a line and checks it.
func (r *raw) expect(want string) {
	r.t.Helper()
	if got := r.line(); got != want {
		r.t.Fatalf("got %q; want %q", got, want)
	}
}

// expectClosed checks that the server closes the connection.
func (r *raw) expectClosed() {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := r.br.ReadString('\n')
	if err == nil {
		r.t.Fatalf("got %q; want the connection closed", l)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		r.t.Fatalf("connection still open")
	}
}

// login sends CONNECT with the test credentials and waits for the PONG.
func (r *raw) login(opts string) {
	r.t.Helper()
	if opts != "" {
		opts = "," + opts
	}
	r.send(`CONNECT {"user":"` + testUser + `","pass":"` + testPass + `"` + opts + "}\r\nPING\r\n")
	r.expect("PONG")
}
