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
	return parseStat(pid, buf[:n])
}

// parseStat parses the content of /proc/<pid>/stat. The command name sits
// between parentheses and may itself hold spaces and parentheses, so the
// fields are counted from the last ')'.
func parseStat(pid int, b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return Stat{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	fields := bytes.Fields(b[i+2:])
	// fields[0] is field 3 of proc(5): state.
	const need = 24 - 3 + 1
	if len(fields) < need {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %d fields, want at least %d", pid, len(fields), need)
	}
	num := func(field int) uint64 {
		v, _ := strconv.ParseUint(string(fields[field-3]), 10, 64)
		return v
	}
	inum := func(field int) int {
		v, _ := strconv.Atoi(string(fields[field-3]))
		return v
	}
	ticks := num(14) + num(15)
	return Stat{
		PID:        pid,
		State:      fields[0][0],
		PPID:       inum(4),
		PGRP:       inum(5),
		Session:    inum(6),
		CPU:        time.Duration(ticks) * (time.Second / ticksPerSecond),
		StartTicks: num(22),
		RSS:        num(24) * uint64(os.Getpagesize()),
	}, nil
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
