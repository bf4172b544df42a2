package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/socket"
	"github.com/tend-pm/tend/internal/uhttp"
)

// notifyBackend records Notify; any other method of Backend panics.
type notifyBackend struct {
	Backend
	mu  sync.Mutex
	got []string
}

func (b *notifyBackend) Notify(pid int, msg string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, msg)
	return nil
}

// TestNotifyBodyLimit: a POST /v1/notify body of up to 4096 bytes is
// taken whole; a longer one is refused with 413 and reaches nothing,
// rather than cut, which could leave its last line a different value.
func TestNotifyBodyLimit(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("/tmp", "api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s.sock")
	ln, err := socket.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	b := &notifyBackend{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		_ = Serve(ctx, ln, New(b, os.Getuid(), slog.New(slog.DiscardHandler)), slog.New(slog.DiscardHandler))
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })

	post := func(body string) (int, api.ErrorBody) {
		t.Helper()
		c, err := socket.Dial(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		resp, err := uhttp.Do(context.Background(), c, "POST", api.PathNotify, uhttp.Header{}, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.Status == 204 && (len(raw) > 0 || resp.Header.Get("Content-Length") != "") {
			t.Errorf("204 with a body %q or a length %q", raw, resp.Header.Get("Content-Length"))
		}
		var e api.ErrorBody
		_ = json.Unmarshal(raw, &e)
		return resp.Status, e
	}
	// The last line ends at byte 4096, or would be cut there to
	// METRIC=latency_ms 12.
	line := "METRIC=latency_ms 1234.5"
	pad := func(n int) string { return strings.Repeat("STATUS=x\n", n/9) + strings.Repeat("\n", n%9) }
	full := pad(4096-len(line)) + line
	over := pad(4096-len("METRIC=latency_ms 12")) + line
	if len(full) != 4096 || len(over) <= 4096 || !strings.HasSuffix(over[:4096], "METRIC=latency_ms 12") {
		t.Fatalf("bad test bodies: %d, %d", len(full), len(over))
	}
	if st, e := post(full); st != 204 {
		t.Errorf("a body of 4096 bytes: %d %+v; want 204, no content", st, e)
	}
	if st, e := post(over); st != 413 || e.Error.Code != api.CodeInvalid || !strings.Contains(e.Error.Message, "4096") {
		t.Errorf("a body of %d bytes: %d %+v; want 413, invalid, saying the limit", len(over), st, e)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.got) != 1 || b.got[0] != full {
		t.Errorf("Notify got %d messages (the last ending %q); want the 4096-byte one only", len(b.got), tail(b.got))
	}
}

func tail(msgs []string) string {
	if len(msgs) == 0 {
		return ""
	}
	m := msgs[len(msgs)-1]
	return m[max(0, len(m)-30):]
}
