package logs

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/clock"
)

// rotateRetry is how long a File waits after a failed rotation before
// trying again.
const rotateRetry = time.Minute

// DevNull is the path that means "do not write this stream", as in pm2.
const DevNull = "/dev/null"

// gzipLevel is the compression level of rotated files. BestSpeed, because
// measured on 10 MiB of log text (see file_test.go, BenchmarkGzip) it is
// about 4x faster than the default level (93 vs 23 MB/s here) for files
// only ~1.2x larger (compression ratio 3.2 vs 3.9), and
// an app that logs without pause rotates a 10 MiB file every fraction of a
// second: a slow compressor would fall behind it.
const gzipLevel = gzip.BestSpeed

// FileOptions say when a File rotates and what it keeps.
type FileOptions struct {
	// MaxSize rotates the file before a write would make it larger than
	// this many bytes (0: never). A single write larger than MaxSize goes
	// whole into a fresh file: lines are never split between files.
	MaxSize int64
	// Interval rotates the file when a write comes this long after the
	// file was opened or last rotated (0: never). It is checked on write,
	// so an idle app gets no empty rotated files.
	Interval time.Duration
	// Retain is how many rotated files to keep next to the live one; the
	// oldest go first. 0 keeps none, a negative value keeps all.
	Retain int
	// Compress gzips rotated files in the background.
	Compress bool
	// Clock stamps rotated files and times Interval (nil: the real clock).
	Clock clock.Clock
}

// FileOptionsFor returns the rotation options of an app's spec.
func FileOptionsFor(spec *api.AppSpec, clk clock.Clock) FileOptions {
	return FileOptions{
		MaxSize:  int64(spec.LogMaxSize),
		Interval: spec.LogRotateInterval.Std(),
		Retain:   spec.LogRetain,
		Compress: spec.LogCompress,
		Clock:    clk,
	}
}

// File is an append-only log file that rotates itself. It is safe for
// concurrent use; each Write lands in one file, in one write(2), so
// writers that hand it whole lines never see their lines split or mixed.
type File struct {
	path    string
	opts    FileOptions
	discard bool // DevNull: accept and drop everything

	mu     sync.Mutex // guards the fields below and serializes writes
	f      *os.File
	size   int64
	opened time.Time // when the live file was opened or rotated
	closed bool
	// retryAt, after a failed rotation, is when to try again.
	retryAt time.Time
	// The name of the last rotated file: its time and sequence number.
	lastStamp time.Time
	lastSeq   int

	// Rotated files wait in pending for the one background worker,
	// which compresses them (if asked) and applies Retain. One worker per
	// File bounds the memory and CPU that rotation can take.
	bgMu    sync.Mutex
	pending []string
	gen     int // bumped by Truncate: work from before it is discarded
	working bool
	bgDone  sync.WaitGroup
}

// OpenFile opens path for appending, creating it with mode 0600 and its
// directory with mode 0700 if they are missing. The DevNull path gives a
// File that drops what it is given.
func OpenFile(path string, opts FileOptions) (*File, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	lf := &File{path: path, opts: opts, discard: path == DevNull}
	if lf.discard {
		return lf, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open log %q: %w", path, err)
	}
	if err := lf.open(); err != nil {
		return nil, err
	}
	return lf, nil
}

// open opens the live file; the caller holds mu or owns lf.
func (lf *File) open() error {
	f, err := os.OpenFile(lf.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open log %q: %w", lf.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("open log %q: %w", lf.path, err)
	}
	lf.f, lf.size, lf.opened = f, fi.Size(), lf.opts.Clock.Now()
	return nil
}

// Path returns the path the File was opened with.
func (lf *File) Path() string { return lf.path }

// Write appends p, which should hold whole lines, rotating first if p
// would take the file past MaxSize or Interval has passed.
func (lf *File) Write(p []byte) (int, error) {
	if lf.discard {
		return len(p), nil
	}
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.closed {
		return 0, fmt.Errorf("write log %q: %w", lf.path, os.ErrClosed)
	}
	if lf.due(int64(len(p))) {
		if lf.size == 0 {
			lf.opened = lf.opts.Clock.Now()
		} else if err := lf.rotate(); err != nil {
			// Keep writing to the file we have: losing lines is worse
			// than a file over its size. Retry later, not on every
			// write, so one failure is not reported thousands of times.
			lf.retryAt = lf.opts.Clock.Now().Add(rotateRetry)
			n, werr := lf.f.Write(p)
			lf.size += int64(n)
			return n, errors.Join(err, werr)
		}
	}
	n, err := lf.f.Write(p)
	lf.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("write log %q: %w", lf.path, err)
	}
	return n, nil
}

// due reports whether writing n more bytes needs a rotation first. An
// interval that ran out on an empty file restarts instead, so an idle app
// produces no rotated files.
func (lf *File) due(n int64) bool {
	bySize := lf.opts.MaxSize > 0 && lf.size+n > lf.opts.MaxSize
	if !bySize && lf.opts.Interval <= 0 {
		return false // the hot path: no clock read
	}
	now := lf.opts.Clock.Now()
	if !lf.retryAt.IsZero() && now.Before(lf.retryAt) {
		return false
	}
	return bySize || now.Sub(lf.opened) >= lf.opts.Interval
}

// Rotate moves the live file aside now, whatever its size.
func (lf *File) Rotate() error {
	if lf.discard {
		return nil
	}
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.closed {
		return fmt.Errorf("rotate log %q: %w", lf.path, os.ErrClosed)
	}
	return lf.rotate()
}

// rotate renames the live file to its rotated name and opens a fresh one.
// The caller holds mu, so no write is in flight: every line before the
// rename is in the rotated file, every line after it in the new one.
func (lf *File) rotate() error {
	// Names must sort in rotation order, as pruning keeps the last ones:
	// within a millisecond (or if the clock steps back) the sequence
	// number grows instead of reusing a name that pruning freed.
	stamp, seq := lf.opts.Clock.Now().Truncate(time.Millisecond), 0
	if !stamp.After(lf.lastStamp) {
		stamp, seq = lf.lastStamp, lf.lastSeq+1
	}
	name, seq, err := rotatedName(lf.path, stamp, seq)
	if err != nil {
		return fmt.Errorf("rotate log %q: %w", lf.path, err)
	}
	lf.lastStamp, lf.lastSeq = stamp, seq
	renamed := true
	if err := os.Rename(lf.path, name); errors.Is(err, fs.ErrNotExist) {
		// Someone deleted the live file: start a new one, as a
		// Reopen would, rather than write on into the deleted one.
		renamed = false
	} else if err != nil {
		return fmt.Errorf("rotate log %q: %w", lf.path, err)
	}
	old := lf.f
	if err := lf.open(); err != nil {
		// Keep the old descriptor: it now names the rotated file, and
		// writing on there loses nothing.
		return err
	}
	_ = old.Close() // nothing is lost: every write on it has returned
	lf.retryAt = time.Time{}
	if renamed {
		lf.queue(name)
	}
	return nil
}

// Reopen closes the file and opens its path again, for an external
// logrotate that moved the file away (pm2's reloadLogs).
func (lf *File) Reopen() error {
	if lf.discard {
		return nil
	}
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.closed {
		return fmt.Errorf("reopen log %q: %w", lf.path, os.ErrClosed)
	}
	old := lf.f
	if err := os.MkdirAll(filepath.Dir(lf.path), 0o700); err != nil {
		return fmt.Errorf("reopen log %q: %w", lf.path, err)
	}
	if err := lf.open(); err != nil {
		return err
	}
	_ = old.Close()
	return nil
}

// Truncate empties the live file and deletes its rotated files (pm2's
// flush): afterwards `tend logs` shows nothing older, as users expect.
func (lf *File) Truncate() error {
	if lf.discard {
		return nil
	}
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.closed {
		return fmt.Errorf("truncate log %q: %w", lf.path, os.ErrClosed)
	}
	// O_APPEND makes the next write land at the new end, offset 0.
	if err := lf.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate log %q: %w", lf.path, err)
	}
	lf.size = 0
	lf.opened = lf.opts.Clock.Now()
	// A file the worker is compressing now reappears as .gz when it is
	// done; the new generation tells the worker to delete it instead.
	lf.bgMu.Lock()
	lf.gen++
	lf.pending = nil
	lf.bgMu.Unlock()
	if err := pruneRotated(lf.path, 0); err != nil {
		return fmt.Errorf("truncate log %q: %w", lf.path, err)
	}
	return nil
}

// Close closes the file and waits for background compression to finish.
func (lf *File) Close() error {
	if lf.discard {
		return nil
	}
	lf.mu.Lock()
	var err error
	if !lf.closed {
		lf.closed = true
		if cerr := lf.f.Close(); cerr != nil {
			err = fmt.Errorf("close log %q: %w", lf.path, cerr)
		}
	}
	lf.mu.Unlock()
	lf.bgDone.Wait()
	return err
}

// queue hands a rotated file to the background worker, starting it if it
// is not running.
func (lf *File) queue(name string) {
	lf.bgMu.Lock()
	defer lf.bgMu.Unlock()
	lf.pending = append(lf.pending, name)
	if !lf.working {
		lf.working = true
		lf.bgDone.Add(1)
		go lf.work()
	}
}

// work compresses the queued files and prunes old ones until the queue is
// empty. Errors have nowhere better to go than the next rotation: a file
// that failed to compress stays uncompressed and still counts for Retain.
func (lf *File) work() {
	defer lf.bgDone.Done()
	lowerPriority()
	for {
		lf.bgMu.Lock()
		if len(lf.pending) == 0 {
			lf.working = false
			lf.bgMu.Unlock()
			return
		}
		name, gen := lf.pending[0], lf.gen
		lf.pending = lf.pending[1:]
		lf.bgMu.Unlock()

		// Prune first: a file that falls out of Retain before its turn
		// is deleted instead of compressed.
		_ = pruneRotated(lf.path, lf.opts.Retain)
		if lf.opts.Compress {
			if _, err := os.Stat(name); err == nil {
				_ = compressFile(name)
			}
		}
		lf.bgMu.Lock()
		flushed := gen != lf.gen
		lf.bgMu.Unlock()
		if flushed {
			_ = os.Remove(name)
			_ = os.Remove(name + ".gz")
		}
		_ = pruneRotated(lf.path, lf.opts.Retain)
	}
}

// compressFile writes name.gz next to name, then removes name. The
// temporary name does not look like a rotated file, so a reader listing
// them never sees half a .gz.
func compressFile(name string) (err error) {
	src, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("compress %q: %w", name, err)
	}
	defer src.Close()
	tmp := name + ".gz.tmp"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("compress %q: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = dst.Close()
			_ = os.Remove(tmp)
		}
	}()
	zw, err := gzip.NewWriterLevel(dst, gzipLevel)
	if err != nil {
		return fmt.Errorf("compress %q: %w", name, err)
	}
	if _, err := io.Copy(zw, src); err != nil {
		return fmt.Errorf("compress %q: %w", name, err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compress %q: %w", name, err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("compress %q: %w", name, err)
	}
	if err := os.Rename(tmp, name+".gz"); err != nil {
		return fmt.Errorf("compress %q: %w", name, err)
	}
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("compress %q: %w", name, err)
	}
	return nil
}
