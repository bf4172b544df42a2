package natsd

import (
	"crypto/subtle"
	"encoding/json"
	"runtime"
	"time"
)

// version is what INFO announces. Clients look at proto and headers,
// not at the version; this one is recent enough that none disables a
// feature natsd has.
const version = "2.10.0"

var errAuthViolation = &protoError{"Authorization Violation"}

// serverInfo is the INFO a client gets on connecting.
type serverInfo struct {
	ID           string `json:"server_id"`
	Name         string `json:"server_name"`
	Version      string `json:"version"`
	Proto        int    `json:"proto"`
	Go           string `json:"go"`
	Host         string `json:"host"`
	Port         int    `json:"port"`
	Headers      bool   `json:"headers"`
	AuthRequired bool   `json:"auth_required"`
	MaxPayload   int    `json:"max_payload"`
	ClientID     uint64 `json:"client_id"`
	ClientIP     string `json:"client_ip,omitempty"`
}

// connectInfo is what a client's CONNECT may say.
type connectInfo struct {
	Verbose      bool   `json:"verbose"`
	Pedantic     bool   `json:"pedantic"`
	User         string `json:"user"`
	Pass         string `json:"pass"`
	Token        string `json:"auth_token"`
	Name         string `json:"name"`
	Lang         string `json:"lang"`
	Version      string `json:"version"`
	Protocol     int    `json:"protocol"`
	Echo         *bool  `json:"echo"`
	Headers      bool   `json:"headers"`
	NoResponders bool   `json:"no_responders"`
}

// serveClient is a client connection's reader: INFO, then CONNECT within
// AuthTimeout, then operations until the connection ends. full means the
// server already has MaxConnections clients: this one is told so and
// closed.
func (c *conn) serveClient(ip string, port int, full bool) {
	s := c.s
	defer s.removeClient(c)
	defer c.finish()
	info, _ := json.Marshal(serverInfo{
		ID: s.id, Name: s.o.Name, Version: version, Proto: 1, Go: runtime.Version(),
		Host: s.o.Host, Port: s.port, Headers: true, AuthRequired: true,
		MaxPayload: s.o.MaxPayload, ClientID: c.id, ClientIP: ip,
	})
	c.queueProto(append(append([]byte("INFO "), info...), '\r', '\n'))
	if full {
		s.log.Warn("nats: maximum connections exceeded", "addr", c.addr, "max", s.o.MaxConnections)
		c.close("maximum connections exceeded")
		return
	}
	s.log.Debug("nats: client connected", "conn", c.id, "addr", c.addr)
	c.mu.Lock()
	c.authTimer = time.AfterFunc(s.o.AuthTimeout, func() {
		if !c.authed.Load() {
			s.log.Info("nats: authentication timeout", "conn", c.id, "addr", c.addr)
			c.close("Authentication Timeout")
		}
	})
	c.mu.Unlock()

	p := newParser(c.f, false, s.o.MaxPayload)
	p.idle = c.r.flush
	for {
		o, err := p.next()
		if err == nil {
			err = c.handle(o)
		}
		if err != nil {
			if pe, ok := isProtoError(err); ok {
				s.log.Info("nats: closing client", "conn", c.id, "addr", c.addr, "name", c.name, "err", pe.text)
				c.close(pe.text)
			}
			break
		}
	}
	c.r.flush()
	c.dropSubs()
	s.log.Debug("nats: client gone", "conn", c.id, "addr", c.addr, "name", c.name)
}

// handle acts on one operation from a client.
func (c *conn) handle(o *op) error {
	if !c.authed.Load() {
		if o.kind != opConnect {
			return errAuthViolation
		}
		return c.connect(o.arg)
	}
	switch o.kind {
	case opConnect:
		// A second CONNECT changes nothing: the flags were fixed before
		// the first subscription (see conn).
		c.ok()
	case opPing:
		c.send([]byte("PONG\r\n"))
	case opPong:
		c.pingsOut.Store(0)
	case opPub:
		c.pub(o)
	case opSub:
		c.sub(o)
	case opUnsub:
		c.unsub(o)
	}
	return nil
}

// connect checks a CONNECT's credentials, in constant time, and takes its
// options.
func (c *conn) connect(arg []byte) error {
	var ci connectInfo
	if err := json.Unmarshal(arg, &ci); err != nil {
		return errAuthViolation
	}
	o := &c.s.o
	pass := []byte(o.Password)
	userOK := subtle.ConstantTimeCompare([]byte(ci.User), []byte(o.User))
	passOK := subtle.ConstantTimeCompare([]byte(ci.Pass), pass)
	tokenOK := subtle.ConstantTimeCompare([]byte(ci.Token), pass)
	if (userOK&passOK)|tokenOK != 1 {
		return errAuthViolation
	}
	if ci.NoResponders && !ci.Headers {
		return &protoError{"no responders requires headers support"}
	}
	c.verbose, c.headers, c.noResponders, c.name = ci.Verbose, ci.Headers, ci.NoResponders, ci.Name
	if ci.Echo != nil {
		c.echo = *ci.Echo
	}
	c.authed.Store(true)
	c.mu.Lock()
	c.authTimer.Stop()
	c.mu.Unlock()
	c.startPings(o.PingInterval)
	c.s.log.Debug("nats: client authenticated", "conn", c.id, "name", ci.Name, "lang", ci.Lang, "version", ci.Version)
	c.ok()
	return nil
}

// send queues a reply to the client; it is written once the reader has
// handled what it read.
func (c *conn) send(b []byte) {
	c.mu.Lock()
	ok := c.queueLocked(len(b))
	if ok {
		c.out = append(c.out, b...)
	}
	c.mu.Unlock()
	if ok {
		c.r.pending[c] = struct{}{}
	}
}

// ok acknowledges an operation in verbose mode.
func (c *conn) ok() {
	if c.verbose {
		c.send([]byte("+OK\r\n"))
	}
}

func (c *conn) pub(o *op) {
	if !validLiteral(o.subject) || (len(o.reply) > 0 && !validLiteral(o.reply)) {
		c.send([]byte("-ERR 'Invalid Publish Subject'\r\n"))
		return
	}
	if len(c.s.o.Reserved) > 0 && c.s.IsReserved(string(o.subject)) {
		c.send([]byte("-ERR 'Permissions Violation for Publish to \"" + string(o.subject) + "\"'\r\n"))
		return
	}
	c.r.inMsgs++
	c.r.inBytes += uint64(len(o.payload))
	n := c.r.route(o.subject, o.reply, o.hdr, o.payload, nil)
	if n == 0 && len(o.reply) > 0 && c.noResponders {
		c.r.noResponders(o.reply)
	}
	c.ok()
}

func (c *conn) sub(o *op) {
	subject, queue := string(o.subject), string(o.queue)
	if !validSubject(subject) || (o.queue != nil && !validQueue(queue)) {
		c.send([]byte("-ERR 'Invalid Subject'\r\n"))
		return
	}
	sid := string(o.sid)
	c.mu.Lock()
	if _, dup := c.subs[sid]; dup {
		c.mu.Unlock()
		c.ok()
		return
	}
	sb := &sub{kind: subClient, conn: c, subject: subject, queue: queue, sid: sid}
	c.subs[sid] = sb
	c.mu.Unlock()
	c.s.addSub(sb)
	c.ok()
}

func (c *conn) unsub(o *op) {
	c.mu.Lock()
	sb := c.subs[string(o.sid)]
	c.mu.Unlock()
	if sb != nil {
		if o.max > 0 {
			sb.max.Store(uint64(o.max))
			if sb.delivered.Load() >= uint64(o.max) {
				c.s.removeSub(sb)
			}
		} else {
			c.s.removeSub(sb)
		}
	}
	c.ok()
}

// dropSubs removes every subscription of a closing connection.
func (c *conn) dropSubs() {
	c.mu.Lock()
	subs := make([]*sub, 0, len(c.subs))
	for _, sb := range c.subs {
		subs = append(subs, sb)
	}
	c.mu.Unlock()
	for _, sb := range subs {
		c.s.removeSub(sb)
	}
}
