package natsd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
)

// Msg is a message as an in-process subscriber receives it. Header is
// the raw NATS header block ("NATS/1.0\r\nKey: Value\r\n\r\n"), nil when
// the message has none. The slices belong to the receiver.
type Msg struct {
	Subject string
	Reply   string
	Header  []byte
	Data    []byte
}

var (
	// ErrClosed is returned once the server is closed.
	ErrClosed = errors.New("nats server closed")
	// ErrNoResponders is Request's answer when nothing subscribes to the
	// subject.
	ErrNoResponders = errors.New("no responders")
	// ErrInvalidSubject is returned for a subject that cannot be
	// published or subscribed to.
	ErrInvalidSubject = errors.New("invalid subject")
	// ErrMaxPayload refuses a message larger than Options.MaxPayload.
	ErrMaxPayload = errors.New("above the maximum payload")
)

const (
	// An in-process subscription queues at most this many messages or
	// bytes for its callback; past either, messages are dropped (and
	// counted) rather than holding up the publisher.
	subQueueMsgs  = 64 * 1024
	subQueueBytes = 16 << 20
)

// Subscription is an in-process subscription. Its callback runs in the
// subscription's own goroutine, one message at a time, in order.
type Subscription struct {
	s   *Server
	sub *sub
	fn  func(Msg)

	mu      sync.Mutex
	queue   []Msg
	spare   []Msg
	bytes   int
	closed  bool
	wake    chan struct{}
	dropped atomic.Uint64
}

// Subscribe calls fn for every message on subject (wildcards allowed),
// as one member of queue group queue when it is not empty. Messages are
// handed over through a bounded queue (64k messages or 16 MiB): a
// callback that falls behind loses messages (see Dropped), it never
// slows a publisher. fn must return for Unsubscribe and Close to finish
// their work; it must not call Close.
func (s *Server) Subscribe(subject, queue string, fn func(Msg)) (*Subscription, error) {
	if !validSubject(subject) {
		return nil, fmt.Errorf("subscribe to %q: %w", subject, ErrInvalidSubject)
	}
	if queue != "" && !validQueue(queue) {
		return nil, fmt.Errorf("subscribe to %q: queue %q: %w", subject, queue, ErrInvalidSubject)
	}
	is := &Subscription{s: s, fn: fn, wake: make(chan struct{}, 1)}
	is.sub = &sub{kind: subInternal, isub: is, subject: subject, queue: queue}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.isubs[is] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go is.run()
	s.addSub(is.sub)
	return is, nil
}

// Unsubscribe stops the subscription: messages still queued are dropped
// and no new callback starts, though one may be running when it returns.
// It may be called from the callback.
func (is *Subscription) Unsubscribe() {
	is.s.removeSub(is.sub)
	is.stop()
}

// Dropped returns how many messages were dropped because the queue was
// full.
func (is *Subscription) Dropped() uint64 {
	return is.dropped.Load()
}

func (is *Subscription) stop() {
	is.mu.Lock()
	if is.closed {
		is.mu.Unlock()
		return
	}
	is.closed = true
	is.queue, is.bytes = nil, 0
	is.mu.Unlock()
	is.s.mu.Lock()
	delete(is.s.isubs, is)
	is.s.mu.Unlock()
	select {
	case is.wake <- struct{}{}:
	default:
	}
}

// push queues a copy of a message for the callback.
func (is *Subscription) push(subject, reply []byte, hdr int, payload []byte) {
	is.mu.Lock()
	if is.closed {
		is.mu.Unlock()
		return
	}
	if len(is.queue) >= subQueueMsgs || is.bytes+len(payload) > subQueueBytes {
		is.mu.Unlock()
		is.dropped.Add(1)
		is.s.stats.dropped.Add(1)
		return
	}
	m := Msg{Subject: string(subject), Data: bytes.Clone(payload)}
	if len(reply) > 0 {
		m.Reply = string(reply)
	}
	if m.Data == nil {
		m.Data = []byte{}
	}
	if hdr >= 0 {
		m.Header, m.Data = m.Data[:hdr:hdr], m.Data[hdr:]
	}
	is.queue = append(is.queue, m)
	is.bytes += len(payload)
	is.mu.Unlock()
	select {
	case is.wake <- struct{}{}:
	default:
	}
}

// run calls the callback for queued messages until the subscription
// stops.
func (is *Subscription) run() {
	defer is.s.wg.Done()
	for range is.wake {
		is.mu.Lock()
		if is.closed {
			is.mu.Unlock()
			return
		}
		batch := is.queue
		is.queue, is.spare = is.spare[:0], nil
		is.bytes = 0
		is.mu.Unlock()
		for i, m := range batch {
			is.mu.Lock()
			closed := is.closed
			is.mu.Unlock()
			if closed {
				return
			}
			is.fn(m)
			batch[i] = Msg{}
		}
		is.mu.Lock()
		if is.spare == nil && cap(batch) <= 1024 {
			is.spare = batch[:0]
		}
		is.mu.Unlock()
	}
}

// Publish sends a message as a client's PUB (HPUB with a header) would:
// to local subscribers and to hubs with interest. header is a raw NATS
// header block or nil; reply may be empty.
func (s *Server) Publish(subject, reply string, header, data []byte) error {
	_, err := s.publish(subject, reply, header, data)
	return err
}

func (s *Server) publish(subject, reply string, header, data []byte) (int, error) {
	if !validLiteral(subject) {
		return 0, fmt.Errorf("publish to %q: %w", subject, ErrInvalidSubject)
	}
	if reply != "" && !validLiteral(reply) {
		return 0, fmt.Errorf("publish to %q: reply %q: %w", subject, reply, ErrInvalidSubject)
	}
	if len(header) > 0 && !validHeader(header) {
		return 0, fmt.Errorf("publish to %q: the header must be a NATS/1.0 block ending in an empty line", subject)
	}
	if len(header)+len(data) > s.o.MaxPayload {
		return 0, fmt.Errorf("publish to %q: %d bytes, %w of %d", subject, len(header)+len(data), ErrMaxPayload, s.o.MaxPayload)
	}
	if s.isClosed() {
		return 0, ErrClosed
	}
	r := s.routers.Get().(*router)
	defer s.routers.Put(r)
	hdr, payload := -1, data
	if len(header) > 0 {
		hdr = len(header)
		r.scratch = append(append(r.scratch[:0], header...), data...)
		payload = r.scratch
	}
	r.inMsgs++
	r.inBytes += uint64(len(payload))
	n := r.route([]byte(subject), []byte(reply), hdr, payload, nil)
	r.flush()
	return n, nil
}

// validHeader reports whether h is a header block clients can parse.
func validHeader(h []byte) bool {
	return bytes.HasPrefix(h, []byte("NATS/1.0")) && bytes.HasSuffix(h, []byte("\r\n\r\n"))
}

// Request publishes a request with a unique reply subject and returns
// the first reply, or ErrNoResponders at once when nothing subscribes
// to subject.
func (s *Server) Request(ctx context.Context, subject string, header, data []byte) (Msg, error) {
	inbox := "_INBOX." + s.id + "." + strconv.FormatUint(s.inboxes.Add(1), 10)
	got := make(chan Msg, 1)
	sub, err := s.Subscribe(inbox, "", func(m Msg) {
		select {
		case got <- m:
		default:
		}
	})
	if err != nil {
		return Msg{}, err
	}
	defer sub.Unsubscribe()
	n, err := s.publish(subject, inbox, header, data)
	if err != nil {
		return Msg{}, err
	}
	if n == 0 {
		return Msg{}, fmt.Errorf("request on %q: %w", subject, ErrNoResponders)
	}
	select {
	case m := <-got:
		return m, nil
	case <-ctx.Done():
		return Msg{}, fmt.Errorf("request on %q: %w", subject, ctx.Err())
	}
}
