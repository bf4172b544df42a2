package notify

import "golang.org/x/sys/unix"

// recvFlags makes descriptors a sender attaches close-on-exec at once.
const recvFlags = unix.MSG_CMSG_CLOEXEC

func passCred(fd int) error {
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
}

// sender reads the SCM_CREDENTIALS the kernel attached to a message; any
// file descriptors a sender passed along are closed.
func sender(oob []byte) (pid, uid int, ok bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, 0, false
	}
	for _, m := range msgs {
		if fds, err := unix.ParseUnixRights(&m); err == nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
			continue
		}
		if c, err := unix.ParseUnixCredentials(&m); err == nil {
			pid, uid, ok = int(c.Pid), int(c.Uid), true
		}
	}
	return pid, uid, ok
}
