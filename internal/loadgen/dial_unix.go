//go:build unix

package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// DialTCP returns a DialFunc that opens TCP connections to addr, an IP
// address and port such as "127.0.0.1:3000" or "[::1]:3000"; "localhost"
// and an empty host stand for 127.0.0.1. It resolves no names, and its
// connections are *os.File, on raw sockets, without package net.
func DialTCP(addr string) (DialFunc, error) {
	ap, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (Conn, error) {
		f, err := dialTCP(ctx, ap)
		if err != nil {
			// Not a nil *os.File in a non-nil Conn.
			return nil, err
		}
		return f, nil
	}, nil
}

func parseAddr(addr string) (netip.AddrPort, error) {
	s := addr
	if rest, ok := strings.CutPrefix(s, "localhost:"); ok {
		s = "127.0.0.1:" + rest
	} else if strings.HasPrefix(s, ":") {
		s = "127.0.0.1" + s
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("loadgen: address %q: want IP:port: %w", addr, err)
	}
	if ap.Addr().Zone() != "" {
		return ap, fmt.Errorf("loadgen: address %q: zones are not supported", addr)
	}
	if ap.Port() == 0 {
		return ap, fmt.Errorf("loadgen: address %q: no port", addr)
	}
	return ap, nil
}

// dialTCP connects a non-blocking socket and waits for the connection
// through the runtime's poller, as package net does.
func dialTCP(ctx context.Context, ap netip.AddrPort) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := ap.String()
	fail := func(op string, err error) error { return &os.PathError{Op: op, Path: name, Err: err} }
	family := syscall.AF_INET
	var sa syscall.Sockaddr
	if a := ap.Addr().Unmap(); a.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	} else {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	}
	// Hold ForkLock so that no child started meanwhile inherits the socket.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM, syscall.IPPROTO_TCP)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fail("socket", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fail("socket", err)
	}
	// Requests are small and written whole; send them at once.
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	err = syscall.Connect(fd, sa)
	if err != nil && !errors.Is(err, syscall.EINPROGRESS) && !errors.Is(err, syscall.EINTR) {
		syscall.Close(fd)
		return nil, fail("connect", err)
	}
	// A non-blocking descriptor: os.NewFile registers it with the poller.
	f := os.NewFile(uintptr(fd), "tcp:"+name)
	if err == nil {
		return f, nil
	}
	if d, ok := ctx.Deadline(); ok {
		if err := f.SetWriteDeadline(d); err != nil {
			f.Close()
			return nil, fail("connect", err)
		}
	}
	unhook := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(longAgo) })
	rc, err := f.SyscallConn()
	if err != nil {
		unhook()
		f.Close()
		return nil, fail("connect", err)
	}
	var connErr error
	waitErr := rc.Write(func(fd uintptr) bool {
		// Writable: the connect has ended, one way or the other.
		v, err := syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err != nil {
			connErr = err
			return true
		}
		switch e := syscall.Errno(v); e {
		case 0:
			// Connected, unless the wakeup was spurious.
			_, err := syscall.Getpeername(int(fd))
			return err == nil
		case syscall.EINPROGRESS, syscall.EALREADY, syscall.EINTR:
			return false
		default:
			connErr = e
			return true
		}
	})
	if hookRan := !unhook(); hookRan || ctx.Err() != nil {
		// The hook ran only once ctx was done; either way, ctx is done.
		f.Close()
		return nil, fail("connect", ctx.Err())
	}
	if waitErr == nil {
		waitErr = connErr
	}
	if waitErr != nil {
		f.Close()
		return nil, fail("connect", waitErr)
	}
	if err := f.SetWriteDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fail("connect", err)
	}
	return f, nil
}
