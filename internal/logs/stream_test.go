package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/clock/clocktest"
)

func TestCopyLongLineArrivesWhole(t *testing.T) {
	f := openTestFile(t, "web-out.log", FileOptions{})
	hub := NewHub()
	sub := hub.Subscribe(Filter{}, 8<<20)
	defer sub.Close()
	s := &Stream{App: "web", Name: "out", Format: Format{Kind: Timestamped}, Files: []*File{f}, Hub: hub, Clock: clocktest.New(testStart)}
	w, done := startCopy(t, s)

	long := strings.Repeat("x", 1<<20)
	input := "before\n" + long + "\nafter\n"
	writeAll(t, w, []byte(input), 4096)
	w.Close()
	waitDone(t, done)

	// A line cut by a read boundary would get a second timestamp.
	p := "2026-11-24T10:00:00: "
	want := p + "before\n" + p + long + "\n" + p + "after\n"
	if got, _ := os.ReadFile(f.Path()); string(got) != want {
		t.Errorf("file has %d bytes, %d lines; want %d bytes, 3 lines", len(got), bytes.Count(got, []byte{'\n'}), len(want))
	}
	lines, err := sub.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, l := range lines {
		got = append(got, len(l.Line))
	}
	if want := []int{6, 1 << 20, 5}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("follower got lines of lengths %v; want %v", got, want)
	}
}

func TestCopyLineOverCapIsCut(t *testing.T) {
	f := openTestFile(t, "web-out.log", FileOptions{})
	s := &Stream{App: "web", Name: "out", Files: []*File{f}, maxLine: 1000}
	w, done := startCopy(t, s)
	writeAll(t, w, []byte("a\n"+strings.Repeat("y", 2500)+"\nb\n"), 333)
	w.Close()
	waitDone(t, done)
	want := "a\n" + strings.Repeat("y", 1000) + "\n" + strings.Repeat("y", 1000) + "\n" + strings.Repeat("y", 500) + "\nb\n"
	if got, _ := os.ReadFile(f.Path()); string(got) != want {
		t.Errorf("file = %q; want %q", got, want)
	}
}

func TestCopyLastLineWithoutNewline(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"after lines", "a\nb", "a\nb\n"},
		{"only line", "alone", "alone\n"},
		{"ends in newline", "a\n", "a\n"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := openTestFile(t, "web-out.log", FileOptions{})
			w, done := startCopy(t, &Stream{App: "web", Name: "out", Files: []*File{f}})
			writeAll(t, w, []byte(tt.in), 1)
			w.Close()
			waitDone(t, done)
			if got, _ := os.ReadFile(f.Path()); string(got) != tt.want {
				t.Errorf("Copy(%q) wrote %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestCopyTwoStreamsShareFile has two writers print interleaved lines of
// random lengths (some longer than a read) into two pipes, in random
// pieces, both copied into one file: every line must come out whole, in
// its stream's order, none lost.
func TestCopyTwoStreamsShareFile(t *testing.T) {
	reg := NewRegistry()
	path := t.TempDir() + "/web.log"
	const perStream = 5000
	var (
		wg      sync.WaitGroup
		dones   []<-chan error
		streams = []string{"out", "err"}
	)
	for i, name := range streams {
		f, err := reg.Acquire(path, FileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Release(f)
		w, done := startCopy(t, &Stream{App: "web", Name: name, Files: []*File{f}})
		dones = append(dones, done)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			var buf []byte
			for seq := range perStream {
				n := rng.IntN(2000)
				if seq%500 == 7 {
					n = 100_000 + rng.IntN(100_000) // longer than one read
				}
				buf = fmt.Appendf(buf, "%s %d %d ", name, seq, n)
				buf = append(buf, bytes.Repeat([]byte{name[0]}, n)...)
				buf = append(buf, '\n')
				if len(buf) > 8192 || seq == perStream-1 {
					for len(buf) > 0 {
						k := min(1+rng.IntN(6000), len(buf))
						if _, err := w.Write(buf[:k]); err != nil {
							t.Errorf("write: %v", err)
							return
						}
						buf = buf[k:]
					}
					buf = buf[:0]
				}
			}
		}()
	}
	wg.Wait()
	for _, d := range dones {
		waitDone(t, d)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]int{}
	for i, line := range splitLines(t, data) {
		fields := strings.SplitN(line, " ", 4)
		if len(fields) != 4 {
			t.Fatalf("line %d is damaged: %.80q", i, line)
		}
		name, payload := fields[0], fields[3]
		seq, err1 := strconv.Atoi(fields[1])
		n, err2 := strconv.Atoi(fields[2])
		if err1 != nil || err2 != nil || (name != "out" && name != "err") {
			t.Fatalf("line %d is damaged: %.80q", i, line)
		}
		if seq != next[name] {
			t.Fatalf("line %d: %s line %d follows line %d", i, name, seq, next[name]-1)
		}
		if len(payload) != n || strings.Trim(payload, name[:1]) != "" {
			t.Fatalf("line %d (%s %d) has a payload of %d bytes (%.40q...); want %d bytes of %q", i, name, seq, len(payload), payload, n, name[:1])
		}
		next[name]++
	}
	for _, name := range streams {
		if next[name] != perStream {
			t.Errorf("stream %s: %d lines in the file; want %d", name, next[name], perStream)
		}
	}
}

func TestCopyFormats(t *testing.T) {
	plus1 := time.FixedZone("", 3600)
	input := "hello \"q\"\ttab\\\nbad \xff utf8 é\nctl \x01\r\n"
	tests := []struct {
		name   string
		format Format
		stream string
		want   string
	}{
		{
			name:   "plain",
			stream: "out",
			want:   input,
		},
		{
			name:   "time default",
			format: Format{Kind: Timestamped},
			stream: "out",
			want: "2026-11-24T11:00:00: hello \"q\"\ttab\\\n" +
				"2026-11-24T11:00:00: bad \xff utf8 é\n" +
				"2026-11-24T11:00:00: ctl \x01\r\n",
		},
		{
			name:   "time custom",
			format: Format{Kind: Timestamped, Layout: mustLayout(t, "YYYY-MM-DD HH:mm:ss.SSS Z")},
			stream: "out",
			want: "2026-11-24 11:00:00.123 +01:00: hello \"q\"\ttab\\\n" +
				"2026-11-24 11:00:00.123 +01:00: bad \xff utf8 é\n" +
				"2026-11-24 11:00:00.123 +01:00: ctl \x01\r\n",
		},
		{
			name:   "json default",
			format: Format{Kind: JSON},
			stream: "err",
			want: `{"message":"hello \"q\"\ttab\\","timestamp":"2026-11-24T10:00:00.123Z","type":"err","process_id":2,"app_name":"we\"b"}` + "\n" +
				`{"message":"bad ` + "\ufffd" + ` utf8 é","timestamp":"2026-11-24T10:00:00.123Z","type":"err","process_id":2,"app_name":"we\"b"}` + "\n" +
				`{"message":"ctl \u0001\r","timestamp":"2026-11-24T10:00:00.123Z","type":"err","process_id":2,"app_name":"we\"b"}` + "\n",
		},
		{
			name:   "json date format",
			format: Format{Kind: JSON, Layout: mustLayout(t, "YYYY-MM-DD HH:mm Z")},
			stream: "out",
			want: `{"message":"hello \"q\"\ttab\\","timestamp":"2026-11-24 11:00 +01:00","type":"out","process_id":2,"app_name":"we\"b"}` + "\n" +
				`{"message":"bad ` + "\ufffd" + ` utf8 é","timestamp":"2026-11-24 11:00 +01:00","type":"out","process_id":2,"app_name":"we\"b"}` + "\n" +
				`{"message":"ctl \u0001\r","timestamp":"2026-11-24 11:00 +01:00","type":"out","process_id":2,"app_name":"we\"b"}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := openTestFile(t, "web.log", FileOptions{})
			clk := clocktest.New(testStart.In(plus1))
			w, done := startCopy(t, &Stream{App: `we"b`, Slot: 2, Name: tt.stream, Format: tt.format, Files: []*File{f}, Clock: clk})
			writeAll(t, w, []byte(input), 5)
			w.Close()
			waitDone(t, done)
			got, _ := os.ReadFile(f.Path())
			if string(got) != tt.want {
				t.Errorf("file =\n%s\nwant\n%s", got, tt.want)
			}
			if tt.format.Kind == JSON {
				checkJSONLines(t, got, "we\"b", tt.stream)
			}
		})
	}
}

func mustLayout(t *testing.T, dayjs string) string {
	t.Helper()
	l, err := Layout(dayjs)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestCopyContextCancel ends a copy whose writer never closes the pipe
// (a grandchild holding it open) by cancelling its context.
func TestCopyContextCancel(t *testing.T) {
	f := openTestFile(t, "web-out.log", FileOptions{})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Stream{App: "web", Name: "out", Files: []*File{f}}).Copy(ctx, r) }()
	if _, err := w.Write([]byte("whole\npartial")); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Copy after cancel = %v; want %v", err, context.Canceled)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Copy did not return after cancel")
	}
	// The bytes read before the cancel are kept; the read may or may not
	// have happened before it.
	if got, _ := os.ReadFile(f.Path()); len(got) > 0 && string(got) != "whole\npartial\n" {
		t.Errorf("file = %q; want %q or nothing", got, "whole\npartial\n")
	}
}

// TestCopyWriteErrorKeepsReading checks that a failing file does not stop
// the copy (which would block the app) and that the error is reported.
func TestCopyWriteErrorKeepsReading(t *testing.T) {
	bad := openTestFile(t, "bad.log", FileOptions{})
	bad.Close()
	good := openTestFile(t, "good.log", FileOptions{})
	var reported []error
	w, done := startCopy(t, &Stream{App: "web", Name: "out", Files: []*File{bad, nil, good}, OnError: func(err error) { reported = append(reported, err) }})
	writeAll(t, w, bytes.Repeat([]byte("line\n"), 100_000), 64<<10)
	w.Close()
	var err error
	select {
	case err = <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Copy did not return")
	}
	if !errors.Is(err, os.ErrClosed) {
		t.Errorf("Copy = %v; want an error wrapping %v", err, os.ErrClosed)
	}
	if len(reported) != 1 {
		t.Errorf("OnError was called %d times; want once for a file that fails every write", len(reported))
	}
	if got, _ := os.ReadFile(good.Path()); len(got) != 500_000 {
		t.Errorf("good file has %d bytes; want 500000", len(got))
	}
}

// TestSetPipeSize checks the kernel accepts the size on Linux; elsewhere it
// is a no-op.
func TestSetPipeSize(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	got, err := SetPipeSize(r, 1<<20)
	if err != nil {
		t.Skipf("SetPipeSize: %v (the user's pipe budget may be spent)", err)
	}
	if got != 0 && got < 1<<20 {
		t.Errorf("SetPipeSize(1 MiB) = %d; want at least 1 MiB", got)
	}
}

// lineBlock returns k lines of 100 bytes each.
func lineBlock(k int) []byte {
	line := append(bytes.Repeat([]byte("0123456789"), 9), "abcdefghi\n"...)
	return bytes.Repeat(line, k)
}

// BenchmarkCopyPlain measures the plain path: an app printing 100-byte
// lines as fast as it can into a pipe, copied to a file. write is the size
// of the app's writes (a stdio buffer, or one write per line).
func BenchmarkCopyPlain(b *testing.B) {
	for _, bc := range []struct {
		name     string
		write    int // lines per write
		pipeSize int
	}{
		{"write=64KiB/pipe=64KiB", 655, 0},
		{"write=64KiB/pipe=1MiB", 655, 1 << 20},
		{"write=4KiB/pipe=64KiB", 40, 0},
		{"write=4KiB/pipe=1MiB", 40, 1 << 20},
		{"write=1line/pipe=64KiB", 1, 0},
		{"write=1line/pipe=1MiB", 1, 1 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchCopy(b, bc.write, bc.pipeSize, FileOptions{})
		})
	}
	b.Run("write=64KiB/rotate=10MiB+gzip", func(b *testing.B) {
		benchCopy(b, 655, 0, FileOptions{MaxSize: int64(api.DefaultLogMaxSize), Retain: 3, Compress: true})
	})
}

func benchCopy(b *testing.B, perWrite, pipeSize int, opts FileOptions) {
	f, err := OpenFile(b.TempDir()+"/bench.log", opts)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	if pipeSize > 0 {
		if _, err := SetPipeSize(r, pipeSize); err != nil {
			b.Skipf("SetPipeSize: %v", err)
		}
	}
	block := lineBlock(perWrite)
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan error, 1)
	go func() { done <- (&Stream{App: "bench", Name: "out", Files: []*File{f}}).Copy(context.Background(), r) }()
	start := time.Now()
	for left := b.N; left > 0; left -= perWrite {
		k := min(left, perWrite)
		if _, err := w.Write(block[:k*100]); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lines/s")
	r.Close()
}
