package sample

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/procfs"
)

func TestRing(t *testing.T) {
	r := NewRing(3)
	for i := range 5 {
		r.Add(Point{T: int64(i)})
	}
	got := r.Last(10, time.Time{})
	if r.Len() != 3 || len(got) != 3 || got[0].T != 2 || got[2].T != 4 {
		t.Errorf("after 5 points in a ring of 3: %+v; want 2, 3, 4", got)
	}
	if got := r.Last(2, time.Time{}); len(got) != 2 || got[0].T != 3 {
		t.Errorf("Last(2) = %+v; want 3, 4", got)
	}
	if got := r.Last(10, time.Unix(4, 0)); len(got) != 1 || got[0].T != 4 {
		t.Errorf("Last since 4 = %+v; want 4", got)
	}
}

func TestParsers(t *testing.T) {
	if got := procfs.LastPID([]byte("0.52 0.58 0.59 2/612 31337\n")); got != 31337 {
		t.Errorf("LastPID = %d; want 31337", got)
	}
	total, idle := procfs.CPUTimes([]byte("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n"))
	if total != 1000 || idle != 850 {
		t.Errorf("CPUTimes = %d, %d; want 1000, 850", total, idle)
	}
	mt, ma := procfs.MemInfo([]byte("MemTotal:       16 kB\nMemFree:  1 kB\nMemAvailable:   8 kB\n"))
	if mt != 16<<10 || ma != 8<<10 {
		t.Errorf("MemInfo = %d, %d; want 16 KiB, 8 KiB", mt, ma)
	}
}

// TestTrees follows a real tree: a shell and the sleep it starts, found
// by its parent, and forgets what exits.
func TestTrees(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 600 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	tr := NewTrees(os.Getpid(), nil)
	defer tr.Close()
	roots := []Root{{Key: 1, PID: cmd.Process.Pid}}
	deadline := time.Now().Add(10 * time.Second)
	var u Usage
	for u = tr.Measure(roots, Options{Eager: true, FDs: true})[1]; u.Procs < 2; u = tr.Measure(roots, Options{Eager: true, FDs: true})[1] {
		if time.Now().After(deadline) {
			t.Fatalf("usage = %+v; want the shell and its sleep", u)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if u.RSS == 0 || u.Threads < 2 || u.FDs == 0 {
		t.Errorf("usage = %+v; want memory, threads and descriptors", u)
	}
	if got := tr.Measure(nil, Options{}); len(got) != 0 || len(tr.trees) != 0 {
		t.Errorf("after the root is gone: %v, %d trees; want none", got, len(tr.trees))
	}
}

func TestHost(t *testing.T) {
	h := NewHost()
	defer h.Close()
	h.Read()
	u := h.Read()
	if u.Cores == 0 || u.MemTotal == 0 || u.MemAvailable == 0 || u.MemAvailable > u.MemTotal || u.CPU < 0 || u.CPU > 100 {
		t.Errorf("host = %+v", u)
	}
}

func TestQuiet(t *testing.T) {
	base := procfs.Stat{CPU: time.Second, RSS: 64 << 20, Threads: 7}
	for _, c := range []struct {
		name string
		cur  procfs.Stat
		want bool
	}{
		{"same", base, true},
		{"memory moved a little", procfs.Stat{CPU: time.Second, RSS: 64<<20 + 512<<10, Threads: 7}, true},
		{"memory grew", procfs.Stat{CPU: time.Second, RSS: 66 << 20, Threads: 7}, false},
		{"a CPU tick", procfs.Stat{CPU: time.Second + 10*time.Millisecond, RSS: 64 << 20, Threads: 7}, false},
		{"a thread more", procfs.Stat{CPU: time.Second, RSS: 64 << 20, Threads: 8}, false},
	} {
		if got := quiet(base, c.cur); got != c.want {
			t.Errorf("%s: quiet = %v; want %v", c.name, got, c.want)
		}
	}
}

// startShell starts /bin/sh running script with fifo as $0 and returns
// its pid; the shell is killed when the test ends.
func startShell(t *testing.T, script, fifo string) int {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script, fifo)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd.Process.Pid
}

// newFIFO returns the path of a new named pipe: a shell that reads it
// blocks, using no CPU at all, until the test writes a line.
func newFIFO(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "go")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// release writes a line to fifo, which a reader waits on.
func release(t *testing.T, fifo string) {
	t.Helper()
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
}

// TestCPUAfterSkippedReads: a quiet process, left unread for maxSkip
// passes, that starts spinning meanwhile reads at its average over those
// passes (at most one core), not with all their CPU in the one pass that
// reads it (800% here).
func TestCPUAfterSkippedReads(t *testing.T) {
	t.Parallel()
	fifo := newFIFO(t)
	pid := startShell(t, `read x < "$0"; while :; do :; done`, fifo)
	tr := NewTrees(os.Getpid(), nil)
	defer tr.Close()
	roots := []Root{{Key: 1, PID: pid}}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tr.Measure(roots, Options{})
		if m := tr.trees[1].members[pid]; m != nil && m.read && m.skip == maxSkip {
			break // just read, quiet: the next maxSkip passes leave it be
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiting shell was never left unread for maxSkip passes")
		}
		<-tick.C
	}
	release(t, fifo)
	var read []float64 // the figures of the passes that read it
	for len(read) < 3 {
		<-tick.C
		before := tr.trees[1].members[pid].readAt
		u := tr.Measure(roots, Options{})[1]
		if tr.trees[1].members[pid].readAt != before {
			read = append(read, u.CPUPercent)
		}
	}
	if read[0] > 150 || read[0] < 10 {
		t.Errorf("CPU %% of the first read after %d skipped passes = %.0f; want its average over them, at most one core", maxSkip, read[0])
	}
	for _, pct := range read[1:] {
		if pct > 150 {
			t.Errorf("CPU %% of a busy shell = %.0f (reads %v); want at most one core", pct, read)
		}
	}
}

// TestCPUFirstRead: a process read for the first time counts its CPU
// over its age: a shell that has spun for a while reads about one core.
func TestCPUFirstRead(t *testing.T) {
	t.Parallel()
	pid := startShell(t, `while :; do :; done`, "")
	waitStat(t, "the shell to use 300 ms of CPU", pid, func(st procfs.Stat) bool { return st.CPU >= 300*time.Millisecond })
	tr := NewTrees(os.Getpid(), nil)
	defer tr.Close()
	if u := tr.Measure([]Root{{Key: 1, PID: pid}}, Options{})[1]; u.CPUPercent < 10 || u.CPUPercent > 150 {
		t.Errorf("first read of a busy shell: CPU %.0f%% (%v); want about one core", u.CPUPercent, u.CPU)
	}
}

func waitStat(t *testing.T, what string, pid int, cond func(procfs.Stat) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := procfs.ReadStat(pid)
		if err == nil && cond(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v, %v", what, st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEagerInPlace: a tree whose Eager changes (a memory limit set, a
// watcher come or gone) is the same tree, so its CPU counter, which holds
// what exited children used, does not go back.
func TestEagerInPlace(t *testing.T) {
	t.Parallel()
	pid := startShell(t, `(while :; do :; done) & wait; exec sleep 600`, "")
	tr := NewTrees(os.Getpid(), nil)
	defer tr.Close()
	roots := []Root{{Key: 1, PID: pid, PGID: pid}}
	var u Usage
	deadline := time.Now().Add(20 * time.Second)
	for u = tr.Measure(roots, Options{Eager: true})[1]; u.Procs < 2 || u.CPU < 200*time.Millisecond; u = tr.Measure(roots, Options{Eager: true})[1] {
		if time.Now().After(deadline) {
			t.Fatalf("usage = %+v; want the shell and its busy child, 200 ms of CPU", u)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for child := range tr.trees[1].members {
		if child != pid {
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
	}
	for u.Procs != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("usage = %+v; want the shell alone once its child is killed", u)
		}
		time.Sleep(20 * time.Millisecond)
		u = tr.Measure(roots, Options{Eager: true})[1]
	}
	before := tr.trees[1]
	roots[0].Eager = true
	after := tr.Measure(roots, Options{})[1]
	if tr.trees[1] != before || after.CPU < u.CPU {
		t.Errorf("after Eager changed: CPU %v (was %v), same tree %v; want the same tree, its CPU going on", after.CPU, u.CPU, tr.trees[1] == before)
	}
}

// TestReusedPID: a pid seen before that names another process once the
// kernel's last pid wrapped around is read again and placed in its tree;
// a member that is gone gives its place to the process that now has its
// pid; a Trees that followed nothing for a while forgets what it saw.
func TestReusedPID(t *testing.T) {
	t.Parallel()
	pid := startShell(t, `sleep 600 & wait`, "")
	tr := NewTrees(os.Getpid(), nil)
	defer tr.Close()
	roots := []Root{{Key: 1, PID: pid, PGID: pid}}
	child := 0
	deadline := time.Now().Add(20 * time.Second)
	for child == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the shell's child was never found")
		}
		tr.Measure(roots, Options{Eager: true})
		for p := range tr.trees[1].members {
			if p != pid {
				child = p
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	real := tr.seen[child]
	stale := proc{ppid: 1, pgrp: 1, start: real.start - 1}

	// The last listing saw child's pid as an older process, and the tree
	// followed that one; since then the pids wrapped around.
	tr.seen[child] = stale
	tr.trees[1].members[child].start = stale.start
	tr.lastPID = 1 << 30
	if u := tr.Measure(roots, Options{Eager: true})[1]; u.Procs != 2 || tr.trees[1].members[child] == nil || tr.trees[1].members[child].start != real.start {
		t.Errorf("after the pids wrapped: %d processes; want the shell and its child, read again", u.Procs)
	}

	// No tree for a while, then one again: what was seen before is read
	// again.
	tr.Measure(nil, Options{})
	tr.seen[child] = stale
	if u := tr.Measure(roots, Options{Eager: true})[1]; u.Procs != 2 {
		t.Errorf("a tree after none: %d processes; want the shell and its child", u.Procs)
	}
}
