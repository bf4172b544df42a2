package socket

import "syscall"

// accept takes a connection as a non-blocking descriptor that no child
// process inherits.
func accept(fd int) (int, error) {
	nfd, _, err := syscall.Accept4(fd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
	return nfd, err
}
