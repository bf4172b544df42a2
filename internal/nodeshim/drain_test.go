package nodeshim

// Tests of the graceful stop: what a client of a stopping instance sees.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

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

	// Node has exited, so the connection has ended by now at the latest.
	select {
	case at := <-idleClosed:
		if d := at.Sub(signalled); d < 450*time.Millisecond {
			t.Errorf("idle keep-alive connection closed %v after SIGINT; want after the ~500ms grace", d)
		}
	case <-ctx.Done():
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

// TestHTTPSDrains: the drain works on https too, whose requests come on
// the TLS socket ('secureConnection'), not the TCP one ('connection').
func TestHTTPSDrains(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	certPEM, keyPEM, roots := selfSigned(t)
	certPath, keyPath := filepath.Join(h.dir, "cert.pem"), filepath.Join(h.dir, "key.pem")
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, f := listenTCP(t)
	app := `
const fs = require('fs');
const tls = { key: fs.readFileSync(process.env.KEY), cert: fs.readFileSync(process.env.CERT) };
const server = require('https').createServer(tls, (q, s) => s.end('ok ' + process.pid)).listen(Number(process.env.PORT));
server.on('listening', () => console.log('listening'));
`
	p := h.start(app, h.env(fmt.Sprintf("%d=3", port), "PORT="+strconv.Itoa(port), "KEY="+keyPath, "CERT="+certPath), f)
	p.waitLine(ctx, "listening")
	conf := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	idle, busy := &rawConn{addr: addr, tls: conf}, &rawConn{addr: addr, tls: conf}
	defer busy.close()
	for _, c := range []*rawConn{idle, busy} {
		if r, err := c.do(ctx, "/"); err != nil || r.closed {
			t.Fatalf("request = %+v, %v; want a keep-alive answer", r, err)
		}
	}
	h.notes.waitReady(ctx, t)

	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	// The busy connection is answered until an answer says Connection:
	// close, once node has begun to drain.
	for {
		r, err := busy.do(ctx, "/")
		if err != nil {
			t.Fatalf("request on a busy connection while draining: %v", err)
		}
		if r.closed {
			break
		}
	}
	if _, err := idle.br.ReadByte(); err == nil {
		t.Errorf("idle TLS connection: read a byte; want its end")
	}
	if d := time.Since(signalled); d < 450*time.Millisecond {
		t.Errorf("idle TLS connection closed %v after SIGINT; want after the ~500ms grace", d)
	}
	if st := p.wait(ctx); st.ExitCode() != 0 {
		t.Errorf("node after SIGINT: %v; want exit 0", st)
	}
	p.checkStderr(t)
}

// selfSigned returns a certificate for 127.0.0.1, its key, and a pool
// that trusts it.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "nodeshim test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), roots
}
