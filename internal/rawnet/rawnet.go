// Package rawnet binds, accepts and dials TCP and unix stream sockets on
// raw file descriptors: the apps' ports that the daemon holds, the proxy
// in front of instances, readiness probes and `tend verify`.
//
// It exists for the same reason as package socket: package net would make
// every default build of tend a dynamically linked cgo binary (its DNS
// resolver), about 1.7 ms more for every command. Nothing here resolves
// names: an address is a literal IP, "localhost", or a path.
//
// Listening sockets are created blocking and close-on-exec. They are handed
// to instances as inherited descriptors, and the O_NONBLOCK flag is shared
// by every copy of a socket: a runtime that reads the flag (Python's socket
// module does) must find the socket as systemd would hand it over.
package rawnet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Addr is where an app listens: a TCP address (an empty Host means every
// interface) or a unix socket path.
type Addr struct {
	Host string // literal IP; "" is every interface
	Port int
	Path string // set for a unix socket
}

// Unix reports whether a is a unix socket path.
func (a Addr) Unix() bool { return a.Path != "" }

// String is the canonical form, which ParseAddr reads back: "host:port",
// ":port" for every interface, "[v6]:port", or the path.
func (a Addr) String() string {
	if a.Unix() {
		return a.Path
	}
	p := strconv.Itoa(a.Port)
	switch {
	case a.Host == "":
		return ":" + p
	case strings.Contains(a.Host, ":"):
		return "[" + a.Host + "]:" + p
	}
	return a.Host + ":" + p
}

// Loopback returns the address a client on this machine dials to reach a:
// every-interface and unspecified hosts become 127.0.0.1 ([::1] for "::"
// bound v6-only is not a case tend creates).
func (a Addr) Loopback() Addr {
	if a.Unix() {
		return a
	}
	if a.Host == "" || a.Host == "0.0.0.0" || a.Host == "::" {
		return Addr{Host: "127.0.0.1", Port: a.Port}
	}
	return a
}

// ParseAddr reads "3000", ":3000", "127.0.0.1:3000", "[::1]:3000",
// "localhost:3000", "/path/to.sock" or "unix:/path/to.sock". Host names
// other than localhost are refused: resolving them would need DNS, and a
// listening address should not depend on it anyway.
func ParseAddr(s string) (Addr, error) {
	bad := func(why string) (Addr, error) {
		return Addr{}, fmt.Errorf("address %q: %s", s, why)
	}
	if p, ok := strings.CutPrefix(s, "unix:"); ok || strings.HasPrefix(s, "/") {
		if !ok {
			p = s
		}
		if !filepath.IsAbs(p) {
			return bad("a unix socket path must be absolute")
		}
		if len(p) > 107 {
			return bad("a unix socket path must be at most 107 bytes")
		}
		return Addr{Path: filepath.Clean(p)}, nil
	}
	host, port := "", s
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i+1:]
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return bad("the port must be a number from 1 to 65535")
	}
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return bad("an IPv6 address must be written in brackets, as [::1]:3000")
		}
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		return bad("an IPv6 address must be written in brackets, as [::1]:3000")
	}
	switch host {
	case "", "*":
		return Addr{Port: n}, nil
	case "localhost":
		return Addr{Host: "127.0.0.1", Port: n}, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return bad("the host must be an IP address, localhost, or empty for every interface")
	}
	if ip.Zone() != "" {
		return bad("an IPv6 zone (%eth0) is not supported")
	}
	return Addr{Host: ip.Unmap().String(), Port: n}, nil
}

// sockaddr returns the address for bind or connect and its family.
func sockaddr(a Addr) (unix.Sockaddr, int, error) {
	if a.Unix() {
		return &unix.SockaddrUnix{Name: a.Path}, unix.AF_UNIX, nil
	}
	if a.Host == "" {
		return &unix.SockaddrInet6{Port: a.Port}, unix.AF_INET6, nil
	}
	ip, err := netip.ParseAddr(a.Host)
	if err != nil {
		return nil, 0, fmt.Errorf("address %q: %w", a, err)
	}
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: a.Port, Addr: ip.As4()}, unix.AF_INET, nil
	}
	return &unix.SockaddrInet6{Port: a.Port, Addr: ip.As16()}, unix.AF_INET6, nil
}

// socket returns a close-on-exec stream socket of family.
func socket(family int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := unix.Socket(family, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

// ListenOptions tune Listen.
type ListenOptions struct {
	// ReusePort joins the SO_REUSEPORT group of the address, so several
	// sockets (one per slot) share one port and the kernel spreads new
	// connections across them.
	ReusePort bool
	Backlog   int // default 1024
	// NonBlocking puts the socket on Go's poller, for a socket only the
	// daemon accepts on (the proxy's); see AcceptPolled.
	NonBlocking bool
}

// Listen binds a and listens. An every-interface address is bound
// dual-stack ([::] accepting IPv4 too), falling back to 0.0.0.0 where the
// machine has no IPv6, so it matches what Node.js and Go servers do with
// listen(port). A unix socket file left by a dead process is replaced;
// one that answers is refused.
func Listen(a Addr, o ListenOptions) (*os.File, error) {
	f, err := listen(a, o)
	if err != nil && !a.Unix() && a.Host == "" && errors.Is(err, unix.EAFNOSUPPORT) {
		f, err = listen(Addr{Host: "0.0.0.0", Port: a.Port}, o)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", a, err)
	}
	return f, nil
}

func listen(a Addr, o ListenOptions) (*os.File, error) {
	sa, family, err := sockaddr(a)
	if err != nil {
		return nil, err
	}
	if a.Unix() {
		if err := removeStale(a); err != nil {
			return nil, err
		}
	}
	fd, err := socket(family)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*os.File, error) {
		unix.Close(fd)
		return nil, err
	}
	if !a.Unix() {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fail(err)
		}
		if family == unix.AF_INET6 && a.Host == "" {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
				return fail(err)
			}
		}
	}
	if o.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail(err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail(err)
	}
	backlog := o.Backlog
	if backlog <= 0 {
		backlog = 1024
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fail(err)
	}
	if o.NonBlocking {
		if err := unix.SetNonblock(fd, true); err != nil {
			return fail(err)
		}
	}
	return os.NewFile(uintptr(fd), a.String()), nil
}

// removeStale removes a unix socket file nobody accepts on.
func removeStale(a Addr) error {
	fi, err := os.Lstat(a.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", a.Path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := Dial(ctx, a)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: something is already listening there: %w", a.Path, unix.EADDRINUSE)
	}
	if !errors.Is(err, unix.ECONNREFUSED) {
		// A full backlog, say: someone is there. Only a refusal proves
		// the file is left from a dead process.
		return fmt.Errorf("%s: in use (%w): %w", a.Path, err, unix.EADDRINUSE)
	}
	return os.Remove(a.Path)
}

// LocalPort returns the TCP port a socket is bound to.
func LocalPort(f *os.File) (int, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var sa unix.Sockaddr
	var serr error
	if err := raw.Control(func(fd uintptr) { sa, serr = unix.Getsockname(int(fd)) }); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return sa.Port, nil
	case *unix.SockaddrInet6:
		return sa.Port, nil
	}
	return 0, errors.New("not a TCP socket")
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on right
// now, for an instance's private port. The kernel picks it, so it comes
// from the ephemeral range like any outgoing connection's.
func FreePort() (int, error) {
	f, err := Listen(Addr{Host: "127.0.0.1"}, ListenOptions{Backlog: 1})
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return LocalPort(f)
}

// PrivatePort returns a TCP port on 127.0.0.1 that nothing listens on,
// for an instance's private port in proxy mode. It is picked below the
// kernel's ephemeral range (ip_local_port_range), where outgoing
// connections (the proxy's own among them) take their ports, so that the
// port is still free when the instance binds it a moment later.
func PrivatePort() (int, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const first = 10000
	if low-first >= 1000 {
		for range 50 {
			p := first + rand.IntN(low-first)
			f, err := Listen(Addr{Host: "127.0.0.1", Port: p}, ListenOptions{Backlog: 1})
			if err == nil {
				f.Close()
				return p, nil
			}
		}
	}
	return FreePort()
}

// Dial connects to a. The connection is non-blocking and served by Go's
// poller, so deadlines work on it; ctx bounds the connect.
func Dial(ctx context.Context, a Addr) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sa, family, err := sockaddr(a)
	if err != nil {
		return nil, err
	}
	if !a.Unix() && a.Host == "" {
		sa, family, _ = sockaddr(a.Loopback())
	}
	fd, err := socket(family)
	if err != nil {
		return nil, &os.PathError{Op: "dial", Path: a.String(), Err: err}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if family != unix.AF_UNIX {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	err = unix.Connect(fd, sa)
	f := os.NewFile(uintptr(fd), a.String())
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, unix.EINPROGRESS), errors.Is(err, unix.EAGAIN):
	default:
		f.Close()
		return nil, &os.PathError{Op: "dial", Path: a.String(), Err: err}
	}
	if d, ok := ctx.Deadline(); ok {
		_ = f.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	var soerr int
	var gerr error
	werr := raw.Write(func(fd uintptr) bool {
		soerr, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		return gerr != nil || soerr != 0 || connected(int(fd))
	})
	if werr == nil && gerr != nil {
		werr = gerr
	}
	if werr == nil && soerr != 0 {
		werr = unix.Errno(soerr)
	}
	if werr != nil {
		f.Close()
		if ctx.Err() != nil {
			werr = ctx.Err()
		}
		return nil, &os.PathError{Op: "dial", Path: a.String(), Err: werr}
	}
	_ = f.SetWriteDeadline(time.Time{})
	return f, nil
}

// connected reports whether a connecting socket has completed: the poller
// may wake a writer before the handshake ends.
func connected(fd int) bool {
	_, err := unix.Getpeername(fd)
	return err == nil
}

// Accept waits for a connection on a blocking listening socket made by
// Listen, without changing its blocking mode (instances share it): it
// polls for readability, then accepts. It is for the daemon draining a
// socket no instance accepts on any more: were another process accepting
// too, it could take the connection between the poll and the accept, and
// the accept would block. The connection is non-blocking and close-on-exec.
// ctx ends the wait.
func Accept(ctx context.Context, l *os.File) (*os.File, error) {
	raw, err := l.SyscallConn()
	if err != nil {
		return nil, err
	}
	for {
		if err := waitReadable(ctx, raw); err != nil {
			return nil, err
		}
		var nfd int
		var aerr error
		if err := raw.Control(func(fd uintptr) { nfd, aerr = accept(int(fd)) }); err != nil {
			return nil, err
		}
		if aerr == nil {
			return os.NewFile(uintptr(nfd), "conn"), nil
		}
		if !errors.Is(aerr, unix.EAGAIN) && !errors.Is(aerr, unix.EINTR) && !errors.Is(aerr, unix.ECONNABORTED) {
			return nil, fmt.Errorf("accept: %w", aerr)
		}
	}
}

// waitReadable polls the socket for up to 100 ms at a time so that ctx is
// noticed; a blocking listener cannot use Go's poller.
func waitReadable(ctx context.Context, raw syscall.RawConn) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var n int
		var perr error
		if err := raw.Control(func(fd uintptr) {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, perr = unix.Poll(pfd, 100)
		}); err != nil {
			return err
		}
		if perr != nil && !errors.Is(perr, unix.EINTR) {
			return perr
		}
		if n > 0 {
			return nil
		}
	}
}

// AcceptPolled waits for a connection on a socket made with NonBlocking,
// through Go's poller. It returns os.ErrClosed once l is closed.
func AcceptPolled(l *os.File) (*os.File, error) {
	raw, err := l.SyscallConn()
	if err != nil {
		return nil, err
	}
	for {
		var nfd int
		var aerr error
		err := raw.Read(func(fd uintptr) bool {
			nfd, aerr = accept(int(fd))
			return !errors.Is(aerr, unix.EAGAIN)
		})
		if err != nil {
			return nil, err
		}
		if aerr == nil {
			return os.NewFile(uintptr(nfd), "conn"), nil
		}
		if !errors.Is(aerr, unix.EINTR) && !errors.Is(aerr, unix.ECONNABORTED) {
			return nil, fmt.Errorf("accept: %w", aerr)
		}
	}
}

// Pending reports whether a listening socket has a connection waiting.
func Pending(l *os.File) bool {
	raw, err := l.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	_ = raw.Control(func(fd uintptr) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, _ = unix.Poll(pfd, 0)
	})
	return n > 0
}

// CloseWrite shuts down the sending side of a connection (a half close),
// so the peer reads EOF while the other direction keeps flowing.
func CloseWrite(c *os.File) error {
	return control(c, func(fd int) error { return unix.Shutdown(fd, unix.SHUT_WR) })
}

// Endpoints returns the remote and local addresses of a TCP connection as
// IP and port, for the PROXY protocol header. ok is false for anything
// but TCP.
func Endpoints(c *os.File) (remote, local netip.AddrPort, ok bool) {
	var rsa, lsa unix.Sockaddr
	if err := control(c, func(fd int) error {
		var err error
		if rsa, err = unix.Getpeername(fd); err != nil {
			return err
		}
		lsa, err = unix.Getsockname(fd)
		return err
	}); err != nil {
		return remote, local, false
	}
	conv := func(sa unix.Sockaddr) (netip.AddrPort, bool) {
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), true
		case *unix.SockaddrInet6:
			return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)), true
		}
		return netip.AddrPort{}, false
	}
	remote, ok1 := conv(rsa)
	local, ok2 := conv(lsa)
	return remote, local, ok1 && ok2
}

// control runs fn on the descriptor of f.
func control(f *os.File, fn func(fd int) error) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
