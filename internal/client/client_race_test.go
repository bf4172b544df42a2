package client

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/socket"
	"github.com/tend-pm/tend/internal/uhttp"
)

// socketDir is a short directory for unix sockets (their paths are
// limited to about 100 bytes, which t.TempDir can exceed).
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "tc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestClientConcurrentVersionWarning: a Client used from many goroutines
// at once (as monit uses it) calls OnVersion once, without a data race
// (go test -race).
func TestClientConcurrentVersionWarning(t *testing.T) {
	path := filepath.Join(socketDir(t), "d.sock")
	ln, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		srv := &uhttp.Server{MaxBody: 1 << 10, HeaderTimeout: 5 * time.Second, Handler: func(w *uhttp.Response, _ *uhttp.Request) {
			w.Header().Set(api.HeaderVersion, "0.0.0-another")
			_, _ = w.Write([]byte(`{"version":"0.0.0-another","pid":1}`))
		}}
		_ = srv.Serve(ctx, ln)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })

	c := New(path)
	var calls atomic.Int32
	c.OnVersion = func(string) { calls.Add(1) }
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 4 {
				if _, err := c.Ping(context.Background()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("OnVersion was called %d times; want once", n)
	}
}

// TestClientConcurrentStartDaemon: requests from many goroutines that
// find no daemon call StartDaemon once, without a data race.
func TestClientConcurrentStartDaemon(t *testing.T) {
	c := New(filepath.Join(socketDir(t), "none.sock"))
	var calls atomic.Int32
	errStart := errors.New("cannot start")
	c.StartDaemon = func(context.Context) error { calls.Add(1); return errStart }
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			_, err := c.Ping(context.Background())
			if !errors.Is(err, ErrNoDaemon) && !errors.Is(err, errStart) {
				t.Errorf("Ping without a daemon: %v", err)
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("StartDaemon was called %d times; want once", n)
	}
}
