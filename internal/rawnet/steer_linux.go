package rawnet

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Steer makes the kernel pick, for each new connection to the SO_REUSEPORT
// group l belongs to, one of the group's sockets at the given indexes (at
// random), instead of hashing across all of them. A socket's index is its
// place in the group: sockets join in the order they listen, and when one
// closes, the last one takes its place; tend creates slots in order and
// removes them from the top, so index i is slot i.
//
// It is how the daemon keeps new connections off a socket nobody accepts
// on: the top slots while a scale-down empties them (the kernel resets
// whatever is still queued on a socket when it closes), and a slot whose
// process crashed, until its replacement is ready. A classic BPF program
// needs no privilege.
func Steer(l *os.File, indexes []int) error {
	n := len(indexes)
	if n < 1 || n > 2000 { // a classic BPF program has at most 4096 instructions
		return fmt.Errorf("steer to %d sockets", n)
	}
	const skfAdRandom = 0xfffff000 + 56 // SKF_AD_OFF + SKF_AD_RANDOM
	// A = random % n, then a jump table: A == i returns indexes[i].
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: skfAdRandom},
		{Code: unix.BPF_ALU | unix.BPF_MOD | unix.BPF_K, K: uint32(n)},
	}
	for i, idx := range indexes {
		// jeq #i, next (return), skip the return
		prog = append(prog,
			unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: uint32(i), Jt: 0, Jf: 1},
			unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: uint32(idx)})
	}
	prog = append(prog, unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: uint32(indexes[0])})
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
