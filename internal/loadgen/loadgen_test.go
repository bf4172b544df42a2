package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testLimit bounds every test's load; a test that hits it has hung.
const testLimit = 20 * time.Second

// dialers are the two ways tests connect: package net (as a caller might
// in tests), and DialTCP's raw sockets (as tend does).
var dialers = []struct {
	name string
	dial func(t *testing.T, addr string) DialFunc
}{
	{"net", func(t *testing.T, addr string) DialFunc {
		var d net.Dialer
		return func(ctx context.Context) (Conn, error) {
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return c, nil
		}
	}},
	{"raw", func(t *testing.T, addr string) DialFunc {
		dial, err := DialTCP(addr)
		if err != nil {
			t.Fatal(err)
		}
		return dial
	}},
}

// forEachDialer runs f once with each dialer.
func forEachDialer(t *testing.T, f func(t *testing.T, dial func(addr string) DialFunc)) {
	for _, d := range dialers {
		t.Run(d.name, func(t *testing.T) {
			f(t, func(addr string) DialFunc { return d.dial(t, addr) })
		})
	}
}

// run runs cfg, which must set Requests, to its end.
func run(t *testing.T, cfg Config) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testLimit)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("load did not finish within %v: %+v", testLimit, res)
	}
	if res.Requests != cfg.Requests || res.Abandoned != 0 {
		t.Fatalf("Requests = %d, Abandoned = %d; want %d, 0", res.Requests, res.Abandoned, cfg.Requests)
	}
	return res
}

// wantFailures checks that every request failed with kind.
func wantFailures(t *testing.T, res Result, kind Kind) {
	t.Helper()
	if res.OK != 0 || res.Failed() != res.Requests || res.Failures[kind] != res.Requests || len(res.Failures) != 1 {
		t.Fatalf("OK = %d, Failures = %v (of %d); want all %v; samples: %v", res.OK, res.Failures, res.Requests, kind, res.FailureSamples)
	}
	if len(res.FailureSamples) != min(res.Requests, MaxSamples) {
		t.Errorf("%d samples; want %d", len(res.FailureSamples), min(res.Requests, MaxSamples))
	}
}

// wantOK checks that every request succeeded.
func wantOK(t *testing.T, res Result) {
	t.Helper()
	if res.OK != res.Requests || res.Failed() != 0 || len(res.Failures) != 0 {
		t.Fatalf("OK = %d of %d, Failures = %v; samples: %v", res.OK, res.Requests, res.Failures, res.FailureSamples)
	}
	if res.P50 <= 0 || res.P50 > res.P99 || res.P99 > res.Max {
		t.Errorf("P50, P99, Max = %v, %v, %v; want 0 < P50 <= P99 <= Max", res.P50, res.P99, res.Max)
	}
}

// rawServer serves each TCP connection with serve, in its own goroutine,
// until the test ends. It returns the address and the count of accepted
// connections.
func rawServer(t *testing.T, serve func(c net.Conn)) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				serve(c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), &accepted
}

// readRequest reads a request's head.
func readRequest(br *bufio.Reader) error {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			return nil
		}
	}
}

// answer serves every request on the connection with resp, and closes the
// connection after the first if closeAfter.
func answer(resp string, closeAfter bool) func(net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		for readRequest(br) == nil {
			if _, err := io.WriteString(c, resp); err != nil || closeAfter {
				return
			}
		}
	}
}

// freeAddr returns an address with nothing listening on it.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestHealthyServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" || r.Host != "app.test" {
			http.Error(w, "wrong request", http.StatusNotFound)
			return
		}
		io.WriteString(w, "ok 4711\nmore body\n")
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, keepAlive := range []bool{true, false} {
		t.Run(fmt.Sprintf("keepalive=%v", keepAlive), func(t *testing.T) {
			forEachDialer(t, func(t *testing.T, dial func(string) DialFunc) {
				const n = 300
				res := run(t, Config{
					Dial: dial(addr), Connections: 4, KeepAlive: keepAlive,
					Host: "app.test", Path: "/health", Requests: n,
				})
				wantOK(t, res)
				if res.ByTag["ok 4711"] != n || len(res.ByTag) != 1 {
					t.Errorf("ByTag = %v; want ok 4711: %d", res.ByTag, n)
				}
				if keepAlive && res.Conns > 4 {
					t.Errorf("Conns = %d with keep-alive; want at most 4", res.Conns)
				}
				if !keepAlive && res.Conns != n {
					t.Errorf("Conns = %d without keep-alive; want %d", res.Conns, n)
				}
			})
		})
	}
}

func TestRefused(t *testing.T) {
	addr := freeAddr(t)
	forEachDialer(t, func(t *testing.T, dial func(string) DialFunc) {
		for _, mode := range []string{ModeHTTP, ModeTCP} {
			res := run(t, Config{Dial: dial(addr), Mode: mode, Connections: 2, KeepAlive: true, Requests: 10})
			wantFailures(t, res, Refused)
			if res.Conns != 0 || res.FailureSamples[0].Reused {
				t.Errorf("Conns = %d, sample %v; want none, on a new connection", res.Conns, res.FailureSamples[0])
			}
		}
	})
}

func TestReset(t *testing.T) {
	addr, _ := rawServer(t, func(c net.Conn) {
		readRequest(bufio.NewReader(c))
		c.(*net.TCPConn).SetLinger(0) // close with a RST
	})
	forEachDialer(t, func(t *testing.T, dial func(string) DialFunc) {
		res := run(t, Config{Dial: dial(addr), Connections: 1, KeepAlive: true, Requests: 5})
		wantFailures(t, res, Reset)
	})
}

func TestStatus5xx(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	forEachDialer(t, func(t *testing.T, dial func(string) DialFunc) {
		res := run(t, Config{Dial: dial(strings.TrimPrefix(srv.URL, "http://")), Connections: 1, KeepAlive: true, Requests: 5})
		wantFailures(t, res, Status5xx)
		if res.Conns != 1 {
			t.Errorf("Conns = %d; want 1 (a 5xx leaves the connection usable)", res.Conns)
		}
		if len(res.ByTag) != 0 {
			t.Errorf("ByTag = %v; want failures untagged", res.ByTag)
		}
		if got := res.FailureSamples[0].Err; got != "status 503" {
			t.Errorf("sample error %q; want %q", got, "status 503")
		}
	})
}

func TestStatus4xxIsAFailure(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	res := run(t, Config{Dial: dialers[0].dial(t, strings.TrimPrefix(srv.URL, "http://")), Connections: 1, Requests: 3})
	wantFailures(t, res, Other)
}

func TestTimeout(t *testing.T) {
	addr, _ := rawServer(t, func(c net.Conn) {
		io.Copy(io.Discard, c) // never answer; until the client leaves
	})
	forEachDialer(t, func(t *testing.T, dial func(string) DialFunc) {
		for _, mode := range []string{ModeHTTP, ModeTCP} {
			res := run(t, Config{Dial: dial(addr), Mode: mode, Connections: 2, KeepAlive: true, Timeout: 100 * time.Millisecond, Requests: 4})
			wantFailures(t, res, Timeout)
			if res.Elapsed < 200*time.Millisecond {
				t.Errorf("Elapsed = %v; want at least two timeouts of 100ms", res.Elapsed)
			}
		}
	})
}

// A server that closes a kept-alive connection after its response, without
// saying so, makes the next request on it fail: that is counted, once, and
// not retried.
func TestIdleCloseIsAFailure(t *testing.T) {
	addr, accepted := rawServer(t, answer("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n", true))
	forEachDialer(t, func(t *testing.T, dial func(string) DialFunc) {
		before := accepted.Load()
		res := run(t, Config{Dial: dial(addr), Connections: 1, KeepAlive: true, Requests: 6})
		// fresh: ok, reused: fails, fresh: ok, ...
		if res.OK != 3 || res.Failures[Reset] != 3 || res.Failed() != 3 {
			t.Fatalf("OK = %d, Failures = %v; want 3 OK and 3 reset; samples: %v", res.OK, res.Failures, res.FailureSamples)
		}
		for _, f := range res.FailureSamples {
			if !f.Reused {
				t.Errorf("failure %v on a new connection; want reused", f)
			}
		}
		if res.Conns != 3 || accepted.Load()-before != 3 {
			t.Errorf("Conns = %d, server accepted %d; want 3", res.Conns, accepted.Load()-before)
		}
	})
}

// A response that ends its connection cleanly is no failure; the next
// request goes on a new connection.
func TestCleanClose(t *testing.T) {
	for _, tc := range []struct{ name, resp string }{
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nok\n"},
		{"connection Close with others", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: Upgrade, Close\r\n\r\nok\n"},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"},
		{"body to eof", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok\nsome more"},
		{"http/1.0 body to eof", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nok\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, accepted := rawServer(t, answer(tc.resp, true))
			forEachDialer(t, func(t *testing.T, dial func(string) DialFunc) {
				before := accepted.Load()
				const n = 5
				res := run(t, Config{Dial: dial(addr), Connections: 1, KeepAlive: true, Requests: n})
				wantOK(t, res)
				if res.Conns != n || accepted.Load()-before != n {
					t.Errorf("Conns = %d, server accepted %d; want %d", res.Conns, accepted.Load()-before, n)
				}
				if res.ByTag["ok"] != n {
					t.Errorf("ByTag = %v; want ok: %d", res.ByTag, n)
				}
			})
		})
	}
}

func TestChunked(t *testing.T) {
	t.Run("raw", func(t *testing.T) {
		resp := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"3;name=value\r\nok \r\n" + "A\r\n4711\nmore\n\r\n" + "0\r\nX-Trailer: yes\r\n\r\n"
		addr, accepted := rawServer(t, answer(resp, false))
		forEachDialer(t, func(t *testing.T, dial func(string) DialFunc) {
			before := accepted.Load()
			res := run(t, Config{Dial: dial(addr), Connections: 1, KeepAlive: true, Requests: 20})
			wantOK(t, res)
			if res.ByTag["ok 4711"] != 20 {
				t.Errorf("ByTag = %v; want ok 4711: 20", res.ByTag)
			}
			if res.Conns != 1 || accepted.Load()-before != 1 {
				t.Errorf("Conns = %d; want 1 (chunked bodies keep the connection in step)", res.Conns)
			}
		})
	})
	t.Run("net/http", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok 1\n")
			w.(http.Flusher).Flush() // no Content-Length: chunked
			io.WriteString(w, strings.Repeat("x", 100_000))
		}))
		defer srv.Close()
		res := run(t, Config{Dial: dialers[1].dial(t, strings.TrimPrefix(srv.URL, "http://")), Connections: 2, KeepAlive: true, Requests: 20})
		wantOK(t, res)
		if res.ByTag["ok 1"] != 20 || res.Conns != 2 {
			t.Errorf("ByTag = %v, Conns = %d; want ok 1: 20, 2", res.ByTag, res.Conns)
		}
	})
}

func TestBadResponses(t *testing.T) {
	for _, tc := range []struct {
		name, resp string
		kind       Kind
	}{
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", BadResponse},
		{"bad status", "HTTP/1.1 2xx OK\r\n\r\n", BadResponse},
		{"half a status line", "HTTP/1.1 20", BadResponse},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok\n", BadResponse},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", BadResponse},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", BadResponse},
		{"head too big", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", BadResponse},
		{"closed at once", "", Reset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := rawServer(t, answer(tc.resp, true))
			res := run(t, Config{Dial: dialers[1].dial(t, addr), Connections: 1, KeepAlive: true, Requests: 3})
			wantFailures(t, res, tc.kind)
		})
	}
}

func TestTCPMode(t *testing.T) {
	echo := func(c net.Conn) {
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		c.Write(buf[:n])
		io.Copy(io.Discard, c)
	}
	addr, accepted := rawServer(t, echo)
	silent, _ := rawServer(t, func(c net.Conn) {})
	forEachDialer(t, func(t *testing.T, dial func(string) DialFunc) {
		before := accepted.Load()
		res := run(t, Config{Dial: dial(addr), Mode: ModeTCP, Connections: 3, KeepAlive: true, TCPPayload: []byte("ping 1\n"), Requests: 30})
		wantOK(t, res)
		if res.ByTag["ping 1"] != 30 || res.Conns != 30 || accepted.Load()-before != 30 {
			t.Errorf("ByTag = %v, Conns = %d, accepted %d; want ping 1: 30, 30, 30", res.ByTag, res.Conns, accepted.Load()-before)
		}
		res = run(t, Config{Dial: dial(silent), Mode: ModeTCP, Connections: 1, TCPPayload: []byte("ping\n"), Requests: 3})
		wantFailures(t, res, Reset)
	})
}

// Stopping the load abandons the requests in flight: they are not failures.
func TestStopIsNoFailure(t *testing.T) {
	const conns = 4
	arrived := make(chan struct{}, 100)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done() // the client's leaving
	}))
	defer slow.Close()
	accepted := make(chan struct{}, 100)
	silent, _ := rawServer(t, func(c net.Conn) {
		accepted <- struct{}{}
		io.Copy(io.Discard, c)
	})
	waitArrivals := func(t *testing.T, ch <-chan struct{}, n int) {
		t.Helper()
		timeout := time.After(testLimit)
		for range n {
			select {
			case <-ch:
			case <-timeout:
				t.Fatalf("requests did not reach the server")
			}
		}
	}
	forEachDialer(t, func(t *testing.T, dial func(string) DialFunc) {
		t.Run("Stop", func(t *testing.T) {
			r, err := Start(t.Context(), Config{Dial: dial(strings.TrimPrefix(slow.URL, "http://")), Connections: conns, KeepAlive: true})
			if err != nil {
				t.Fatal(err)
			}
			waitArrivals(t, arrived, conns)
			res := r.Stop()
			if res.Requests != 0 || res.Failed() != 0 || res.Abandoned != conns {
				t.Errorf("Requests = %d, Failures = %v, Abandoned = %d; want 0, none, %d", res.Requests, res.Failures, res.Abandoned, conns)
			}
			if again := r.Stop(); again.Abandoned != res.Abandoned {
				t.Errorf("second Stop: %+v; want the first's result", again)
			}
		})
		t.Run("context", func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan Result)
			go func() {
				res, _ := Run(ctx, Config{Dial: dial(strings.TrimPrefix(slow.URL, "http://")), Connections: conns})
				done <- res
			}()
			waitArrivals(t, arrived, conns)
			cancel()
			res := <-done
			if res.Requests != 0 || res.Failed() != 0 || res.Abandoned != conns {
				t.Errorf("Requests = %d, Failures = %v, Abandoned = %d; want 0, none, %d", res.Requests, res.Failures, res.Abandoned, conns)
			}
		})
		t.Run("tcp", func(t *testing.T) {
			r, err := Start(t.Context(), Config{Dial: dial(silent), Mode: ModeTCP, Connections: conns})
			if err != nil {
				t.Fatal(err)
			}
			waitArrivals(t, accepted, conns)
			res := r.Stop()
			if res.Requests != 0 || res.Failed() != 0 || res.Abandoned != conns {
				t.Errorf("Requests = %d, Failures = %v, Abandoned = %d; want 0, none, %d", res.Requests, res.Failures, res.Abandoned, conns)
			}
		})
	})
}

// Snapshot shows the counts while the load runs, and FailuresBetween puts
// failures in their time window.
func TestSnapshotAndWindows(t *testing.T) {
	var n atomic.Int64
	marks := make(chan time.Time, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if i == 11 || i == 21 {
			marks <- time.Now()
		}
		if 11 <= i && i <= 20 {
			http.Error(w, "restarting", http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "ok %d\n", i%2)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), testLimit)
	defer cancel()
	r, err := Start(ctx, Config{Dial: dialers[1].dial(t, strings.TrimPrefix(srv.URL, "http://")), Connections: 1, KeepAlive: true, Requests: 30})
	if err != nil {
		t.Fatal(err)
	}
	var from time.Time
	select {
	case from = <-marks:
	case <-ctx.Done():
		t.Fatal("no 11th request")
	}
	// With one connection, the 11th request follows the 10th's recording.
	if s := r.Snapshot(); s.Requests < 10 || s.OK < 10 || s.Elapsed <= 0 {
		t.Errorf("Snapshot at the 11th request: Requests = %d, OK = %d, Elapsed = %v; want at least 10, 10, > 0", s.Requests, s.OK, s.Elapsed)
	}
	var to time.Time
	select {
	case to = <-marks:
	case <-ctx.Done():
		t.Fatal("no 21st request")
	}
	select {
	case <-r.Done():
	case <-ctx.Done():
		t.Fatal("load did not finish")
	}
	res := r.Stop()
	if res.Requests != 30 || res.OK != 20 || res.Failures[Status5xx] != 10 {
		t.Fatalf("Requests = %d, OK = %d, Failures = %v; want 30, 20, 10 5xx", res.Requests, res.OK, res.Failures)
	}
	if res.ByTag["ok 0"] != 10 || res.ByTag["ok 1"] != 10 {
		t.Errorf("ByTag = %v; want ok 0: 10, ok 1: 10", res.ByTag)
	}
	for _, w := range []struct {
		name     string
		from, to time.Time
		want     int
	}{
		{"before", res.Start, from, 0},
		{"during", from, to, 10},
		{"after", to, res.Start.Add(res.Elapsed), 0},
	} {
		got, exact := res.FailuresBetween(w.from, w.to)
		if got[Status5xx] != w.want || len(got) > 1 || !exact {
			t.Errorf("FailuresBetween %s = %v, %v; want 5xx: %d, exact", w.name, got, exact, w.want)
		}
	}
}

func TestFailuresBetweenLostEvents(t *testing.T) {
	start := time.Now()
	res := Result{
		Start:       start,
		events:      []event{{1 * time.Second, Reset}, {2 * time.Second, Refused}, {3 * time.Second, Reset}},
		eventsLost:  5,
		firstLostAt: 4 * time.Second,
	}
	got, exact := res.FailuresBetween(start.Add(time.Second), start.Add(3*time.Second))
	if got[Reset] != 1 || got[Refused] != 1 || !exact {
		t.Errorf("FailuresBetween(1s, 3s) = %v, %v; want reset 1, refused 1, exact", got, exact)
	}
	if _, exact := res.FailuresBetween(start, start.Add(5*time.Second)); exact {
		t.Errorf("FailuresBetween(0, 5s) exact; want not, with failures lost after 4s")
	}
}

func TestRate(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	res := run(t, Config{Dial: dialers[1].dial(t, strings.TrimPrefix(srv.URL, "http://")), KeepAlive: true, Rate: 100, Requests: 11})
	wantOK(t, res)
	if res.Elapsed < 90*time.Millisecond {
		t.Errorf("11 requests at 100/s took %v; want at least 100ms", res.Elapsed)
	}
}

func TestManyTags(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %d\n", n.Add(1))
	}))
	defer srv.Close()
	res := run(t, Config{Dial: dialers[1].dial(t, strings.TrimPrefix(srv.URL, "http://")), KeepAlive: true, Requests: 100})
	wantOK(t, res)
	if len(res.ByTag) != MaxTags || res.OtherTags != 100-MaxTags {
		t.Errorf("%d tags, OtherTags = %d; want %d, %d", len(res.ByTag), res.OtherTags, MaxTags, 100-MaxTags)
	}
}

func TestBadConfig(t *testing.T) {
	dial := dialers[0].dial(t, "127.0.0.1:1")
	for _, cfg := range []Config{
		{},
		{Dial: dial, Mode: "udp"},
		{Dial: dial, Path: "no-slash"},
		{Dial: dial, Path: "/a b"},
		{Dial: dial, Host: "a\r\nX-Injected: 1"},
		{Dial: dial, Connections: -1},
		{Dial: dial, Timeout: -time.Second},
	} {
		if _, err := Run(t.Context(), cfg); err == nil {
			t.Errorf("Run(%+v) = nil error; want one", cfg)
		}
	}
}

func TestDialTCP(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:3000", true},
		{"localhost:3000", true},
		{":3000", true},
		{"[::1]:3000", true},
		{"example.com:80", false},
		{"127.0.0.1", false},
		{"127.0.0.1:0", false},
		{"[fe80::1%eth0]:80", false},
	} {
		if _, err := DialTCP(tc.addr); (err == nil) != tc.ok {
			t.Errorf("DialTCP(%q) error = %v; want ok %v", tc.addr, err, tc.ok)
		}
	}
	addr, _ := rawServer(t, func(c net.Conn) { c.Write([]byte("hi")) })
	dial, _ := DialTCP(addr)
	c, err := dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Errorf("read %q, %v; want hi", buf, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := dial(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("dial with a done context: %v; want context.Canceled", err)
	}
}

func TestNoNet(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "net" || pkg == "runtime/cgo" {
			t.Errorf("loadgen imports %s; see docs/layout.md for why it must not", pkg)
		}
	}
}
