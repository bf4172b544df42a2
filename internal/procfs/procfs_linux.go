package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ticksPerSecond is USER_HZ, which the kernel fixes at 100 for every value
// it reports in /proc/<pid>/stat, whatever its internal HZ.
const ticksPerSecond = 100

// pageSize converts the page counts of /proc into bytes.
var pageSize = uint64(os.Getpagesize())

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	var buf [512]byte
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	n, err := f.Read(buf[:])
	f.Close()
	if err != nil {
		return Stat{}, fmt.Errorf("read /proc/%d/stat: %w", pid, err)
	}
	return ParseStat(pid, buf[:n])
}

// ParseStat parses the content of /proc/<pid>/stat. The command name sits
// between parentheses and may itself hold spaces and parentheses, so the
// fields are counted from the last ')'. It allocates nothing: the sampler
// calls it for every process of every instance, every second.
func ParseStat(pid int, b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return Stat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	// Field numbers as in proc(5): 3 is the state, right after ") ".
	var f [25]uint64
	var state byte
	field, rest := 3, b[i+2:]
	for field < len(f) && len(rest) > 0 {
		j := bytes.IndexByte(rest, ' ')
		if j < 0 {
			j = len(rest)
		}
		tok := bytes.TrimRight(rest[:j], "\n")
		if field == 3 {
			if len(tok) > 0 {
				state = tok[0]
			}
		} else {
			f[field] = atou(tok)
		}
		field++
		if j == len(rest) {
			break
		}
		rest = rest[j+1:]
	}
	if field < 25 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %d fields, want at least 24", pid, field-1)
	}
	return Stat{
		PID:        pid,
		State:      state,
		PPID:       int(f[4]),
		PGRP:       int(f[5]),
		Session:    int(f[6]),
		CPU:        time.Duration(f[14]+f[15]) * (time.Second / ticksPerSecond),
		Threads:    int(f[20]),
		StartTicks: f[22],
		RSS:        f[24] * pageSize,
	}, nil
}

// SinceBoot is when the process started, as time since boot (the clock
// of /proc/uptime).
func (s Stat) SinceBoot() time.Duration {
	return time.Duration(s.StartTicks) * (time.Second / ticksPerSecond)
}

// atou reads a decimal number; a negative one (-1 for "none") reads as 0.
func atou(b []byte) uint64 {
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + uint64(c-'0')
	}
	return n
}

// Scan reads the stat of every process on the system. Processes that exit
// while it runs are skipped.
func Scan() ([]Stat, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("scan processes: %w", err)
	}
	out := make([]Stat, 0, len(names))
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if st, err := ReadStat(pid); err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// Alive reports whether the process pid is running (not a zombie) and, if
// startTicks is not zero, is the same process that started at startTicks.
func Alive(pid int, startTicks uint64) bool {
	st, err := ReadStat(pid)
	if err != nil || st.Zombie() {
		return false
	}
	return startTicks == 0 || st.StartTicks == startTicks
}

// Environ returns the environment the process pid was started with
// (/proc/<pid>/environ: NUL-separated VAR=value entries). Only the owner
// of a process (or root) may read it.
func Environ(pid int) ([]byte, error) {
	return os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
}
