package notify

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSenderFromKernel: a datagram arrives with the sender's pid, as the
// kernel recorded it, whatever the message says.
func TestSenderFromKernel(t *testing.T) {
	path := filepath.Join(t.TempDir(), Name)
	l, err := Listen(path, os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type msg struct {
		pid  int
		text string
	}
	got := make(chan msg, 2)
	go l.Serve(func(pid int, text string) { got <- msg{pid, text} })

	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v: want 0600", fi.Mode().Perm(), err)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, text := range []string{"READY=1\nSTATUS=warming up", "MAINPID=1\nWATCHDOG=1"} {
		if _, err := c.Write([]byte(text)); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m.pid != os.Getpid() || m.text != text {
				t.Fatalf("got pid %d %q, want pid %d %q", m.pid, m.text, os.Getpid(), text)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no message arrived")
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket file left after Close: %v", err)
	}
}

// TestLongMessageDropped: a datagram longer than MaxMessage is dropped
// whole with a line in the log, not cut short and taken; the next one
// arrives as sent.
func TestLongMessageDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), Name)
	l, err := Listen(path, os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var logged lockedBuffer
	l.Log = slog.New(slog.NewTextHandler(&logged, nil))
	got := make(chan string, 2)
	go l.Serve(func(pid int, text string) { got <- text })

	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	long := "STATUS=" + strings.Repeat("x", MaxMessage) + "\nREADY=1"
	for _, text := range []string{long, "READY=1"} {
		if _, err := c.Write([]byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case m := <-got:
		if m != "READY=1" {
			t.Fatalf("first message taken: %d bytes %.40q...; want the long one dropped and READY=1", len(m), m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message arrived")
	}
	if s := logged.String(); !strings.Contains(s, "message dropped") || !strings.Contains(s, fmt.Sprintf("bytes=%d", len(long))) {
		t.Errorf("log = %q; want a line about the dropped message and its size", s)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
