package rawnet

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Steer makes the kernel pick, for each new connection to the SO_REUSEPORT
// group l belongs to, one of the group's first n sockets (at random),
// instead of hashing across all of them. Sockets join a group in the order
// they listen, so with slots created in order and removed from the top,
// "the first n" are slots 0..n-1.
//
// It is what makes scaling down drop-free: the kernel resets every
// connection still queued on a socket when it is closed, so before the top
// slot's socket closes, new connections are steered away from it while its
// instance empties its queue. A classic BPF program needs no privilege.
func Steer(l *os.File, n int) error {
	if n < 1 {
		return fmt.Errorf("steer to %d sockets", n)
	}
	const skfAdRandom = 0xfffff000 + 56 // SKF_AD_OFF + SKF_AD_RANDOM
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: skfAdRandom},
		{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: uint32(n)},
		{Code: unix.BPF_RET | unix.BPF_A},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	return control(l, func(fd int) error {
		return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog)
	})
}

// Unsteer removes the program Steer attached, so the kernel hashes across
// the whole group again.
func Unsteer(l *os.File) error {
	return control(l, func(fd int) error {
		err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_REUSEPORT_BPF, 0)
		if err == unix.ENOENT {
			return nil
		}
		return err
	})
}
