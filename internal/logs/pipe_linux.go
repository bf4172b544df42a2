//go:build linux

package logs

import (
	"fmt"
	"os"
	"syscall"
)

// fSetPipeSz is F_SETPIPE_SZ from <fcntl.h> (F_LINUX_SPECIFIC_BASE + 7);
// package syscall does not name it.
const fSetPipeSz = 1031

// SetPipeSize asks the kernel to give the pipe f belongs to a capacity of
// size bytes (rounded up to a power-of-two number of pages) and returns
// the capacity it got. A bigger pipe lets an app that prints in bursts
// run ahead of the daemon, with fewer wake-ups on both sides.
//
// An unprivileged process is capped by /proc/sys/fs/pipe-max-size (1 MiB
// by default), and once a user's pipes hold more than
// /proc/sys/fs/pipe-user-pages-soft pages (64 MiB by default) the call
// fails with EPERM: a caller should treat errors as harmless and keep the
// default 64 KiB pipe.
func SetPipeSize(f *os.File, size int) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("set pipe size: %w", err)
	}
	var got uintptr
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		got, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, uintptr(size))
	}); err != nil {
		return 0, fmt.Errorf("set pipe size: %w", err)
	}
	if errno != 0 {
		return 0, fmt.Errorf("set pipe size to %d: %w", size, errno)
	}
	return int(got), nil
}
