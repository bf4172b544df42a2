package procfs

import (
	"os"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	line := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 987654 1000000 300 18446744073709551615\n"
	st, err := ParseStat(4242, []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != 'S' || st.PPID != 1 || st.PGRP != 4242 || st.StartTicks != 987654 {
		t.Errorf("parseStat = %+v; want state S, ppid 1, pgrp 4242, start 987654", st)
	}
	if st.CPU.Seconds() != 3 {
		t.Errorf("CPU = %v; want 3s (300 ticks)", st.CPU)
	}
	if want := uint64(300 * os.Getpagesize()); st.RSS != want {
		t.Errorf("RSS = %d; want %d", st.RSS, want)
	}
}

func TestSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() || st.RSS == 0 || st.StartTicks == 0 {
		t.Errorf("ReadStat(self) = %+v; want ppid %d and non-zero rss and start", st, os.Getppid())
	}
	if !Alive(os.Getpid(), st.StartTicks) {
		t.Error("Alive(self) = false")
	}
	if Alive(os.Getpid(), st.StartTicks+1) {
		t.Error("Alive(self, other start time) = true; want false")
	}
	procs, err := Scan()
	if err != nil {
		t.Fatal(err)
	}
	tree := Tree(procs, os.Getppid())
	found := false
	for _, pid := range tree {
		found = found || pid == os.Getpid()
	}
	if !found {
		t.Errorf("Tree(parent) = %v; does not hold this process %d", tree, os.Getpid())
	}
}

// TestCPUTimes: guest and guest_nice (the 9th and 10th fields) are
// already in user and nice, and are not counted twice.
func TestCPUTimes(t *testing.T) {
	total, idle := CPUTimes([]byte("cpu  100 10 50 800 40 5 5 0 70 7\ncpu0 1 2 3 4\n"))
	if total != 1010 || idle != 840 {
		t.Errorf("CPUTimes = %d, %d; want 1010 (guest time not added again), 840", total, idle)
	}
	if total, idle := CPUTimes([]byte("cpu  1 2 3 4 5\n")); total != 15 || idle != 9 {
		t.Errorf("CPUTimes of an old kernel's five fields = %d, %d; want 15, 9", total, idle)
	}
}

// TestUptime: /proc/uptime and a process's start time are on one clock,
// so the age of this process reads as a short, positive time.
func TestUptime(t *testing.T) {
	if d, ok := Uptime([]byte("350735.47 234388.90\n")); !ok || d != 350735*time.Second+470*time.Millisecond {
		t.Errorf("Uptime = %v, %v; want 350735.47s", d, ok)
	}
	if _, ok := Uptime([]byte("x 1\n")); ok {
		t.Error("Uptime(garbage) ok; want not")
	}
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	up, ok := Uptime(b)
	st, err := ReadStat(os.Getpid())
	if !ok || err != nil {
		t.Fatalf("uptime %q, %v; stat %v", b, ok, err)
	}
	if age := up - st.SinceBoot(); age < 0 || age > time.Hour {
		t.Errorf("age of this process = %v (uptime %v, started %v after boot); want a short positive time", age, up, st.SinceBoot())
	}
}
