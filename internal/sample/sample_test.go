package sample

import (
	"os"
	"os/exec"
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
