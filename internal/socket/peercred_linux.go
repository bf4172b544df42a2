package socket

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// PeerUID returns the uid of the process at the other end of c.
func PeerUID(c *os.File) (int, error) {
	uid, _, err := PeerCred(c)
	return uid, err
}

// PeerCred returns the uid and pid of the process at the other end of c,
// as the kernel recorded them when it connected.
func PeerCred(c *os.File) (uid, pid int, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, 0, err
	}
	if cerr != nil {
		return -1, 0, fmt.Errorf("peer credentials: %w", cerr)
	}
	return int(cred.Uid), int(cred.Pid), nil
}
