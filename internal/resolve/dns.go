package resolve

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"

	"github.com/tend-pm/tend/internal/rawnet"
)

// maxUDP is the answer size offered with EDNS0: 1232 bytes cross any
// path without fragmentation (DNS flag day 2020). A bigger answer comes
// truncated, and is asked for again over TCP.
const maxUDP = 1232

// serverError is a nameserver's refusal or failure (SERVFAIL, REFUSED...):
// another server may do better, and so may another name of the search
// list, unlike a server that does not answer at all.
type serverError struct {
	server netip.Addr
	rcode  dnsmessage.RCode
}

func (e serverError) Error() string {
	what := map[dnsmessage.RCode]string{
		dnsmessage.RCodeFormatError:    "format error",
		dnsmessage.RCodeServerFailure:  "server failure",
		dnsmessage.RCodeNotImplemented: "not implemented",
		dnsmessage.RCodeRefused:        "refused",
	}[e.rcode]
	if what == "" {
		what = "error code " + strconv.Itoa(int(e.rcode))
	}
	return fmt.Sprintf("nameserver %s: %s", e.server, what)
}

// lookupName asks the servers for fqdn's addresses: round after round
// (attempts), each server in turn until one answers. The timeout of a
// try is glibc's: the configured one in the first round, then doubled at
// each round and shared among the servers.
func (r *Resolver) lookupName(ctx context.Context, c config, fqdn string) ([]netip.Addr, error) {
	name, err := dnsmessage.NewName(fqdn)
	if err != nil {
		return nil, ErrNotFound // too long for DNS: no such name there
	}
	n := len(c.servers)
	start := 0
	if c.rotate {
		start = rand.IntN(n)
	}
	var lastErr error
	for round := range c.attempts {
		timeout := c.timeout
		if round > 0 {
			timeout = (c.timeout << round) / time.Duration(n)
		}
		for i := range n {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			addrs, err := r.exchange(ctx, c.servers[(start+i)%n], name, timeout)
			if err == nil || errors.Is(err, ErrNotFound) || ctxDone(err) {
				return addrs, err
			}
			lastErr = err
		}
	}
	return nil, lastErr
}

func ctxDone(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// exchange asks server for name's A and AAAA records at once, on one
// socket as glibc does, and waits for both answers.
func (r *Resolver) exchange(ctx context.Context, server netip.Addr, name dnsmessage.Name, timeout time.Duration) ([]netip.Addr, error) {
	deadline := time.Now().Add(timeout)
	ctxDeadline, ok := ctx.Deadline()
	if ok && ctxDeadline.Before(deadline) {
		deadline = ctxDeadline
	}
	fail := func(err error) error {
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, os.ErrDeadlineExceeded) && deadline.Equal(ctxDeadline):
			return context.DeadlineExceeded
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("nameserver %s: no answer within %v", server, timeout)
		}
		return fmt.Errorf("nameserver %s: %w", server, err)
	}
	ap := netip.AddrPortFrom(server, r.port(server))
	f, err := dialUDP(ap)
	if err != nil {
		return nil, fail(err)
	}
	defer f.Close()
	_ = f.SetDeadline(deadline)
	// Cancelling ctx ends the wait at once rather than at the deadline.
	stop := context.AfterFunc(ctx, func() { _ = f.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	// Random IDs (and the kernel's random source port) are what keeps
	// an off-path attacker from forging an answer.
	pending := map[uint16]dnsmessage.Type{}
	for _, t := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
		id := uint16(rand.Uint32())
		for pending[id] != 0 {
			id++
		}
		q, err := query(id, name, t)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(q[2:]); err != nil {
			return nil, fail(err)
		}
		pending[id] = t
	}

	var v4, v6 []netip.Addr
	var failed error
	buf := make([]byte, 64<<10) // whatever the server sends fits
	for len(pending) > 0 {
		n, err := f.Read(buf)
		if errors.Is(err, io.EOF) {
			continue // an empty datagram
		}
		if err != nil {
			if len(v4)+len(v6) > 0 {
				break // some servers drop AAAA queries; the A answer is enough
			}
			// ECONNREFUSED here is the ICMP error of a server with
			// nothing on port 53: the next server is tried at once.
			return nil, fail(err)
		}
		if n < 2 {
			continue
		}
		id := binary.BigEndian.Uint16(buf)
		t, ok := pending[id]
		if !ok {
			continue // stale, or forged: not an answer to these queries
		}
		h, addrs, ok := parseAnswer(buf[:n], id, name, t)
		if !ok {
			continue
		}
		delete(pending, id)
		if h.Truncated {
			if h, addrs, err = r.exchangeTCP(ctx, ap, name, t, deadline); err != nil {
				return nil, fail(err)
			}
		}
		switch h.RCode {
		case dnsmessage.RCodeSuccess:
			if t == dnsmessage.TypeA {
				v4 = addrs
			} else {
				v6 = addrs
			}
		case dnsmessage.RCodeNameError:
			// NXDOMAIN: no such name; the other answer will say the same.
		default:
			failed = serverError{server, h.RCode}
		}
	}
	switch {
	case len(v4)+len(v6) > 0:
		return append(v4, v6...), nil
	case failed != nil:
		return nil, failed
	}
	return nil, ErrNotFound
}

// exchangeTCP asks again over TCP, for an answer too big for a datagram.
func (r *Resolver) exchangeTCP(ctx context.Context, ap netip.AddrPort, name dnsmessage.Name, t dnsmessage.Type, deadline time.Time) (dnsmessage.Header, []netip.Addr, error) {
	var h dnsmessage.Header
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	f, err := rawnet.Dial(ctx, rawnet.Addr{Host: ap.Addr().String(), Port: int(ap.Port())})
	if err != nil {
		return h, nil, err
	}
	defer f.Close()
	_ = f.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = f.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	id := uint16(rand.Uint32())
	q, err := query(id, name, t)
	if err != nil {
		return h, nil, err
	}
	binary.BigEndian.PutUint16(q, uint16(len(q)-2))
	if _, err := f.Write(q); err != nil {
		return h, nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(f, l[:]); err != nil {
		return h, nil, fmt.Errorf("over TCP: %w", err)
	}
	msg := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(f, msg); err != nil {
		return h, nil, fmt.Errorf("over TCP: %w", err)
	}
	h, addrs, ok := parseAnswer(msg, id, name, t)
	if !ok || h.Truncated {
		return h, nil, errors.New("over TCP: not an answer to the query")
	}
	return h, addrs, nil
}

// query builds a question for name's records of type t, with two bytes
// of room in front for the length that prefixes it over TCP.
func query(id uint16, name dnsmessage.Name, t dnsmessage.Type) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 2, 64), dnsmessage.Header{ID: id, RecursionDesired: true})
	var opt dnsmessage.ResourceHeader
	err := errors.Join(
		b.StartQuestions(),
		b.Question(dnsmessage.Question{Name: name, Type: t, Class: dnsmessage.ClassINET}),
		opt.SetEDNS0(maxUDP, dnsmessage.RCodeSuccess, false),
		b.StartAdditionals(),
		b.OPTResource(opt, dnsmessage.OPTResource{}),
	)
	if err != nil {
		return nil, fmt.Errorf("build the query for %s: %w", name, err)
	}
	return b.Finish()
}

// parseAnswer reads msg as the answer to query id about name's records
// of type t; ok is false when it is not. The addresses are those of
// type t in the answer section, whatever their owner: a server resolving
// an alias answers with the CNAME chain and the addresses of its end.
func parseAnswer(msg []byte, id uint16, name dnsmessage.Name, t dnsmessage.Type) (h dnsmessage.Header, addrs []netip.Addr, ok bool) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.ID != id || !h.Response {
		return h, nil, false
	}
	q, err := p.Question()
	if err != nil || q.Type != t || q.Class != dnsmessage.ClassINET || !strings.EqualFold(q.Name.String(), name.String()) {
		return h, nil, false
	}
	if h.Truncated || h.RCode != dnsmessage.RCodeSuccess {
		return h, nil, true
	}
	if err := p.SkipAllQuestions(); err != nil {
		return h, nil, false
	}
	for {
		rh, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			return h, addrs, true
		}
		if err != nil {
			return h, nil, false
		}
		switch {
		case rh.Class != dnsmessage.ClassINET || rh.Type != t:
			err = p.SkipAnswer()
		case t == dnsmessage.TypeA:
			var a dnsmessage.AResource
			if a, err = p.AResource(); err == nil {
				addrs = append(addrs, netip.AddrFrom4(a.A))
			}
		default:
			var a dnsmessage.AAAAResource
			if a, err = p.AAAAResource(); err == nil {
				addrs = append(addrs, netip.AddrFrom16(a.AAAA))
			}
		}
		if err != nil {
			return h, nil, false
		}
	}
}

// dialUDP makes a non-blocking UDP socket, on Go's poller so that
// deadlines work, connected to the server: the kernel then drops any
// datagram that does not come from the server's address and port (the
// check of the answer's source), and reports a server that is not there
// (ICMP port unreachable) as ECONNREFUSED instead of a timeout.
func dialUDP(ap netip.AddrPort) (*os.File, error) {
	family := unix.AF_INET
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	if ap.Addr().Is6() {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	// Under ForkLock, so that a child forked meanwhile does not inherit
	// the socket before it is close-on-exec.
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, unix.SOCK_DGRAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "dns "+ap.String()), nil
}

// port is the nameserver's port: 53 but in tests.
func (r *Resolver) port(server netip.Addr) uint16 {
	if p, ok := r.ports[server]; ok {
		return uint16(p)
	}
	return 53
}
