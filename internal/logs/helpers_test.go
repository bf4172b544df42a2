package logs

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/clock/clocktest"
)

// testStart is the fake clock's start in the tests.
var testStart = time.Date(2026, 11, 24, 10, 0, 0, 123_000_000, time.UTC)

// waitTimeout bounds every wait, so a hang fails the test instead of
// stalling the run.
const waitTimeout = 60 * time.Second

// startCopy runs s.Copy on the read end of a new pipe and returns the
// write end and a channel that yields Copy's result. Closing the write end
// ends the copy.
func startCopy(t testing.TB, s *Stream) (*os.File, <-chan error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		err := s.Copy(context.Background(), r)
		r.Close()
		done <- err
	}()
	t.Cleanup(func() { w.Close() })
	return w, done
}

// waitDone waits for a copy started by startCopy.
func waitDone(t testing.TB, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Copy: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Copy did not return within %v", waitTimeout)
	}
}

// writeAll writes data to w in pieces of at most piece bytes, so the
// reader sees lines cut at arbitrary points.
func writeAll(t testing.TB, w io.Writer, data []byte, piece int) {
	t.Helper()
	for len(data) > 0 {
		n := min(piece, len(data))
		if _, err := w.Write(data[:n]); err != nil {
			t.Errorf("write pipe: %v", err)
			return
		}
		data = data[n:]
	}
}

// openTestFile opens a File in a fresh temporary directory.
func openTestFile(t testing.TB, name string, opts FileOptions) *File {
	t.Helper()
	if opts.Clock == nil {
		opts.Clock = clocktest.New(testStart)
	}
	f, err := OpenFile(filepath.Join(t.TempDir(), name), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// readMaybeGz returns the content of a log file, decompressing a .gz.
func readMaybeGz(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(name, ".gz") {
		return data
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// splitLines splits file content into lines, checking that it ends in a
// newline (a file written by this package always does).
func splitLines(t testing.TB, data []byte) []string {
	t.Helper()
	if len(data) == 0 {
		return nil
	}
	if data[len(data)-1] != '\n' {
		t.Fatalf("content does not end in a newline: ...%q", data[max(0, len(data)-40):])
	}
	return strings.Split(string(data[:len(data)-1]), "\n")
}
