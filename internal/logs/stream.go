package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
	size := min(ReadSize, limit)
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
		m, rerr := r.Read(buf[n : len(buf)-1])
		if m > 0 {
			if i := bytes.LastIndexByte(buf[n:n+m], '\n'); i >= 0 {
				end := n + i + 1
				c.emit(buf[:end])
				n = copy(buf, buf[end:n+m])
				if len(buf)-1 > size && n <= size/2 {
					// Done with a long line: give the memory back.
					nb := make([]byte, size+1)
					copy(nb, buf[:n])
					buf = nb
				}
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
