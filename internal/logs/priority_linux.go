package logs

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// lowerPriority runs the calling goroutine, from now until it returns, on
// a thread of its own at the lowest CPU priority (nice 19; Linux sets nice
// per thread). Compressing rotated files is work that can wait; the app
// printing the lines, and the daemon reading them, cannot. The goroutine
// must end without unlocking: its thread then ends with it, and no other
// goroutine inherits the low priority.
func lowerPriority() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19)
}
