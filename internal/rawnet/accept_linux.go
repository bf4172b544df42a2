package rawnet

import "golang.org/x/sys/unix"

// accept takes a connection, non-blocking and close-on-exec from birth.
func accept(fd int) (int, error) {
	nfd, _, err := unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	return nfd, err
}
