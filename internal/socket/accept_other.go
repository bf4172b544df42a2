//go:build !linux

package socket

import "syscall"

// accept takes a connection as a non-blocking descriptor that no child
// process inherits (accept4 is Linux's; elsewhere, the same in steps).
func accept(fd int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	nfd, _, err := syscall.Accept(fd)
	if err != nil {
		return -1, err
	}
	syscall.CloseOnExec(nfd)
	if err := syscall.SetNonblock(nfd, true); err != nil {
		syscall.Close(nfd)
		return -1, err
	}
	return nfd, nil
}
