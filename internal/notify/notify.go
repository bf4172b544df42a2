// Package notify receives sd_notify messages from instances: the
// NOTIFY_SOCKET protocol of systemd (READY=1, STATUS=..., STOPPING=1,
// WATCHDOG=1), so a program written for systemd's Type=notify services
// tells tend when it is ready without a line of tend-specific code.
//
// One datagram socket serves the whole daemon. The sender is known from
// the kernel, not from the message: SO_PASSCRED makes the kernel attach
// every sender's pid and uid, which a process cannot forge.
package notify

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Name is the socket's file name inside TEND_HOME.
const Name = "notify.sock"

// Handler receives one message from process pid.
type Handler func(pid int, msg string)

// MaxMessage is the largest message taken, as systemd's (PIPE_BUF). A
// longer datagram is dropped whole, with a line in the log: cut short, its
// last line could say something else than what was sent.
const MaxMessage = 4096

// Listener is the notify socket.
type Listener struct {
	f    *os.File
	path string
	uid  int
	// Log hears of the messages dropped (nil: slog.Default()). Set it
	// before Serve.
	Log *slog.Logger
}

// Listen creates the socket at path (replacing a stale file) and accepts
// messages only from uid (and root).
func Listen(path string, uid int) (*Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	fail := func(err error) (*Listener, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	if err := passCred(fd); err != nil {
		return fail(err)
	}
	// A datagram larger than this is not a notify message.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 256<<10)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return fail(err)
	}
	// Instances must be able to send: they run as the same user, and the
	// directory (TEND_HOME, 0700) keeps everyone else out.
	if err := os.Chmod(path, 0o600); err != nil {
		return fail(err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fail(err)
	}
	return &Listener{f: os.NewFile(uintptr(fd), path), path: path, uid: uid}, nil
}

// Path is where the socket is, for NOTIFY_SOCKET.
func (l *Listener) Path() string { return l.path }

// Serve reads messages until Close, calling h for each one from a process
// of the allowed user.
func (l *Listener) Serve(h Handler) {
	raw, err := l.f.SyscallConn()
	if err != nil {
		return
	}
	log := l.Log
	if log == nil {
		log = slog.Default()
	}
	buf := make([]byte, MaxMessage)
	oob := make([]byte, unix.CmsgSpace(64))
	for {
		var n, oobn, flags int
		var rerr error
		err := raw.Read(func(fd uintptr) bool {
			// MSG_TRUNC: n is the datagram's whole length, even when
			// longer than buf.
			n, oobn, flags, _, rerr = unix.Recvmsg(int(fd), buf, oob, recvFlags|unix.MSG_TRUNC)
			return !errors.Is(rerr, unix.EAGAIN)
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			continue
		}
		pid, uid, ok := sender(oob[:oobn])
		if !ok || (uid != l.uid && uid != 0) {
			continue
		}
		if flags&unix.MSG_TRUNC != 0 || n > len(buf) {
			log.Warn("notify: message dropped: longer than the most a message may be", "pid", pid, "bytes", n, "max", len(buf))
			continue
		}
		h(pid, string(buf[:n]))
	}
}

// Close stops Serve and removes the socket file.
func (l *Listener) Close() error {
	_ = os.Remove(l.path)
	return l.f.Close()
}
