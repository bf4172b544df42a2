package natsd

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tend-pm/tend/internal/rawnet"
	"golang.org/x/sys/unix"
)

// Server is a NATS server: clients connect to it over TCP, in-process
// code publishes and subscribes through it, and it links to hubs as a
// leaf node.
type Server struct {
	o    Options
	log  *slog.Logger
	ln   *os.File
	port int
	id   string
	// lds is this server's loop detection subject: announced to every
	// hub, it coming back from one means a hub sees this server twice.
	lds string

	sl      *sublist
	routers sync.Pool // of *router, for in-process publishers
	nextID  atomic.Uint64
	inboxes atomic.Uint64

	// mu guards what follows, and orders changes of local interest with
	// the LS+/LS- lines they send. It is taken before the sublist's lock
	// and any connection's.
	mu        sync.Mutex
	closed    bool
	conns     map[*conn]struct{} // clients
	leafConns map[*conn]struct{} // hub connections, ready or not
	ready     []*conn            // hub connections that get interest updates
	interest  map[string]int     // local interest by LS+ key: count of subs
	localSubs int
	isubs     map[*Subscription]struct{}
	remotes   []*remote

	ctx    context.Context // ends leaf dials and backoffs at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stats struct {
		totalConns    atomic.Uint64
		inMsgs        atomic.Uint64
		inBytes       atomic.Uint64
		outMsgs       atomic.Uint64
		outBytes      atomic.Uint64
		slowConsumers atomic.Uint64
		dropped       atomic.Uint64
	}
}

// Start listens and starts serving, and starts connecting to the hubs of
// o.Leafs (in the background: a hub that cannot be reached is retried,
// and reported in Stats).
func Start(o Options) (*Server, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	s := &Server{
		o:         o,
		log:       o.Log,
		id:        randomID(22),
		sl:        newSublist(),
		conns:     map[*conn]struct{}{},
		leafConns: map[*conn]struct{}{},
		interest:  map[string]int{},
		isubs:     map[*Subscription]struct{}{},
	}
	s.lds = "$LDS." + randomID(22)
	s.routers.New = func() any { return newRouter(s, nil) }
	for _, r := range o.Leafs {
		urls, err := parseRemote(r)
		if err != nil {
			return nil, fmt.Errorf("nats server: %w", err)
		}
		s.remotes = append(s.remotes, &remote{urls: urls})
	}
	// ParseAddr checks the host; it refuses port 0, which Listen takes
	// as "any", so the port is set after.
	addr, err := rawnet.ParseAddr(joinHostPort(o.Host, 1))
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	addr.Port = o.Port
	s.ln, err = rawnet.Listen(addr, rawnet.ListenOptions{NonBlocking: true})
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	if s.port, err = rawnet.LocalPort(s.ln); err != nil {
		s.ln.Close()
		return nil, fmt.Errorf("nats server: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1 + len(s.remotes))
	go s.acceptLoop()
	for _, r := range s.remotes {
		go s.leafLoop(r)
	}
	s.log.Info("nats: listening", "addr", joinHostPort(o.Host, s.port), "leafs", len(s.remotes))
	return s, nil
}

// joinHostPort writes host:port, bracketing an IPv6 host.
func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// Port returns the port clients connect to.
func (s *Server) Port() int { return s.port }

// ClientURL returns the URL a client on this machine connects with,
// credentials included: nats://user:pass@127.0.0.1:port (or
// nats://pass@... with no user, the password serving as a token).
func (s *Server) ClientURL() string {
	u := s.url()
	if s.o.User != "" {
		u.User = url.UserPassword(s.o.User, s.o.Password)
	} else {
		u.User = url.User(s.o.Password)
	}
	return u.String()
}

// URL is where a client on this machine reaches the server, without the
// credentials.
func (s *Server) URL() string {
	u := s.url()
	return u.String()
}

func (s *Server) url() url.URL {
	host := s.o.Host
	switch host {
	case "0.0.0.0", "::", "":
		host = "127.0.0.1"
	}
	return url.URL{Scheme: "nats", Host: joinHostPort(host, s.port)}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops accepting, closes every client and hub connection and
// in-process subscription, and waits for all their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.conns)+len(s.leafConns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	for c := range s.leafConns {
		conns = append(conns, c)
	}
	isubs := make([]*Subscription, 0, len(s.isubs))
	for is := range s.isubs {
		isubs = append(isubs, is)
	}
	s.mu.Unlock()

	s.cancel()
	err := s.ln.Close()
	for _, c := range conns {
		c.close("")
	}
	for _, is := range isubs {
		is.stop()
	}
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("nats server: close listener: %w", err)
	}
	return nil
}

// acceptLoop accepts client connections until Close.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		f, err := rawnet.AcceptPolled(s.ln)
		if err != nil {
			if s.isClosed() {
				return
			}
			// Out of descriptors, say: wait a little rather than spin.
			s.log.Warn("nats: accept", "err", err)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		s.addClient(f)
	}
}

// addClient registers a new client connection and starts its goroutines.
func (s *Server) addClient(f *os.File) {
	noDelay(f)
	addr, ip, port := "", "", 0
	if remote, _, ok := rawnet.Endpoints(f); ok {
		addr, ip, port = remote.String(), remote.Addr().String(), int(remote.Port())
	}
	c := newConn(s, f, s.nextID.Add(1), kindClient, addr)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		f.Close()
		return
	}
	full := len(s.conns) >= s.o.MaxConnections
	s.conns[c] = struct{}{}
	s.wg.Add(2)
	s.mu.Unlock()
	s.stats.totalConns.Add(1)
	go func() {
		defer s.wg.Done()
		c.writeLoop()
	}()
	go func() {
		defer s.wg.Done()
		c.serveClient(ip, port, full)
	}()
}

func (s *Server) removeClient(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// addSub indexes a local subscription (a client's or in-process) and
// tells the hubs when it is new interest.
func (s *Server) addSub(sb *sub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sl.insert(sb)
	s.localSubs++
	s.changeInterestLocked(sb.subject, sb.queue, 1)
}

// removeSub takes a subscription out, once, whoever asks first (UNSUB,
// auto-unsubscribe, a closing connection).
func (s *Server) removeSub(sb *sub) {
	if !sb.removed.CompareAndSwap(false, true) {
		return
	}
	if sb.kind == subLeaf {
		s.sl.remove(sb)
		return
	}
	s.mu.Lock()
	if s.sl.remove(sb) {
		s.localSubs--
		s.changeInterestLocked(sb.subject, sb.queue, -1)
	}
	s.mu.Unlock()
	if c := sb.conn; c != nil {
		c.mu.Lock()
		if c.subs[sb.sid] == sb {
			delete(c.subs, sb.sid)
		}
		c.mu.Unlock()
	}
}

// changeInterestLocked counts local interest by subject and queue and
// sends the hubs an LS+ when a subject gains its first subscription, an
// LS- when it loses its last, and for queue groups an LS+ with the new
// member count (its weight at the hub) on every change.
func (s *Server) changeInterestLocked(subject, queue string, delta int) {
	if s.isLocal(subject) {
		return
	}
	key := subject
	if queue != "" {
		key += " " + queue
	}
	n := s.interest[key] + delta
	if n <= 0 {
		delete(s.interest, key)
		n = 0
	} else {
		s.interest[key] = n
	}
	if len(s.ready) == 0 {
		return
	}
	starts, ends := n == 1 && delta > 0, n == 0
	if queue == "" && !starts && !ends {
		return // a plain subject's interest neither starts nor ends
	}
	line := leafSubLine(key, queue != "", n)
	for _, c := range s.ready {
		c.queueProto(line)
	}
}

// leafSubLine is the LS+ (n > 0) or LS- line for an interest key.
func leafSubLine(key string, queue bool, n int) []byte {
	if n <= 0 {
		return []byte("LS- " + key + "\r\n")
	}
	if queue {
		return []byte("LS+ " + key + " " + strconv.Itoa(n) + "\r\n")
	}
	return []byte("LS+ " + key + "\r\n")
}

// Interest returns how many subscriptions match the literal subject:
// local ones (clients and in-process) and remote ones, the entries hubs
// announced (one per subject, or per queue group with its member
// count). A request to a subject with neither would go unanswered.
func (s *Server) Interest(subject string) (local, remote int) {
	if !validLiteral(subject) {
		return 0, 0
	}
	res := s.sl.match(subject)
	isLocal := s.isLocal(subject)
	count := func(sb *sub) {
		if sb.kind == subLeaf {
			if isLocal {
				return
			}
			remote += int(max(sb.weight.Load(), 1))
		} else {
			local++
		}
	}
	for _, sb := range res.psubs {
		count(sb)
	}
	for _, g := range res.qsubs {
		for _, sb := range g {
			count(sb)
		}
	}
	return local, remote
}

// noDelay turns off Nagle's algorithm on a connection, as package net
// does for every TCP connection: a message is written in one go and must
// leave at once, not wait for the ACK of the one before.
func noDelay(f *os.File) {
	if raw, err := f.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		})
	}
}

// randomID returns n random characters from [0-9A-Z].
func randomID(n int) string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// IsReserved reports whether subject starts with one of Options.Reserved.
func (s *Server) IsReserved(subject string) bool {
	for _, p := range s.o.Reserved {
		if strings.HasPrefix(subject, p) {
			return true
		}
	}
	return false
}

// isLocal reports whether subject starts with one of Options.Local.
func (s *Server) isLocal(subject string) bool {
	for _, p := range s.o.Local {
		if strings.HasPrefix(subject, p) {
			return true
		}
	}
	return false
}
