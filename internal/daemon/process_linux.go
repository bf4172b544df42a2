package daemon

import (
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-pm/tend/internal/procfs"
)

// closeInherited closes the file descriptors the daemon inherited from
// whatever ran the `tend` command that started it (a `flock` lock, a make
// jobserver pipe): held by the daemon, and so by every app, they would
// keep a lock taken or a pipe open forever. Descriptors Go opens itself
// are close-on-exec, and inherited ones cannot be (they crossed an exec),
// which tells them apart. keep, the readiness pipe, stays open but is made
// close-on-exec, so no app inherits it.
func closeInherited(keep *os.File) {
	keepFD := -1
	if keep != nil {
		keepFD = int(keep.Fd())
		syscall.CloseOnExec(keepFD)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 || fd == keepFD {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && flags&unix.FD_CLOEXEC == 0 {
			_ = unix.Close(fd)
		}
	}
}

// resetIgnoredSignals makes the job-control signals the daemon may have
// inherited as ignored (a shell's background job) take their default
// action again in the apps. An ignored disposition survives exec, a
// handled one does not; Go leaves these three untouched unless asked to
// deliver them, so the daemon asks (SIGINT, SIGQUIT and SIGHUP it handles
// already). The daemon has no terminal, so it loses nothing by it.
func resetIgnoredSignals() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU)
}

// sweep kills whatever descendants the daemon still has when it exits: a
// process that escaped every app (it cleared its environment and left its
// process group) must not outlive the daemon that started it.
func sweep(log *slog.Logger) {
	procs, err := procfs.Scan()
	if err != nil {
		return
	}
	left := procfs.Descendants(procs, os.Getpid())
	if len(left) == 0 {
		return
	}
	for pid := range left {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	log.Warn("killed processes left behind by apps", "count", len(left))
	// Reap them, so none stays a zombie with init.
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		var ws syscall.WaitStatus
		if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); err != nil || pid == 0 {
			if err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
