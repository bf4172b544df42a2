package sample

import (
	"runtime"

	"github.com/tend-pm/tend/internal/procfs"
)

// HostUsage is the machine's load.
type HostUsage struct {
	// CPU is the share of all CPUs in use since the previous read, in
	// percent of the whole machine (100 = every core busy).
	CPU      float64
	Cores    int
	MemTotal uint64
	// MemAvailable is what the kernel estimates can be allocated without
	// swapping (MemAvailable), not merely what is free.
	MemAvailable uint64
}

// Host reads the machine's CPU and memory, keeping /proc/stat and
// /proc/meminfo open between reads.
type Host struct {
	stat, meminfo       *procfs.File
	prevTotal, prevIdle uint64
}

// NewHost opens what Read needs; on a system without /proc, Read returns
// zeros.
func NewHost() *Host {
	h := &Host{}
	// /proc/stat grows with the CPUs and interrupt counters: 64 KiB holds
	// its first line on any machine, and only that line is read.
	h.stat, _ = procfs.OpenFile("/proc/stat", 64<<10)
	h.meminfo, _ = procfs.OpenFile("/proc/meminfo", 8<<10)
	return h
}

// Read returns the host's usage now; the CPU share covers the time since
// the previous Read (since boot for the first).
func (h *Host) Read() HostUsage {
	u := HostUsage{Cores: runtime.NumCPU()}
	if h.stat != nil {
		if b, err := h.stat.Read(); err == nil {
			total, idle := procfs.CPUTimes(b)
			if dt := total - h.prevTotal; total > h.prevTotal && idle >= h.prevIdle {
				u.CPU = float64(dt-(idle-h.prevIdle)) / float64(dt) * 100
			}
			h.prevTotal, h.prevIdle = total, idle
		}
	}
	if h.meminfo != nil {
		if b, err := h.meminfo.Read(); err == nil {
			u.MemTotal, u.MemAvailable = procfs.MemInfo(b)
		}
	}
	return u
}

// Close releases the files.
func (h *Host) Close() {
	if h.stat != nil {
		h.stat.Close()
	}
	if h.meminfo != nil {
		h.meminfo.Close()
	}
}
