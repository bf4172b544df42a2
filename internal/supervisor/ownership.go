package supervisor

import (
	"bytes"
	"os"
	"strconv"

	"github.com/tend-pm/tend/internal/procfs"
)

// Which processes belong to an instance. A pid alone proves nothing once
// its process has been reaped: the kernel hands it out again. So the
// supervisor relies on three facts instead:
//   - a process it started and has not reaped keeps its pid, and so does
//     the process group it leads (proc.Reaper.SignalGroup relies on this);
//   - everything an instance starts is a descendant of the daemon, which is
//     the subreaper of its orphans;
//   - every process of an instance carries TEND_HOME, TEND_APP and
//     TEND_INSTANCE in the environment it was started with, which is how a
//     program that left the process group (setsid, a daemonizing double
//     fork) is still found, and how a new daemon finds what a dead one
//     left (see Restore).

// snapshot is one read of the process table.
type snapshot struct {
	byPID map[int]procfs.Stat
	// ours are the descendants of this process.
	ours map[int]bool
}

func takeSnapshot() *snapshot {
	procs, err := procfs.Scan()
	snap := &snapshot{byPID: make(map[int]procfs.Stat, len(procs)), ours: map[int]bool{}}
	if err != nil {
		return snap
	}
	for _, p := range procs {
		snap.byPID[p.PID] = p
	}
	snap.ours = procfs.Descendants(procs, os.Getpid())
	return snap
}

// lazySnapshot returns a function that reads the process table on its
// first call only, so one event that checks many instances reads it once.
func lazySnapshot() func() *snapshot {
	var snap *snapshot
	return func() *snapshot {
		if snap == nil {
			snap = takeSnapshot()
		}
		return snap
	}
}

// member is a process found to belong to an instance, with its start time
// so a later signal can check it is still the same process.
type member struct {
	pid   int
	start uint64
}

// markers returns what the environment of the processes of app's slot
// holds, as it appears in /proc/<pid>/environ after a leading NUL.
func (s *Supervisor) markers(app string, slot int) [][]byte {
	return [][]byte{
		[]byte("\x00TEND_HOME=" + s.deps.Home + "\x00"),
		[]byte("\x00TEND_APP=" + app + "\x00"),
		[]byte("\x00TEND_INSTANCE=" + strconv.Itoa(slot) + "\x00"),
	}
}

// hasMarkers reports whether the environment of pid holds every marker.
func hasMarkers(pid int, markers [][]byte) bool {
	env, err := procfs.Environ(pid)
	if err != nil {
		return false
	}
	env = append([]byte{0}, env...)
	for _, m := range markers {
		if !bytes.Contains(env, m) {
			return false
		}
	}
	return true
}

// strayMembersLocked returns the processes of in that its leader's group
// signal does not reach: with the leader alive, the descendants that left
// the group; with the leader reaped, every descendant left in the group as
// well. Processes in another instance's group belong to that instance.
func (s *Supervisor) strayMembersLocked(snap *snapshot, in *instance) []member {
	groups := map[int]bool{}
	for _, a := range s.apps {
		for _, other := range a.allInstances() {
			if other != in && other.pgid != 0 {
				groups[other.pgid] = true
			}
		}
	}
	var markers [][]byte
	var out []member
	for pid := range snap.ours {
		st := snap.byPID[pid]
		if st.Zombie() || pid == in.pid {
			continue
		}
		switch {
		case in.pgid != 0 && st.PGRP == in.pgid:
			if in.pid == 0 {
				out = append(out, member{pid, st.StartTicks})
			}
		case groups[st.PGRP]:
		default:
			if markers == nil {
				markers = s.markers(in.app.spec.Name, in.slot)
				if in.run != 0 {
					// During a reload a slot has two processes; each
					// owns only what it started.
					markers = append(markers, []byte("\x00TEND_RUN="+strconv.FormatUint(in.run, 10)+"\x00"))
				}
			}
			if hasMarkers(pid, markers) {
				out = append(out, member{pid, st.StartTicks})
			}
		}
	}
	return out
}
