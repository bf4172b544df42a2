//go:build !linux

package procfs

import "time"

// ReadStat is not available without /proc.
func ReadStat(pid int) (Stat, error) { return Stat{}, ErrUnsupported }

// Scan is not available without /proc.
func Scan() ([]Stat, error) { return nil, ErrUnsupported }

// Alive reports whether pid exists; without /proc it cannot tell a reused
// pid apart, nor a zombie.
func Alive(pid int, startTicks uint64) bool { return false }

// Environ is not available without /proc.
func Environ(pid int) ([]byte, error) { return nil, ErrUnsupported }

// StatFile is not available without /proc.
type StatFile struct{}

// OpenStat is not available without /proc.
func OpenStat(pid int) (*StatFile, error) { return nil, ErrUnsupported }

// Read is not available without /proc.
func (s *StatFile) Read(buf []byte) (Stat, error) { return Stat{}, ErrUnsupported }

// Close does nothing.
func (s *StatFile) Close() {}

// File is not available without /proc.
type File struct{}

// OpenFile is not available without /proc.
func OpenFile(path string, size int) (*File, error) { return nil, ErrUnsupported }

// Read is not available without /proc.
func (f *File) Read() ([]byte, error) { return nil, ErrUnsupported }

// Close does nothing.
func (f *File) Close() {}

// LastPID is not available without /proc.
func LastPID(loadavg []byte) int { return 0 }

// CPUTimes is not available without /proc.
func CPUTimes(stat []byte) (total, idle uint64) { return 0, 0 }

// MemInfo is not available without /proc.
func MemInfo(meminfo []byte) (total, available uint64) { return 0, 0 }

// CountFDs is not available without /proc.
func CountFDs(pid int) (int, error) { return 0, ErrUnsupported }

// PIDs is not available without /proc.
func PIDs() ([]int, error) { return nil, ErrUnsupported }

// Uptime is not available without /proc.
func Uptime(b []byte) (time.Duration, bool) { return 0, false }

// SinceBoot is not available without /proc.
func (s Stat) SinceBoot() time.Duration { return 0 }
