//go:build !linux

package socket

import "os"

// PeerUID cannot ask the kernel here; the socket's 0600 mode in a 0700
// directory is the protection, so the caller is taken to be the owner.
func PeerUID(c *os.File) (int, error) { return os.Getuid(), nil }

// PeerCred cannot ask the kernel here: the pid is unknown (0).
func PeerCred(c *os.File) (uid, pid int, err error) { return os.Getuid(), 0, nil }
