// Package proc starts the processes of instances and reaps every child of
// the daemon.
//
// The daemon is a child subreaper: when an app's process dies, its own
// children are re-parented to the daemon instead of init, so nothing an app
// started can outlive it unnoticed. The price is that the daemon must reap
// children it never started. One Reaper does all the waiting (wait4 on any
// pid after SIGCHLD) and hands each exit to whoever started that pid. No
// other code in the process may wait for children (no exec.Cmd.Wait), or it
// would steal exits from the Reaper.
package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/tend-pm/tend/internal/api"
)

// Cmd describes a process to start.
type Cmd struct {
	// Path is the program to execute; empty means Argv[0].
	Path string
	Argv []string
	Dir  string
	Env  []string
	// Files become the child's fds 0, 1, 2, 3...; a nil entry is opened on
	// /dev/null for 0-2.
	Files []*os.File
}

// Exit is how a process ended.
type Exit struct {
	PID    int
	Status syscall.WaitStatus
}

// Code returns the exit code, or -1 if a signal ended the process.
func (e Exit) Code() int {
	if e.Status.Signaled() {
		return -1
	}
	return e.Status.ExitStatus()
}

// Signal returns the signal that ended the process, or 0.
func (e Exit) Signal() syscall.Signal {
	if e.Status.Signaled() {
		return e.Status.Signal()
	}
	return 0
}

func (e Exit) String() string {
	if sig := e.Signal(); sig != 0 {
		return "killed by " + api.SignalName(sig)
	}
	return "exited with code " + strconv.Itoa(e.Code())
}

// Reaper starts processes and waits for all children of this process.
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]func(Exit)
	// onReap is called, outside any lock, after each round in which at
	// least one child was reaped; the supervisor uses it to notice that a
	// process group it is stopping has become empty.
	onReap func()
}

// NewReaper returns a Reaper. onReap may be nil.
func NewReaper(onReap func()) *Reaper {
	return &Reaper{waiters: make(map[int]func(Exit)), onReap: onReap}
}

// Start starts c in a new process group (pgid = pid) and calls onExit, in
// the Reaper's goroutine, when it ends. The registration happens before
// the Reaper can see the exit, however quickly the child dies.
func (r *Reaper) Start(c Cmd, onExit func(Exit)) (int, error) {
	if len(c.Argv) == 0 {
		return 0, errors.New("start: empty command")
	}
	files := make([]uintptr, len(c.Files))
	var devnull *os.File
	for i, f := range c.Files {
		if f == nil {
			if devnull == nil {
				var err error
				if devnull, err = os.OpenFile(os.DevNull, os.O_RDWR, 0); err != nil {
					return 0, fmt.Errorf("start %s: %w", c.Argv[0], err)
				}
				defer devnull.Close()
			}
			f = devnull
		}
		files[i] = f.Fd()
	}
	attr := &syscall.ProcAttr{
		Dir:   c.Dir,
		Env:   c.Env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	path := c.Path
	if path == "" {
		path = c.Argv[0]
	}
	pid, err := syscall.ForkExec(path, c.Argv, attr)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", c.Argv[0], err)
	}
	r.waiters[pid] = onExit
	return pid, nil
}

// Run reaps children until ctx is done.
func (r *Reaper) Run(ctx context.Context) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGCHLD)
	defer signal.Stop(ch)
	for {
		r.reapAll()
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// reapAll reaps every child that has exited. SIGCHLD signals coalesce, so
// one signal may stand for many exits: keep waiting until none is left.
func (r *Reaper) reapAll() {
	type done struct {
		fn   func(Exit)
		exit Exit
	}
	var exits []done
	reaped := false
	r.mu.Lock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			break
		}
		reaped = true
		if fn, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			exits = append(exits, done{fn, Exit{PID: pid, Status: ws}})
		}
	}
	r.mu.Unlock()
	for _, d := range exits {
		d.fn(d.exit)
	}
	if reaped && r.onReap != nil {
		r.onReap()
	}
}

// ErrReaped means the process was already reaped: its pid may belong to
// someone else now, so it was not signalled.
var ErrReaped = errors.New("process already ended")

// Signal sends sig to pid, a process started by this Reaper, but only if it
// has not been reaped: until then its pid cannot be reused, so the signal
// cannot reach a stranger.
func (r *Reaper) Signal(pid int, sig syscall.Signal) error {
	return r.signal(pid, pid, sig)
}

// SignalGroup sends sig to the process group led by pid (started by this
// Reaper, so pgid = pid), under the same guarantee: while the leader is not
// reaped, the group id cannot be reused either.
func (r *Reaper) SignalGroup(pid int, sig syscall.Signal) error {
	return r.signal(pid, -pid, sig)
}

func (r *Reaper) signal(pid, target int, sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiters[pid]; !ok {
		return ErrReaped
	}
	if err := syscall.Kill(target, sig); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("signal %d: %w", target, err)
	}
	return nil
}

// Signal sends sig to the process pid, which the caller has just checked to
// be its own. A process that no longer exists is not an error.
func Signal(pid int, sig syscall.Signal) error {
	if pid <= 1 {
		return fmt.Errorf("refusing to signal process %d", pid)
	}
	if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	return nil
}
