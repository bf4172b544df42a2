// Package procfs reads what the daemon needs to know about processes from
// /proc: parent, process group, state, CPU time, resident memory and start
// time. Reading /proc directly keeps `tend ls` free of forked programs
// (pm2 runs `ps` and pidusage) and costs a few microseconds per process.
package procfs

import (
	"errors"
	"time"
)

// Stat is one process's line of /proc/<pid>/stat, reduced to the fields tend
// uses.
type Stat struct {
	PID     int
	PPID    int
	PGRP    int
	Session int
	// State is the one-letter state: R, S, D, Z (zombie), T, ...
	State byte
	// CPU is the user plus system time the process has used.
	CPU time.Duration
	// StartTicks is the start time in clock ticks since boot; with the pid
	// it identifies a process even after its pid is reused.
	StartTicks uint64
	// RSS is the resident set size in bytes.
	RSS uint64
	// Threads is the number of threads.
	Threads int
}

// Zombie reports whether the process has exited and waits to be reaped.
func (s Stat) Zombie() bool { return s.State == 'Z' || s.State == 'X' }

// ErrUnsupported is returned where there is no /proc.
var ErrUnsupported = errors.New("process information is not available on this system")

// Tree returns the pids of root and of all its descendants found in procs.
func Tree(procs []Stat, root int) []int {
	children := make(map[int][]int, len(procs))
	for _, p := range procs {
		children[p.PPID] = append(children[p.PPID], p.PID)
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// Descendants returns the pids of the processes below root in procs (root
// excluded), as a set.
func Descendants(procs []Stat, root int) map[int]bool {
	tree := Tree(procs, root)
	out := make(map[int]bool, len(tree))
	for _, pid := range tree[1:] {
		out[pid] = true
	}
	return out
}
