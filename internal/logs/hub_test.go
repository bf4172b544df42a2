package logs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/clock/clocktest"
)

// TestStalledFollower pushes tens of MB through a pipe while a follower
// never reads: the copy must finish, the follower's buffer stay within its
// bound, and the follower then read what fitted plus a note counting the
// rest.
func TestStalledFollower(t *testing.T) {
	const total, limit = 300_000, 64 << 10 // 30 MB of 100-byte lines
	hub := NewHub()
	sub := hub.Subscribe(Filter{Apps: []string{"web"}}, limit)
	defer sub.Close()
	f := openTestFile(t, "web-out.log", FileOptions{})
	clk := clocktest.New(testStart)
	w, done := startCopy(t, &Stream{App: "web", Slot: 1, Name: "out", Files: []*File{f}, Hub: hub, Clock: clk})
	go func() {
		writeAll(t, w, lineBlock(total), 64<<10)
		w.Close()
	}()
	waitDone(t, done)

	sub.mu.Lock()
	used, queued := sub.used, len(sub.queue)
	sub.mu.Unlock()
	if bound := limit + ReadSize + entryOverhead; used > bound {
		t.Errorf("follower buffer holds %d bytes; want at most %d", used, bound)
	}
	if fi, _ := os.Stat(f.Path()); fi.Size() != total*100 {
		t.Errorf("file has %d bytes; want %d", fi.Size(), total*100)
	}

	lines, err := sub.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got, skipped int
	var notes []api.LogLine
	for _, l := range lines {
		if l.Stream == StreamTend {
			var n, bytes int
			if _, err := fmt.Sscanf(l.Line, "skipped %d lines (%d bytes)", &n, &bytes); err != nil {
				t.Fatalf("note %q: %v", l.Line, err)
			}
			skipped += n
			notes = append(notes, l)
			continue
		}
		if len(l.Line) != 99 || l.App != "web" || l.Instance != 1 || l.Stream != "out" {
			t.Fatalf("line %+v is damaged", l)
		}
		got++
	}
	if got+skipped != total || skipped == 0 || len(notes) != 1 {
		t.Errorf("follower read %d lines and %d notes skipping %d (queue had %d entries); want %d lines in all, with one note",
			got, len(notes), skipped, queued, total)
	}
	if len(notes) > 0 {
		want := api.LogLine{App: "web", Instance: 1, Stream: StreamTend, Time: testStart, Line: notes[0].Line}
		if diff := cmp.Diff(want, notes[0]); diff != "" {
			t.Errorf("note (-want +got):\n%s", diff)
		}
	}

	// Reading again starts afresh: new lines arrive with no note.
	hub.Publish("web", 1, "out", testStart, []byte("fresh\n"))
	lines, err = sub.Next(context.Background())
	if err != nil || len(lines) != 1 || lines[0].Line != "fresh" {
		t.Errorf("Next after draining = %+v, %v; want the one fresh line", lines, err)
	}
}

func TestHubFilter(t *testing.T) {
	hub := NewHub()
	if hub.Active() {
		t.Fatal("a new Hub is active")
	}
	sub := hub.Subscribe(Filter{Apps: []string{"web"}, Slots: []int{1}, Streams: []string{"err"}}, 0)
	all := hub.Subscribe(Filter{}, 0)
	at := testStart
	hub.Publish("api", 1, "err", at, []byte("other app\n"))
	hub.Publish("web", 0, "err", at, []byte("other slot\n"))
	hub.Publish("web", 1, "out", at, []byte("other stream\n"))
	hub.Publish("web", 1, "err", at, []byte("one\ntwo\n"))

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	got, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []api.LogLine{
		{App: "web", Instance: 1, Stream: "err", Time: at, Line: "one"},
		{App: "web", Instance: 1, Stream: "err", Time: at, Line: "two"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("filtered follower (-want +got):\n%s", diff)
	}
	if got, _ := all.Next(ctx); len(got) != 5 {
		t.Errorf("unfiltered follower got %d lines; want 5", len(got))
	}

	sub.Close()
	all.Close()
	if hub.Active() {
		t.Error("Hub is active with every subscription closed")
	}
	if _, err := sub.Next(ctx); err == nil {
		t.Error("Next after Close succeeded")
	}
	short, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	live := hub.Subscribe(Filter{}, 0)
	defer live.Close()
	if _, err := live.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next with nothing published = %v; want %v", err, context.DeadlineExceeded)
	}
}

// BenchmarkPublishIdle is the cost Copy pays per chunk when nobody follows.
func BenchmarkPublishIdle(b *testing.B) {
	hub := NewHub()
	lines := lineBlock(655)
	for b.Loop() {
		hub.Publish("web", 0, "out", testStart, lines)
	}
}
