package rawnet

import (
	"os"

	"golang.org/x/sys/unix"
)

// Queue returns how many connections wait in the accept queue of a
// listening TCP socket, and the queue's limit (the backlog). For a socket
// in LISTEN state, Linux reports them in TCP_INFO's unacked and sacked
// fields (tcp_get_info); ok is false for anything else (a unix socket).
func Queue(l *os.File) (n, limit int, ok bool) {
	var info *unix.TCPInfo
	err := control(l, func(fd int) error {
		var err error
		info, err = unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		return err
	})
	if err != nil || info == nil || info.State != tcpListen {
		return 0, 0, false
	}
	return int(info.Unacked), int(info.Sacked), true
}

// tcpListen is TCP_LISTEN of the kernel's tcp_states.h, the state of a
// listening socket in TCP_INFO.
const tcpListen = 10
