package logs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tend-pm/tend/internal/api"
)

// DefaultFollowBuffer is how many bytes of lines a follower may have
// waiting before it starts to miss lines.
const DefaultFollowBuffer = 1 << 20

// entryOverhead is what a queued chunk is charged beyond its bytes, so
// that a flood of tiny chunks is bounded too.
const entryOverhead = 128

// StreamTend is the stream name of notes from tend itself, such as the
// note that a follower missed lines.
const StreamTend = "tend"

// Hub fans an app's output out to followers (`tend logs --follow`).
//
// Publishing never waits for a follower: each Subscription has a bounded
// buffer, and when it is full the follower misses lines and later reads a
// note saying how many. With no followers, Publish is one atomic load.
// The zero Hub is not usable; call NewHub. A nil *Hub drops everything.
type Hub struct {
	n    atomic.Int32 // len(subs), read without the lock by Publish
	mu   sync.Mutex
	subs []*Subscription
}

// NewHub returns a Hub with no followers.
func NewHub() *Hub { return &Hub{} }

// Filter picks the lines a follower sees. An empty field matches all.
type Filter struct {
	Apps    []string
	Slots   []int
	Streams []string // "out", "err", StreamTend
}

func (f *Filter) match(app string, slot int, stream string) bool {
	return (len(f.Apps) == 0 || slices.Contains(f.Apps, app)) &&
		(len(f.Slots) == 0 || slices.Contains(f.Slots, slot)) &&
		(len(f.Streams) == 0 || slices.Contains(f.Streams, stream))
}

// Active reports whether anyone follows; Copy skips the work of
// publishing when no one does.
func (h *Hub) Active() bool { return h != nil && h.n.Load() > 0 }

// Publish offers lines, a run of whole lines each ending in '\n', printed
// by one stream of one instance at time t. The bytes are copied (once,
// whatever the number of followers), so the caller may reuse lines.
func (h *Hub) Publish(app string, slot int, stream string, t time.Time, lines []byte) {
	if !h.Active() || len(lines) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var data []byte
	nlines := -1 // counted only if a follower misses this chunk
	for _, s := range h.subs {
		if !s.filter.match(app, slot, stream) {
			continue
		}
		if data == nil {
			data = bytes.Clone(lines)
		}
		s.push(chunk{app: app, slot: slot, stream: stream, t: t, data: data}, &nlines)
	}
}

// Subscribe starts following the lines that match f. buffer bounds the
// bytes waiting for the follower (0: DefaultFollowBuffer), give or take
// one chunk of at most MaxLine. The follower
// must Close the Subscription when done.
func (h *Hub) Subscribe(f Filter, buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultFollowBuffer
	}
	s := &Subscription{hub: h, filter: f, limit: buffer, ready: make(chan struct{}, 1)}
	h.mu.Lock()
	h.subs = append(h.subs, s)
	h.n.Store(int32(len(h.subs)))
	h.mu.Unlock()
	return s
}

// chunk is a run of whole lines from one stream, or, when data is nil, a
// note that lines were skipped at this point.
type chunk struct {
	app    string
	slot   int
	stream string
	t      time.Time
	data   []byte

	skippedLines, skippedBytes int64
}

// Subscription is one follower's queue. Next and Close may be called from
// a goroutine other than the publishers'.
type Subscription struct {
	hub    *Hub
	filter Filter
	limit  int
	ready  chan struct{} // holds a token when the queue may be non-empty

	mu     sync.Mutex // guards the fields below
	queue  []chunk
	used   int
	closed bool
}

// push queues c, or records it as skipped if the queue is full. nlines
// caches the line count of c.data across followers.
func (s *Subscription) push(c chunk, nlines *int) {
	s.mu.Lock()
	cost := len(c.data) + entryOverhead
	n := len(s.queue)
	// Once a follower misses lines it misses all of them until it reads
	// again, so it sees one gap with one note, not a sieve. A follower
	// that has read everything takes any chunk, so a line longer than the
	// buffer still reaches it: the bound is the buffer plus one chunk.
	skipping := n > 0 && s.queue[n-1].data == nil
	if !skipping && (n == 0 || s.used+cost <= s.limit) {
		s.queue = append(s.queue, c)
		s.used += cost
	} else {
		if *nlines < 0 {
			*nlines = bytes.Count(c.data, []byte{'\n'})
		}
		if !skipping {
			s.queue = append(s.queue, chunk{app: c.app, slot: c.slot})
		}
		note := &s.queue[len(s.queue)-1]
		if note.app != c.app {
			note.app, note.slot = "", -1
		} else if note.slot != c.slot {
			note.slot = -1
		}
		note.t = c.t
		note.skippedLines += int64(*nlines)
		note.skippedBytes += int64(len(c.data))
	}
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Next waits until lines are queued and returns all of them, oldest first,
// with a StreamTend note where lines were skipped. It returns ctx's error
// when ctx ends first.
func (s *Subscription) Next(ctx context.Context) ([]api.LogLine, error) {
	for {
		s.mu.Lock()
		q, closed := s.queue, s.closed
		s.queue, s.used = nil, 0
		s.mu.Unlock()
		if len(q) > 0 {
			return toLogLines(q), nil
		}
		if closed {
			return nil, fmt.Errorf("follow logs: %w", os.ErrClosed)
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close stops the subscription; lines published later are not queued.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	if i := slices.Index(h.subs, s); i >= 0 {
		h.subs = slices.Delete(h.subs, i, i+1)
		h.n.Store(int32(len(h.subs)))
	}
	h.mu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

func toLogLines(q []chunk) []api.LogLine {
	n := 0
	for _, c := range q {
		if c.data == nil {
			n++
		} else {
			n += bytes.Count(c.data, []byte{'\n'})
		}
	}
	out := make([]api.LogLine, 0, n)
	for _, c := range q {
		if c.data == nil {
			out = append(out, api.LogLine{
				App: c.app, Instance: c.slot, Stream: StreamTend, Time: c.t,
				Line: fmt.Sprintf("skipped %d lines (%d bytes): this follower read too slowly", c.skippedLines, c.skippedBytes),
			})
			continue
		}
		data := c.data
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				i = len(data) - 1 // Publish's contract says this cannot be; keep the bytes anyway
			}
			out = append(out, api.LogLine{
				App: c.app, Instance: c.slot, Stream: c.stream, Time: c.t,
				Line: string(bytes.TrimSuffix(data[:i+1], []byte{'\n'})),
			})
			data = data[i+1:]
		}
	}
	return out
}
