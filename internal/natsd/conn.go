package natsd

import (
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tend-pm/tend/internal/rawnet"
)

type connKind uint8

const (
	kindClient connKind = iota
	kindLeaf            // our connection to a hub
)

const (
	// closeFlushTimeout bounds the last write of a closing connection
	// (the -ERR that says why), so a peer that stopped reading cannot
	// hold up a close.
	closeFlushTimeout = 500 * time.Millisecond
	// maxKeptBuffer is the largest write buffer kept for reuse; a burst
	// that grew it beyond is let go once written.
	maxKeptBuffer = 1 << 20
	// lingerTimeout and lingerBytes bound the reading after an -ERR.
	lingerTimeout = 250 * time.Millisecond
	lingerBytes   = 1 << 20
	// leafPendingFactor times MaxPending may wait for a hub before the
	// leaf connection is dropped and made again: the hub carries every
	// instance's traffic, so it gets more room than one client.
	leafPendingFactor = 4
)

// conn is a client connection, or the connection to a hub. One goroutine
// reads and handles what arrives (routing messages to their subscribers
// inline); another writes. Whoever delivers to a conn appends to its
// outbound buffer and signals the writer, which writes everything queued
// in one go: a publisher never waits for a subscriber's socket.
type conn struct {
	s     *Server
	f     *os.File
	id    uint64
	kind  connKind
	addr  string // peer address, for logs
	limit int    // outbound bytes allowed to wait (MaxPending)

	// Fixed once the peer is known (CONNECT for a client, INFO for a
	// hub), before any subscription of the connection exists: publishers
	// reach the connection through the sublist, whose lock orders them
	// after these writes.
	headers      bool // the peer takes HMSG; otherwise headers are stripped
	echo         bool
	verbose      bool
	noResponders bool
	name         string
	maxPayload   int // a hub's max_payload: larger messages are not sent to it

	authed   atomic.Bool
	pingsOut atomic.Int32

	mu       sync.Mutex
	out      []byte // queued for the writer
	spare    []byte // the writer's last buffer, reused
	inflight int    // bytes the writer is writing now
	closed   bool
	slow     bool
	// linger is set when the connection is closed with an -ERR: the
	// peer must get to read it (see finish).
	linger bool
	subs   map[string]*sub // by SID (client) or LS+ key (leaf)

	flush      chan struct{} // wakes the writer; capacity 1
	writerDone chan struct{}
	authTimer  *time.Timer
	pingTimer  *time.Timer

	// r routes what this connection publishes; only its reader uses it.
	r *router
}

func newConn(s *Server, f *os.File, id uint64, kind connKind, addr string) *conn {
	c := &conn{
		s:          s,
		f:          f,
		id:         id,
		kind:       kind,
		addr:       addr,
		limit:      s.o.MaxPending,
		echo:       true,
		subs:       map[string]*sub{},
		flush:      make(chan struct{}, 1),
		writerDone: make(chan struct{}),
	}
	if kind == kindLeaf {
		c.limit *= leafPendingFactor
	}
	c.r = newRouter(s, c)
	return c
}

// signal wakes the writer.
func (c *conn) signal() {
	select {
	case c.flush <- struct{}{}:
	default:
	}
}

// queueProto queues a protocol line and wakes the writer.
func (c *conn) queueProto(b []byte) {
	c.mu.Lock()
	ok := c.queueLocked(len(b))
	if ok {
		c.out = append(c.out, b...)
	}
	c.mu.Unlock()
	if ok {
		c.signal()
	}
}

// queueMsg queues a message (control line, payload, CRLF) without waking
// the writer: the router signals once it has handled all it read. It
// reports whether the message was taken.
func (c *conn) queueMsg(head, payload []byte) bool {
	c.mu.Lock()
	ok := c.queueLocked(len(head) + len(payload) + 2)
	if ok {
		c.out = append(c.out, head...)
		c.out = append(c.out, payload...)
		c.out = append(c.out, '\r', '\n')
	}
	c.mu.Unlock()
	return ok
}

// queueLocked reports whether n more bytes may be queued, and cuts the
// connection off as a slow consumer when they would go past its limit.
func (c *conn) queueLocked(n int) bool {
	if c.closed {
		return false
	}
	if len(c.out)+c.inflight+n <= c.limit {
		return true
	}
	c.slow = true
	c.s.stats.slowConsumers.Add(1)
	c.s.log.Warn("nats: slow consumer, closing", "conn", c.id, "addr", c.addr, "name", c.name, "pending", len(c.out)+c.inflight)
	c.closeLocked("Slow Consumer")
	return false
}

// close closes the connection, first sending -ERR errText unless it is
// empty.
func (c *conn) close(errText string) {
	c.mu.Lock()
	c.closeLocked(errText)
	c.mu.Unlock()
}

func (c *conn) closeLocked(errText string) {
	if c.closed {
		return
	}
	c.closed = true
	if errText != "" {
		c.linger = !c.slow
		c.out = append(c.out, "-ERR '"...)
		c.out = append(c.out, errText...)
		c.out = append(c.out, "'\r\n"...)
	}
	// The deadlines end a write stuck on a peer that does not read (at
	// once for a slow consumer: its socket is full) and wake the reader.
	deadline := time.Now().Add(closeFlushTimeout)
	if c.slow {
		deadline = time.Now()
	}
	_ = c.f.SetWriteDeadline(deadline)
	_ = c.f.SetReadDeadline(time.Unix(1, 0))
	c.signal()
}

// isClosed reports whether close was called.
func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// writeLoop writes whatever is queued, in batches, until the connection
// is closed and its last bytes are out (or cannot be).
func (c *conn) writeLoop() {
	defer close(c.writerDone)
	for {
		c.mu.Lock()
		buf, closed := c.out, c.closed
		if len(buf) == 0 {
			c.mu.Unlock()
			if closed {
				return
			}
			<-c.flush
			continue
		}
		c.out, c.spare = c.spare[:0], nil
		c.inflight = len(buf)
		c.mu.Unlock()

		_, err := c.f.Write(buf)

		c.mu.Lock()
		c.inflight = 0
		if cap(buf) <= maxKeptBuffer {
			c.spare = buf[:0]
		}
		if err != nil {
			c.out = nil
			c.closeLocked("")
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// finish runs when the reader stops: it closes the connection, waits for
// the writer and releases the descriptor.
func (c *conn) finish() {
	c.mu.Lock()
	c.closeLocked("")
	if c.authTimer != nil {
		c.authTimer.Stop()
	}
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	linger := c.linger
	c.mu.Unlock()
	<-c.writerDone
	if linger && !c.s.isClosed() {
		// Closing a socket with unread input resets the connection,
		// and a reset can destroy the -ERR before the peer reads it
		// (a client writes CONNECT right after INFO, even when INFO is
		// followed by an error). So: shut down our side and read what
		// still comes, for a moment.
		_ = rawnet.CloseWrite(c.f)
		_ = c.f.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.CopyN(io.Discard, c.f, lingerBytes)
	}
	c.f.Close()
}

// startPings pings the peer every interval; after maxPingsOut pings
// without a PONG the connection is stale and is closed.
func (c *conn) startPings(interval time.Duration) {
	tick := func() {
		if c.isClosed() {
			return
		}
		if c.pingsOut.Add(1) > maxPingsOut {
			c.s.log.Debug("nats: stale connection", "conn", c.id, "addr", c.addr)
			c.close("Stale Connection")
			return
		}
		c.queueProto([]byte("PING\r\n"))
		c.mu.Lock()
		if !c.closed {
			c.pingTimer.Reset(interval)
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.pingTimer = time.AfterFunc(interval, tick)
	c.mu.Unlock()
}
