//go:build !linux

package procfs

// ReadStat is not available without /proc.
func ReadStat(pid int) (Stat, error) { return Stat{}, ErrUnsupported }

// Scan is not available without /proc.
func Scan() ([]Stat, error) { return nil, ErrUnsupported }

// Alive reports whether pid exists; without /proc it cannot tell a reused
// pid apart, nor a zombie.
func Alive(pid int, startTicks uint64) bool { return false }

// Environ is not available without /proc.
func Environ(pid int) ([]byte, error) { return nil, ErrUnsupported }
