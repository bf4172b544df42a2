package natsd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tend-pm/tend/internal/rawnet"
)

const (
	// A hub that cannot be reached, or drops the link, is tried again
	// after leafBackoffMin, doubling up to leafBackoffMax.
	leafBackoffMin = time.Second
	leafBackoffMax = 10 * time.Second
	// leafLoopDelay is the wait after a loop was detected, as nats-server
	// does: connecting again at once would only find the loop again.
	leafLoopDelay   = 30 * time.Second
	leafDialTimeout = 5 * time.Second // for each of a name's addresses
	// leafLookupTimeout bounds the lookup of a hub's name. It is longer
	// than resolv.conf's default tries take at worst (two rounds through
	// three nameservers that do not answer: 25 s), so that a failed lookup
	// ends with the resolver's reason rather than this deadline.
	leafLookupTimeout    = 30 * time.Second
	leafHandshakeTimeout = 5 * time.Second
	// leafMaxPingInterval caps the ping interval on a hub link, so that a
	// hub gone without a word (a partition) is noticed within a minute
	// and a half rather than the clients' minutes.
	leafMaxPingInterval = 30 * time.Second
)

// remote is one hub (Options.Leafs), its alternatives, and how the link
// to it fares.
type remote struct {
	urls []leafURL

	mu        sync.Mutex
	url       string // redacted URL of the current or last attempt
	cur       *conn  // the link, once ready
	connected bool
	lastErr   string
	since     time.Time // of the last change between connected and not
}

// hubInfo is what natsd reads from a hub's INFO.
type hubInfo struct {
	ID            string   `json:"server_id"`
	Name          string   `json:"server_name"`
	Headers       bool     `json:"headers"`
	TLSRequired   bool     `json:"tls_required"`
	MaxPayload    int      `json:"max_payload"`
	ClientID      uint64   `json:"client_id"`
	LeafNodeURLs  []string `json:"leafnode_urls"`
	InfoOnConnect bool     `json:"info_on_connect"`
	ConnectInfo   bool     `json:"connect_info"`
}

// leafConnect is the CONNECT a leaf sends its hub. It carries no lang:
// the hub takes a CONNECT with one for a client on the wrong port.
type leafConnect struct {
	Version     string `json:"version"`
	ID          string `json:"server_id"`
	Name        string `json:"name"`
	Headers     bool   `json:"headers"`
	Compression string `json:"compress_mode"`
	Protocol    int    `json:"protocol"`
	User        string `json:"user,omitempty"`
	Pass        string `json:"pass,omitempty"`
	Token       string `json:"auth_token,omitempty"`
}

// errLoop ends a link on which a hub announced this server's own loop
// detection subject.
var errLoop = errors.New("loop detected: the hub reaches this server by another link")

// leafLoop keeps a link to one hub: it connects, serves the link until it
// drops, waits, and connects again, going through the remote's URLs in
// turn, until Close.
func (s *Server) leafLoop(r *remote) {
	defer s.wg.Done()
	var delay time.Duration
	var lastErr string
	for i := 0; ; i++ {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if s.ctx.Err() != nil {
			return
		}
		u := r.urls[i%len(r.urls)]
		r.mu.Lock()
		r.url = u.redacted
		r.mu.Unlock()
		up, err := s.leafSession(r, u)
		if s.ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("link closed")
		}
		r.mu.Lock()
		r.lastErr = err.Error()
		if r.connected {
			r.connected, r.since = false, time.Now()
		}
		r.cur = nil
		r.mu.Unlock()
		switch {
		case errors.Is(err, errLoop):
			delay = leafLoopDelay
		case up || delay == 0:
			delay = leafBackoffMin
		default:
			delay = min(2*delay, leafBackoffMax)
		}
		// A hub that stays away is reported once, not every retry.
		level := slog.LevelWarn
		if !up && err.Error() == lastErr {
			level = slog.LevelDebug
		}
		lastErr = err.Error()
		s.log.Log(s.ctx, level, "nats: leaf link down", "hub", u.redacted, "err", err, "retry", delay)
	}
}

// leafSession dials a hub and serves the link until it ends; up reports
// whether it got as far as exchanging interest.
func (s *Server) leafSession(r *remote, u leafURL) (up bool, err error) {
	f, addr, err := s.dialHub(u)
	if err != nil {
		return false, fmt.Errorf("connect to %s: %w", u.redacted, err)
	}
	c := newConn(s, f, s.nextID.Add(1), kindLeaf, addr)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		f.Close()
		return false, ErrClosed
	}
	s.leafConns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		c.writeLoop()
	}()
	l := &leafLink{s: s, c: c, r: r, u: u}
	err = l.serve()
	c.finish()
	s.mu.Lock()
	delete(s.leafConns, c)
	for i, rc := range s.ready {
		if rc == c {
			s.ready = append(s.ready[:i], s.ready[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	c.dropSubs()
	return l.up, err
}

// dialHub looks the hub's host up, now rather than once at Start so that
// a hub that moved is found, and connects to its first address that
// takes the connection; it returns the address too.
func (s *Server) dialHub(u leafURL) (*os.File, string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, leafLookupTimeout)
	ips, err := s.o.Lookup(ctx, u.host)
	cancel()
	if err == nil && len(ips) == 0 {
		err = fmt.Errorf("lookup %s: no address", u.host)
	}
	if err != nil {
		return nil, "", err
	}
	var errs []string
	for _, ip := range ips {
		a := rawnet.Addr{Host: ip.Unmap().String(), Port: u.port}
		ctx, cancel := context.WithTimeout(s.ctx, leafDialTimeout)
		f, err := rawnet.Dial(ctx, a)
		cancel()
		if err == nil {
			return f, a.String(), nil
		}
		if len(ips) == 1 || s.ctx.Err() != nil {
			return nil, "", err
		}
		errs = append(errs, err.Error())
	}
	// One line, for LastError and the log.
	return nil, "", fmt.Errorf("%s: %s", u.host, strings.Join(errs, "; "))
}

// leafLink is one connection to a hub, seen from its reader.
type leafLink struct {
	s      *Server
	c      *conn
	r      *remote
	u      leafURL
	up     bool
	hubErr string // the last -ERR from the hub: why it closes the link
}

func (l *leafLink) serve() error {
	s, c := l.s, l.c
	_ = c.f.SetReadDeadline(time.Now().Add(leafHandshakeTimeout))
	p := newParser(c.f, true, maxPayloadLimit)
	p.idle = c.r.flush
	o, err := p.next()
	if err != nil {
		return fmt.Errorf("hub %s: waiting for INFO: %w", l.u.redacted, err)
	}
	if o.kind != opInfo {
		return fmt.Errorf("hub %s: the first message is not INFO", l.u.redacted)
	}
	var info hubInfo
	if err := json.Unmarshal(o.arg, &info); err != nil {
		return fmt.Errorf("hub %s: INFO: %w", l.u.redacted, err)
	}
	// A hub's leafnode port says client_id and leafnode_urls (or
	// info_on_connect); a client port has no leafnode_urls, a route port
	// no client_id.
	if info.ClientID == 0 || (info.LeafNodeURLs == nil && !info.InfoOnConnect) {
		return fmt.Errorf("hub %s: this is not a leafnode port", l.u.redacted)
	}
	if info.TLSRequired {
		return fmt.Errorf("hub %s: the hub requires TLS, which natsd does not speak; use a tunnel", l.u.redacted)
	}
	c.headers, c.name, c.maxPayload = info.Headers, info.Name, info.MaxPayload
	name := s.o.Name
	if name == "" {
		name = s.id
	}
	cj, _ := json.Marshal(leafConnect{
		Version: version, ID: s.id, Name: name, Headers: true, Compression: "off", Protocol: 1,
		User: l.u.user, Pass: l.u.pass, Token: l.u.token,
	})
	hello := append(append([]byte("CONNECT "), cj...), "\r\nPING\r\n"...)
	c.queueProto(hello)

	for {
		o, err := p.next()
		if err != nil {
			switch {
			case l.hubErr != "":
				return fmt.Errorf("hub %s: %s", l.u.redacted, l.hubErr)
			case !l.up:
				return fmt.Errorf("hub %s: handshake: %w", l.u.redacted, err)
			}
			return fmt.Errorf("hub %s: %w", l.u.redacted, err)
		}
		switch o.kind {
		case opInfo:
			var info hubInfo
			if json.Unmarshal(o.arg, &info) == nil && info.ConnectInfo {
				l.ready()
			}
		case opPong:
			c.pingsOut.Store(0)
			l.ready()
		case opPing:
			c.send([]byte("PONG\r\n"))
		case opErr:
			l.hubErr = string(bytes.Trim(o.arg, "'"))
			s.log.Warn("nats: hub error", "hub", l.u.redacted, "err", l.hubErr)
			if bytes.Contains(bytes.ToLower(o.arg), []byte("loop detected")) {
				return fmt.Errorf("hub %s: %s: %w", l.u.redacted, l.hubErr, errLoop)
			}
		case opLSub:
			if string(o.subject) == s.lds {
				c.close("Loop Detected")
				return fmt.Errorf("hub %s: %w", l.u.redacted, errLoop)
			}
			l.sub(o)
		case opLUnsub:
			l.unsub(o)
		case opLMsg:
			c.r.inMsgs++
			c.r.inBytes += uint64(len(o.payload))
			c.r.route(o.subject, o.reply, o.hdr, o.payload, o.queues)
		}
	}
}

// ready runs once the hub has taken the CONNECT: the link starts getting
// the local interest, and pings.
func (l *leafLink) ready() {
	if l.up {
		return
	}
	l.up = true
	s, c := l.s, l.c
	_ = c.f.SetReadDeadline(time.Time{})
	s.mu.Lock()
	if !s.closed {
		var b []byte
		b = append(b, leafSubLine(s.lds, false, 1)...)
		for key, n := range s.interest {
			b = append(b, leafSubLine(key, strings.Contains(key, " "), n)...)
		}
		c.queueProto(b)
		s.ready = append(s.ready, c)
	}
	s.mu.Unlock()
	l.r.mu.Lock()
	l.r.cur, l.r.connected, l.r.since, l.r.lastErr = c, true, time.Now(), ""
	l.r.mu.Unlock()
	c.startPings(min(s.o.PingInterval, leafMaxPingInterval))
	s.log.Info("nats: leaf link up", "hub", l.u.redacted, "hub_name", c.name)
}

// sub records interest the hub announced (LS+): a subject, or a queue
// group with its member count.
func (l *leafLink) sub(o *op) {
	subject, queue := string(o.subject), string(o.queue)
	if !validSubject(subject) || (o.queue != nil && !validQueue(queue)) {
		return
	}
	key := subject
	if queue != "" {
		key += " " + queue
	}
	c := l.c
	c.mu.Lock()
	if sb := c.subs[key]; sb != nil {
		c.mu.Unlock()
		sb.weight.Store(int32(o.weight))
		return
	}
	sb := &sub{kind: subLeaf, conn: c, subject: subject, queue: queue, sid: key}
	sb.weight.Store(int32(o.weight))
	c.subs[key] = sb
	c.mu.Unlock()
	l.s.sl.insert(sb)
}

// unsub drops interest the hub withdrew (LS-).
func (l *leafLink) unsub(o *op) {
	key := string(o.subject)
	if o.queue != nil {
		key += " " + string(o.queue)
	}
	c := l.c
	c.mu.Lock()
	sb := c.subs[key]
	delete(c.subs, key)
	c.mu.Unlock()
	if sb != nil {
		l.s.removeSub(sb)
	}
}
