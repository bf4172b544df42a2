// Package socket finds, creates and dials the daemon's control socket,
// $TEND_HOME/tend.sock, and checks who is on the other end.
//
// The socket is the daemon's only door: it is created 0600 inside a 0700
// directory, and every connection's peer uid is checked (SO_PEERCRED), so
// another user cannot drive the daemon even if permissions were loosened.
//
// It works on raw file descriptors rather than through package net, whose
// cgo DNS resolver would make every default build of tend (CGO_ENABLED=1)
// a dynamically linked cgo binary: about 1.7 ms more for each command, and
// not the single static binary tend promises. Connections are *os.File
// values, which Go's poller serves like network connections (non-blocking
// reads, deadlines).
package socket

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Name is the socket's file name inside TEND_HOME.
const Name = "tend.sock"

// maxPath is the longest socket path the kernel accepts: sun_path is 108
// bytes on Linux (104 on macOS), one of which ends the string.
const maxPath = 107

// ErrPathTooLong is returned for a TEND_HOME that leaves no room for the
// socket name in a unix socket address.
var ErrPathTooLong = errors.New("path too long for a unix socket")

// Path returns the socket path inside home, or an error saying how to fix a
// home that is too long.
func Path(home string) (string, error) {
	p := filepath.Join(home, Name)
	if len(p) > maxPath {
		return "", fmt.Errorf("TEND_HOME %q gives a socket path of %d bytes, more than the %d a unix socket allows; set TEND_HOME to a shorter directory: %w", home, len(p), maxPath, ErrPathTooLong)
	}
	return p, nil
}

// EnsureHome creates home with mode 0700 if needed. An existing home must
// belong to the user running tend (a root daemon must not take orders from
// files another user controls) and must not be shared: a directory others
// may write to (like /tmp) is refused rather than changed. A home of the
// user's own with looser permissions is tightened to 0700, since it holds
// the socket, the state (environments, so secrets) and the logs.
func EnsureHome(home string) error {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fmt.Errorf("create TEND_HOME: %w", err)
	}
	fi, err := os.Stat(home)
	if err != nil {
		return fmt.Errorf("TEND_HOME: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("TEND_HOME %q is not a directory", home)
	}
	if uid, ok := ownerOf(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("TEND_HOME %q belongs to uid %d, not to uid %d who runs tend; use a directory of your own", home, uid, os.Geteuid())
	}
	if fi.Mode()&(os.ModeSticky|0o022) != 0 {
		return fmt.Errorf("TEND_HOME %q is writable by others (mode %v); use a private directory, such as ~/.tend", home, fi.Mode().Perm()|fi.Mode()&os.ModeSticky)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(home, 0o700); err != nil {
			return fmt.Errorf("restrict TEND_HOME to its owner: %w", err)
		}
	}
	return nil
}

func ownerOf(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// Listener accepts connections on a unix socket.
type Listener struct {
	f    *os.File
	path string
}

// Listen creates the socket at path. A socket file that nobody answers on
// is left over from a daemon that died, and is replaced; one that answers
// belongs to a running daemon, and Listen refuses to take it over. The
// caller must hold the daemon lock, so two daemons never race here.
func Listen(path string) (*Listener, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c, err := Dial(ctx, path); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: a daemon is already listening there", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	fd, err := newSocket()
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// The directory is already 0700; 0600 on the file keeps the socket
	// private even if someone loosens the directory later.
	if err := os.Chmod(path, 0o600); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("restrict socket: %w", err)
	}
	if err := syscall.Listen(fd, 128); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return &Listener{f: os.NewFile(uintptr(fd), path), path: path}, nil
}

// Accept waits for a connection. It returns os.ErrClosed once the listener
// is closed.
func (l *Listener) Accept() (*os.File, error) {
	rc, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		nfd, aerr = accept(int(fd))
		return !errors.Is(aerr, syscall.EAGAIN)
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, fmt.Errorf("accept: %w", aerr)
	}
	return os.NewFile(uintptr(nfd), l.path), nil
}

// Close removes the socket file and stops the listener: in that order, so
// that once connections are refused the file is gone too.
func (l *Listener) Close() error {
	_ = os.Remove(l.path)
	return l.f.Close()
}

// Dial connects to the socket at path.
func Dial(ctx context.Context, path string) (*os.File, error) {
	fd, err := newSocket()
	if err != nil {
		return nil, err
	}
	// Connecting to a unix socket completes at once or fails at once
	// (ECONNREFUSED, ENOENT), except when the daemon's backlog is full:
	// the socket stays blocking for the connect so that case waits.
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "dial", Path: path, Err: err}
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// newSocket returns a unix stream socket that no child process inherits.
func newSocket() (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	syscall.CloseOnExec(fd)
	return fd, nil
}
