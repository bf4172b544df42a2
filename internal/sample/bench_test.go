package sample

import (
	"os"
	"os/exec"
	"testing"

	"github.com/tend-pm/tend/internal/procfs"
)

// BenchmarkMeasure measures one pass over 200 instances, each a process
// of its own (`sleep`), as the daemon's sampler does every second:
// go test -run '^$' -bench Measure ./internal/sample/
func BenchmarkMeasure(b *testing.B) {
	for _, fds := range []bool{false, true} {
		name := "stat"
		if fds {
			name = "stat+fds"
		}
		b.Run(name, func(b *testing.B) {
			roots := startSleepers(b, 200)
			tr := NewTrees(os.Getpid(), nil)
			defer tr.Close()
			tr.Measure(roots, Options{})
			b.ResetTimer()
			for range b.N {
				tr.Measure(roots, Options{FDs: fds, Eager: true})
			}
		})
	}
	b.Run("idle", func(b *testing.B) {
		roots := startSleepers(b, 200)
		tr := NewTrees(os.Getpid(), nil)
		defer tr.Close()
		for range 20 {
			tr.Measure(roots, Options{})
		}
		b.ResetTimer()
		for range b.N {
			tr.Measure(roots, Options{})
		}
	})
	b.Run("listing", func(b *testing.B) {
		for range b.N {
			if _, err := procfs.PIDs(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func startSleepers(b *testing.B, n int) []Root {
	b.Helper()
	var roots []Root
	for i := range n {
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		roots = append(roots, Root{Key: uint64(i + 1), PID: cmd.Process.Pid})
	}
	return roots
}
