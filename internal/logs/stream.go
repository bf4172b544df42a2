package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tend-pm/tend/internal/clock"
)

const (
	// ReadSize is the size of one read from a pipe: 64 KiB, a whole
	// default Linux pipe, so a busy app's pipe is drained in one read.
	ReadSize = 64 << 10
	// MaxLine bounds the memory a line may take. A line is held until its
	// newline arrives, the buffer doubling up to MaxLine; a longer line is
	// written in pieces of MaxLine bytes, each ended with a newline, so an
	// app printing without newlines cannot grow the daemon without bound.
	MaxLine = 8 << 20
)

// Stream is where one pipe of one instance goes. The supervisor fills one
// per pipe (stdout, stderr) and runs Copy on it.
type Stream struct {
	App  string
	Slot int
	// Name is the stream: "out" or "err".
	Name   string
	Format Format
	// Files receive every line; nil entries are skipped. Typically the
	// stream's own file and the app's combined log_file, from a Registry.
	Files []*File
	// Hub, if not nil, receives the raw lines for followers.
	Hub *Hub
	// Clock stamps lines (nil: the real clock).
	Clock clock.Clock
	// OnError, if not nil, hears about a file's first failed write after
	// a good one (a full disk fails every write; it is reported once).
	// Copy keeps reading through failures: stopping would block the app.
	OnError func(error)
	// Pipes, if not nil, lets a busy stream enlarge its pipe (see Copy).
	Pipes *PipeBudget

	maxLine int // MaxLine, lowered by tests
}

// Copy reads r until EOF and sends its lines to the Stream's files and hub.
//
// It writes whole lines only: each read's complete lines go out in one
// write per file, and the bytes after the last newline wait for the next
// read. A last line without a newline gets one at EOF. If ctx ends first
// and r has SetReadDeadline (an *os.File pipe does), the blocked read is
// interrupted, what was read is flushed, and Copy returns ctx's error.
// Otherwise it returns the first write error, after reading to the end.
func (s *Stream) Copy(ctx context.Context, r io.Reader) error {
	c := copier{Stream: s, clk: s.Clock, failing: make([]bool, len(s.Files))}
	if c.clk == nil {
		c.clk = clock.Real{}
	}
	if s.Format.Kind != Plain {
		c.fm = newFormatter(s.Format, s.App, s.Slot, s.Name)
	}
	limit := s.maxLine
	if limit <= 0 {
		limit = MaxLine
	}
	if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
		stop := context.AfterFunc(ctx, func() { _ = d.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
	}

	// buf[:n] holds bytes that end in the middle of a line. buf has one
	// spare byte past the readable part, so a newline can always be added.
	//
	// The read size follows the stream's pace. A quiet stream reads into a
	// small buffer, so a daemon with many quiet apps stays small. A stream
	// whose reads keep filling the buffer grows it, then asks for a bigger
	// pipe (Pipes permitting) and, while busy, pauses a moment after each
	// short read so that the next read takes a large batch: fewer reads and
	// wake-ups per line, on both sides of the pipe. Both go back to small
	// when the stream calms down.
	pace := pacer{size: min(smallRead, limit), pipe: r, budget: s.Pipes, fd: -1}
	defer pace.done()
	size := pace.size
	buf := make([]byte, size+1)
	n := 0
	for {
		if n == len(buf)-1 { // full, and no newline in it
			if n < limit {
				nb := make([]byte, min(2*n, limit)+1)
				copy(nb, buf[:n])
				buf = nb
			} else {
				buf[n] = '\n'
				c.emit(buf[:n+1])
				n = 0
			}
		}
		want := len(buf) - 1 - n
		m, rerr := pace.read(buf[n : len(buf)-1])
		if m > 0 {
			if i := bytes.LastIndexByte(buf[n:n+m], '\n'); i >= 0 {
				end := n + i + 1
				c.emit(buf[:end])
				n = copy(buf, buf[end:n+m])
			} else {
				n += m
			}
		}
		if rerr != nil {
			if n > 0 {
				buf[n] = '\n'
				c.emit(buf[:n+1])
			}
			switch {
			case errors.Is(rerr, io.EOF):
				return c.err
			case ctx.Err() != nil && errors.Is(rerr, os.ErrDeadlineExceeded):
				return ctx.Err()
			default:
				return errors.Join(fmt.Errorf("read %s of %q slot %d: %w", s.Name, s.App, s.Slot, rerr), c.err)
			}
		}
		if size = min(pace.after(m, want), limit); len(buf)-1 != size && n <= size/2 && (len(buf)-1 < size || len(buf)-1 > 2*size) {
			// A new pace, or done with a long line: resize the buffer.
			nb := make([]byte, size+1)
			copy(nb, buf[:n])
			buf = nb
		}
		if pace.busy() && m < want {
			time.Sleep(batchPause)
		}
	}
}

// The pace of reading a stream.
const (
	smallRead  = 4 << 10
	busyBytes  = 16 << 10 // a read this big means a busy stream...
	busyStreak = 4        // ...when it happens this many times in a row
	busyRead   = 1 << 20  // the read size and pipe size of a busy stream
	batchPause = time.Millisecond
)

// pacer adapts the reading of one stream to its pace.
type pacer struct {
	size     int
	pipe     io.Reader
	budget   *PipeBudget
	enlarged bool
	streak   int // reads of busyBytes or more in a row
	// fd, while the stream is busy, is the pipe's descriptor in blocking
	// mode: read directly, a busy pipe wakes its reader in the kernel, which
	// is markedly faster than a wake-up through Go's poller (measured:
	// about 1.5x the lines per second). It costs a thread blocked in read,
	// which is why only busy streams, within the budget, do it. -1: read
	// through the poller.
	fd int
}

// read reads the pipe the way the stream's pace calls for.
func (p *pacer) read(b []byte) (int, error) {
	if p.fd < 0 {
		return p.pipe.Read(b)
	}
	for {
		n, err := syscall.Read(p.fd, b)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// block moves the pipe to blocking reads; unblock moves it back.
func (p *pacer) block(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		if syscall.SetNonblock(int(fd), false) == nil {
			p.fd = int(fd)
		}
	})
}

func (p *pacer) unblock() {
	if p.fd >= 0 {
		_ = syscall.SetNonblock(p.fd, true)
		p.fd = -1
	}
}

// after takes the outcome of a read of want bytes that returned m, and
// returns the read size to use next. A read that fills the buffer makes
// it grow; reads of busyBytes or more, a few in a row, make the stream
// busy (big pipe, blocking reads, batching); a read of less than a small
// buffer, even after a batching pause, makes it calm again.
func (p *pacer) after(m, want int) int {
	if m == want && p.size < ReadSize {
		p.size = min(p.size*4, ReadSize)
	}
	switch {
	case m >= busyBytes:
		p.streak++
		if p.streak >= busyStreak && !p.enlarged {
			p.enlarge()
		}
	case m < smallRead:
		p.streak = 0
		if p.size > smallRead {
			p.size = max(p.size/4, smallRead)
			if p.enlarged && p.size < busyRead {
				p.release()
			}
		}
	default:
		p.streak = 0
	}
	return p.size
}

// enlarge makes the stream busy, if the budget allows: a big pipe, read
// with blocking reads.
func (p *pacer) enlarge() {
	f, ok := p.pipe.(*os.File)
	if !ok || !p.budget.take() {
		return
	}
	if got, err := SetPipeSize(f, busyRead); err != nil || got < busyRead {
		p.budget.give()
		return
	}
	p.enlarged, p.size = true, busyRead
	p.block(f)
}

// busy reports whether the stream has a big pipe to batch reads in.
func (p *pacer) busy() bool { return p.enlarged }

// release gives the big pipe back (shrinking it, which the kernel refuses
// while it holds more than the small size: then it stays big until the
// stream ends).
func (p *pacer) release() {
	if !p.enlarged {
		return
	}
	p.unblock()
	if f, ok := p.pipe.(*os.File); ok {
		if _, err := SetPipeSize(f, ReadSize); err != nil {
			return
		}
	}
	p.enlarged = false
	p.size = min(p.size, ReadSize)
	p.budget.give()
}

// done ends the pacing when the stream ends: whatever the pipe's state,
// its share of the budget goes back.
func (p *pacer) done() {
	p.unblock()
	if p.enlarged {
		p.enlarged = false
		p.budget.give()
	}
}

// PipeBudget bounds how many streams may hold an enlarged pipe at once.
// Big pipes count against a per-user limit of the kernel
// (/proc/sys/fs/pipe-user-pages-soft, 64 MiB by default); past it, every
// new pipe of the user, tend's or not, is made tiny. A nil budget allows
// none.
type PipeBudget struct {
	max  int32
	used atomic.Int32
}

// NewPipeBudget allows max enlarged pipes at once.
func NewPipeBudget(max int) *PipeBudget { return &PipeBudget{max: int32(max)} }

func (b *PipeBudget) take() bool {
	if b == nil {
		return false
	}
	if b.used.Add(1) > b.max {
		b.used.Add(-1)
		return false
	}
	return true
}

func (b *PipeBudget) give() {
	if b != nil {
		b.used.Add(-1)
	}
}

// copier is the state of one Copy call.
type copier struct {
	*Stream
	clk     clock.Clock
	fm      *formatter // nil for Plain
	out     []byte     // formatted lines, reused between chunks
	err     error      // first write error
	failing []bool     // per file: the last write failed
}

// emit sends lines, a run of whole lines each ending in '\n', on. One clock
// read serves the whole run.
func (c *copier) emit(lines []byte) {
	var now time.Time
	active := c.Hub.Active()
	if c.fm != nil || active {
		now = c.clk.Now()
	}
	data := lines
	if c.fm != nil {
		c.out = c.fm.format(c.out[:0], lines, now)
		data = c.out
		if cap(c.out) > 1<<20 && len(c.out) < cap(c.out)/4 {
			c.out = nil // after a huge line, don't keep its buffer
		}
	}
	for i, f := range c.Files {
		if f == nil {
			continue
		}
		_, err := f.Write(data)
		if err != nil && c.err == nil {
			c.err = err
		}
		if err != nil && !c.failing[i] && c.OnError != nil {
			c.OnError(err)
		}
		c.failing[i] = err != nil
	}
	if active {
		c.Hub.Publish(c.App, c.Slot, c.Name, now, lines)
	}
}
