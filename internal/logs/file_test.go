package logs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/clock/clocktest"
)

// numberedLines returns lines "<seq> <padding>" for seq in [from, to).
func numberedLines(from, to int) []byte {
	var b []byte
	for i := from; i < to; i++ {
		b = fmt.Appendf(b, "%07d %s\n", i, strings.Repeat("p", i%90))
	}
	return b
}

// allLines reads the rotated files of path, oldest first, then the live
// file, and returns their lines.
func allLines(t *testing.T, path string) (lines []string, rotated []string) {
	t.Helper()
	rotated, err := Rotated(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(rotated, path) {
		lines = append(lines, splitLines(t, readMaybeGz(t, name))...)
	}
	return lines, rotated
}

// checkRun checks that lines are numberedLines(to-len(lines), to): whole,
// in order, none missing.
func checkRun(t *testing.T, lines []string, to int) {
	t.Helper()
	from := to - len(lines)
	for i, l := range lines {
		seq, pad, ok := strings.Cut(l, " ")
		n, err := strconv.Atoi(seq)
		if !ok || err != nil || n != from+i || pad != strings.Repeat("p", n%90) {
			t.Fatalf("line %d of %d is %q; want line %d", i, len(lines), l, from+i)
		}
	}
}

func TestFileRotateBySizeLosesNothing(t *testing.T) {
	const maxSize, total = 100 << 10, 60_000
	f := openTestFile(t, "web-out.log", FileOptions{MaxSize: maxSize, Retain: -1, Compress: true})
	w, done := startCopy(t, &Stream{App: "web", Name: "out", Files: []*File{f}})
	writeAll(t, w, numberedLines(0, total), 3000)
	w.Close()
	waitDone(t, done)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	lines, rotated := allLines(t, f.Path())
	if len(lines) != total {
		t.Errorf("%d lines across %d files; want %d", len(lines), len(rotated)+1, total)
	}
	checkRun(t, lines, total)
	if len(rotated) < 10 {
		t.Errorf("%d rotated files; want at least 10 for %d lines at %d bytes", len(rotated), total, maxSize)
	}
	for _, name := range rotated {
		if !strings.HasSuffix(name, ".gz") {
			t.Errorf("rotated file %s is not compressed", name)
		}
		if size := len(readMaybeGz(t, name)); size > maxSize {
			t.Errorf("rotated file %s holds %d bytes; want at most %d", name, size, maxSize)
		}
	}
	// The fake clock did not move: names differ by their sequence number.
	if want := "web-out__2026-11-24T10-00-00.123_1.log.gz"; filepath.Base(rotated[1]) != want {
		t.Errorf("second rotated file is %s; want %s", filepath.Base(rotated[1]), want)
	}
}

func TestFileRotateKeepsRetain(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprint("compress=", compress), func(t *testing.T) {
			const total = 40_000
			clk := clocktest.New(testStart)
			f := openTestFile(t, "web-out.log", FileOptions{MaxSize: 50 << 10, Retain: 3, Compress: compress, Clock: clk})
			data := numberedLines(0, total)
			for len(data) > 0 {
				// Write whole lines, as Copy does, in chunks of ~20 KiB.
				n := bytes.LastIndexByte(data[:min(20<<10, len(data))], '\n') + 1
				if _, err := f.Write(data[:n]); err != nil {
					t.Fatal(err)
				}
				data = data[n:]
				clk.Advance(time.Millisecond)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			lines, rotated := allLines(t, f.Path())
			if len(rotated) != 3 {
				t.Errorf("rotated files = %q; want 3", rotated)
			}
			for _, name := range rotated {
				if strings.HasSuffix(name, ".gz") != compress {
					t.Errorf("rotated file %s; want compressed=%v", name, compress)
				}
			}
			checkRun(t, lines, total)
			if len(lines) < 3*(50<<10)/110 {
				t.Errorf("only %d lines kept", len(lines))
			}
			entries, _ := os.ReadDir(filepath.Dir(f.Path()))
			if len(entries) != 4 {
				t.Errorf("directory holds %d entries; want 4 (live + 3 rotated)", len(entries))
			}
		})
	}
}

func TestFileRotateByInterval(t *testing.T) {
	clk := clocktest.New(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC))
	f := openTestFile(t, "web-out.log", FileOptions{Interval: time.Hour, Retain: 5, Clock: clk})
	write := func(s string) {
		t.Helper()
		if _, err := f.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("a\n")
	clk.Advance(59 * time.Minute)
	write("b\n")
	if r, _ := Rotated(f.Path()); len(r) != 0 {
		t.Fatalf("rotated before the interval: %q", r)
	}
	clk.Advance(time.Minute)
	write("c\n")
	f.Close() // wait for the worker
	r, _ := Rotated(f.Path())
	want := filepath.Join(filepath.Dir(f.Path()), "web-out__2026-11-24T11-00-00.000.log")
	if len(r) != 1 || r[0] != want {
		t.Fatalf("rotated = %q; want [%q]", r, want)
	}
	if got := string(readMaybeGz(t, r[0])); got != "a\nb\n" {
		t.Errorf("rotated file = %q; want %q", got, "a\nb\n")
	}
	if got := string(readMaybeGz(t, f.Path())); got != "c\n" {
		t.Errorf("live file = %q; want %q", got, "c\n")
	}
}

// TestFileIntervalIdle checks that an app that printed nothing for longer
// than the interval gets no empty rotated file.
func TestFileIntervalIdle(t *testing.T) {
	clk := clocktest.New(testStart)
	f := openTestFile(t, "web-out.log", FileOptions{Interval: time.Hour, Retain: 5, Clock: clk})
	clk.Advance(3 * time.Hour)
	f.Write([]byte("first\n"))
	clk.Advance(30 * time.Minute)
	f.Write([]byte("second\n"))
	f.Close()
	if r, _ := Rotated(f.Path()); len(r) != 0 {
		t.Errorf("rotated = %q; want none", r)
	}
}

func TestFileTruncate(t *testing.T) {
	f := openTestFile(t, "web-out.log", FileOptions{MaxSize: 4000, Retain: -1, Compress: true})
	for i := range 100 { // a rotation every ~40 lines
		f.Write(numberedLines(i*10, i*10+10))
	}
	if err := f.Truncate(); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("new\n"))
	f.Close() // let a compression in flight finish
	if got, _ := os.ReadFile(f.Path()); string(got) != "new\n" {
		t.Errorf("after Truncate file = %q; want %q", got, "new\n")
	}
	if r, _ := Rotated(f.Path()); len(r) != 0 {
		t.Errorf("after Truncate rotated files = %q; want none", r)
	}
	if entries, _ := os.ReadDir(filepath.Dir(f.Path())); len(entries) != 1 {
		t.Errorf("after Truncate the directory holds %d entries; want 1", len(entries))
	}
}

// TestFileLiveDeleted checks that a rotation after someone deleted the
// live file starts a new file instead of failing on every write.
func TestFileLiveDeleted(t *testing.T) {
	f := openTestFile(t, "web-out.log", FileOptions{MaxSize: 10, Retain: 5})
	f.Write([]byte("aaaa\n"))
	os.Remove(f.Path())
	if _, err := f.Write([]byte("bbbbbbbbb\n")); err != nil {
		t.Fatalf("write after the live file was deleted: %v", err)
	}
	if got, _ := os.ReadFile(f.Path()); string(got) != "bbbbbbbbb\n" {
		t.Errorf("new live file = %q; want %q", got, "bbbbbbbbb\n")
	}
}

// TestFileReopen plays an external logrotate: move the file, reopen.
func TestFileReopen(t *testing.T) {
	f := openTestFile(t, "web-out.log", FileOptions{})
	f.Write([]byte("one\n"))
	moved := f.Path() + ".1"
	if err := os.Rename(f.Path(), moved); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("two\n")) // still the moved file, as with any open fd
	if err := f.Reopen(); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("three\n"))
	if got, _ := os.ReadFile(moved); string(got) != "one\ntwo\n" {
		t.Errorf("moved file = %q; want %q", got, "one\ntwo\n")
	}
	if got, _ := os.ReadFile(f.Path()); string(got) != "three\n" {
		t.Errorf("reopened file = %q; want %q", got, "three\n")
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	f, err := OpenFile(filepath.Join(dir, "web-out.log"), FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, f.Path(): 0o600} {
		if fi, err := os.Stat(name); err != nil || fi.Mode() != want {
			t.Errorf("mode of %s = %v, %v; want %v", name, fi.Mode(), err, want)
		}
	}
}

func TestRegistry(t *testing.T) {
	reg := NewRegistry()
	path := filepath.Join(t.TempDir(), "web.log")
	a, err := reg.Acquire(path, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := reg.Acquire(path, FileOptions{MaxSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("Acquire twice gave two Files for one path")
	}
	os.Rename(path, path+".moved")
	if err := reg.ReopenAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("ReopenAll did not recreate the file: %v", err)
	}
	if err := reg.Release(a); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("still open\n")); err != nil {
		t.Errorf("write after one of two Releases: %v", err)
	}
	if err := reg.Release(b); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Write([]byte("closed\n")); err == nil {
		t.Errorf("write after the last Release succeeded")
	}
	if err := reg.Release(b); err == nil {
		t.Errorf("third Release of two Acquires succeeded")
	}

	null, err := reg.Acquire(DevNull, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := null.Write([]byte("dropped\n")); n != 8 || err != nil {
		t.Errorf("write to DevNull = %d, %v; want 8, nil", n, err)
	}
	if err := reg.Release(null); err != nil {
		t.Fatal(err)
	}
}

// logText returns about size bytes of log lines with the variety of a
// web service's access log.
func logText(size int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	paths := []string{"/api/users", "/api/orders", "/health", "/static/app.js", "/login"}
	methods := []string{"GET", "GET", "GET", "POST", "PUT"}
	var b []byte
	ts := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for len(b) < size {
		ts = ts.Add(time.Duration(rng.IntN(5000)) * time.Microsecond)
		b = fmt.Appendf(b, "%s: %s %s/%d %d %.1fms req_id=%016x user=%d\n",
			ts.Format(DefaultTimeLayout), methods[rng.IntN(len(methods))], paths[rng.IntN(len(paths))],
			rng.IntN(100000), []int{200, 200, 200, 201, 404, 500}[rng.IntN(6)], rng.Float64()*300, rng.Uint64(), rng.IntN(5000))
	}
	return b
}

// BenchmarkGzip measures the compression of a rotated 10 MiB file at the
// default level and at BestSpeed; see gzipLevel.
func BenchmarkGzip(b *testing.B) {
	text := logText(10 << 20)
	for _, level := range []int{gzip.BestSpeed, gzip.DefaultCompression} {
		b.Run(fmt.Sprint("level=", level), func(b *testing.B) {
			var out int
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				var buf bytes.Buffer
				zw, _ := gzip.NewWriterLevel(&buf, level)
				io.Copy(zw, bytes.NewReader(text))
				zw.Close()
				out = buf.Len()
			}
			b.ReportMetric(float64(len(text))/float64(out), "ratio")
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/10MiB")
		})
	}
}
