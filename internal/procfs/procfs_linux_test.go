package procfs

import (
	"os"
	"testing"
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
