//go:build !linux

package notify

// passCred: only Linux attaches the sender's credentials to datagrams;
// elsewhere notify messages are not accepted (readiness then comes from
// probes, POST /v1/notify or listen_timeout).
func passCred(fd int) error { return nil }

func sender(oob []byte) (pid, uid int, ok bool) { return 0, 0, false }

const recvFlags = 0
