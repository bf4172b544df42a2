// Package sample measures what runs under the daemon: the CPU time,
// resident memory, threads and open descriptors of each instance's whole
// process tree, and the host's CPU and memory, read from /proc; and it
// keeps a bounded history of them (Ring).
//
// It is built to run every second for as long as the daemon lives, so an
// idle pass must cost next to nothing (DESIGN 11; the daemon of 50 idle
// apps used no measurable CPU before the sampler existed):
//   - each known process's /proc/<pid>/stat stays open and is re-read with
//     one pread into a reused buffer, and parsed without allocating;
//   - a process whose figures did not change is read less and less often,
//     up to every maxSkip+1 passes, unless its tree is Eager (an app with a
//     memory limit) or every tree is (someone is watching: monit, a
//     scrape): an idle daemon of idle apps then reads a few files a second;
//   - the process table is not walked every pass. /proc/loadavg names the
//     last pid the kernel handed out; while it does not change, no process
//     was created anywhere, so no tree can have grown. When it changes,
//     /proc is listed and only the pids not seen before are read. The
//     kernel hands pids out in a cycle, so a pid seen before can name a new
//     process only once the last pid has wrapped around: then every pid is
//     read again.
package sample

import (
	"time"

	"github.com/tend-pm/tend/internal/procfs"
)

// Root is the main process of one instance's run, the root of a tree.
type Root struct {
	// Key identifies the run (one process started in a slot); it keys the
	// Usage returned for it.
	Key uint64
	PID int
	// PGID is the process group whose members count too, even those the
	// root did not start (0: none).
	PGID int
	// Start is the root's start time in clock ticks (0: unchecked), so a
	// reused pid is never taken for the root.
	Start uint64
	// Eager reads every process of the tree on every pass (an app whose
	// memory limit is checked at the sampler's cadence).
	Eager bool
}

// maxSkip is how many passes a quiet process may be left unread.
const maxSkip = 7

// Usage is what one tree uses.
type Usage struct {
	// CPU is the CPU time the tree used since the root started, counted by
	// adding each member's increase from pass to pass: it never goes back
	// when a child exits, as the sum of the live members' times would.
	CPU time.Duration
	// CPUPercent is the CPU the tree uses, in per cent of one core: the sum,
	// over the members read this pass, of each one's increase divided by
	// its own interval since its previous read (since it started, for its
	// first). A quiet member left unread for a few passes that turned busy
	// meanwhile thus counts at its average over those passes, not with all
	// of them in one. Members not read this pass were quiet at their last
	// read and count for nothing.
	CPUPercent float64
	RSS        uint64
	Threads    int
	Procs      int
	// FDs counts the open descriptors of the tree's processes.
	FDs int
}

// Owner tells which run an orphan belongs to: a process reparented to the
// daemon (its subreaper) that also left its group, so that neither its
// parent nor its group names its tree.
type Owner func(pid int) (key uint64, ok bool)

// Trees follows the process trees of instances from pass to pass.
type Trees struct {
	self    int
	owner   Owner
	loadavg *procfs.File
	// uptime is /proc/uptime, read on a pass that reads a process for the
	// first time (its CPU since it started counts over its age).
	uptime  *procfs.File
	lastPID int
	// seen holds every pid of the last listing of /proc, with what tells
	// which tree a process belongs to.
	seen  map[int]proc
	trees map[uint64]*tree
	buf   []byte
	// Listings counts the listings of /proc, for tests and /metrics.
	Listings int
	passes   int
	listedAt int // the pass of the last listing
}

type proc struct {
	ppid, pgrp int
	start      uint64
}

type tree struct {
	root    Root
	members map[int]*member
	cpu     time.Duration
	fresh   bool // added this pass: classify every known process
	counted bool // its descriptors were counted once
}

type member struct {
	f      *procfs.StatFile
	start  uint64
	last   procfs.Stat
	read   bool      // last holds a read
	readAt time.Time // when last was read
	quiet  int       // reads in a row that found nothing changed
	skip   int       // passes to leave it unread
}

// NewTrees returns a Trees for the daemon self; owner may be nil.
func NewTrees(self int, owner Owner) *Trees {
	t := &Trees{self: self, owner: owner, seen: map[int]proc{}, trees: map[uint64]*tree{}, buf: make([]byte, 1024)}
	if f, err := procfs.OpenFile("/proc/loadavg", 128); err == nil {
		t.loadavg = f
	}
	if f, err := procfs.OpenFile("/proc/uptime", 128); err == nil {
		t.uptime = f
	}
	return t
}

// Close releases every descriptor.
func (t *Trees) Close() {
	for k, tr := range t.trees {
		tr.close()
		delete(t.trees, k)
	}
	for _, f := range []**procfs.File{&t.loadavg, &t.uptime} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
}

func (tr *tree) close() {
	for pid, m := range tr.members {
		m.f.Close()
		delete(tr.members, pid)
	}
}

// Options of one pass.
type Options struct {
	// FDs also counts open descriptors (a directory listing per process:
	// the costliest figure).
	FDs bool
	// Eager reads every process of every tree.
	Eager bool
	// ListEvery lists /proc at most once in that many passes when
	// processes were created (0 or 1: on every such pass), unless a tree
	// was added or is Eager. On a busy machine (a build starting
	// compilers all the time) that bounds the cost of finding children.
	ListEvery int
}

// Measure returns the usage of the tree of each root, keyed by Root.Key.
// Trees of roots no longer given are forgotten.
func (t *Trees) Measure(roots []Root, o Options) map[uint64]Usage {
	want := make(map[uint64]bool, len(roots))
	added := false
	if len(t.trees) == 0 && len(roots) > 0 {
		// With no tree, nothing was listed: what seen holds may be old
		// enough for its pids to name other processes now.
		clear(t.seen)
	}
	for _, r := range roots {
		want[r.Key] = true
		if tr := t.trees[r.Key]; tr != nil && tr.root.PID == r.PID && tr.root.Start == r.Start {
			// The same process: what changes (Eager, the group) changes in
			// place, so its CPU counter goes on.
			tr.root.Eager, tr.root.PGID = r.Eager, r.PGID
			continue
		} else if tr != nil {
			tr.close()
		}
		tr := &tree{root: r, members: map[int]*member{}, fresh: true}
		t.trees[r.Key] = tr
		tr.add(r.PID, r.Start)
		added = true
	}
	for k, tr := range t.trees {
		if !want[k] {
			tr.close()
			delete(t.trees, k)
		}
	}
	if len(t.trees) > 0 {
		t.passes++
		force := added
		due := o.ListEvery <= 1 || o.Eager || t.passes-t.listedAt >= o.ListEvery
		for _, tr := range t.trees {
			due = due || tr.root.Eager
		}
		if force || due {
			t.refresh(force)
		}
	}
	out := make(map[uint64]Usage, len(t.trees))
	p := pass{t: t, now: time.Now()}
	for k, tr := range t.trees {
		out[k] = tr.measure(&p, o)
	}
	return out
}

// pass is what the trees of one pass share.
type pass struct {
	t   *Trees
	now time.Time
	// up is the time since boot, read once a pass when needed.
	up     time.Duration
	upRead bool
}

// sinceBoot returns the time since boot now.
func (p *pass) sinceBoot() (time.Duration, bool) {
	if !p.upRead {
		p.upRead = true
		if f := p.t.uptime; f != nil {
			if b, err := f.Read(); err == nil {
				p.up, _ = procfs.Uptime(b)
			}
		}
	}
	return p.up, p.up > 0
}

// add starts following pid as a member; start 0 takes whatever runs. A
// member of the same pid but another start time is a process that is gone
// (its pid was handed out again): the new one takes its place.
func (tr *tree) add(pid int, start uint64) {
	if m, ok := tr.members[pid]; ok {
		if m.start == 0 || start == 0 || m.start == start {
			return
		}
		m.f.Close()
		delete(tr.members, pid)
	}
	f, err := procfs.OpenStat(pid)
	if err != nil {
		return
	}
	tr.members[pid] = &member{f: f, start: start}
}

// refresh lists /proc if a process was created since the last listing
// (or a tree was added), and adds the new processes to their trees.
func (t *Trees) refresh(force bool) {
	last := -1
	if t.loadavg != nil {
		if b, err := t.loadavg.Read(); err == nil {
			last = procfs.LastPID(b)
		}
	}
	if !force && last == t.lastPID && last > 0 {
		return
	}
	pids, err := procfs.PIDs()
	if err != nil {
		return
	}
	if last < t.lastPID {
		// The last pid went back: the kernel wrapped around pid_max, and
		// any pid seen before may name another process now. Read them all.
		clear(t.seen)
	}
	t.lastPID = last
	t.Listings++
	t.listedAt = t.passes
	now := make(map[int]bool, len(pids))
	var fresh []int
	for _, pid := range pids {
		now[pid] = true
		if _, ok := t.seen[pid]; ok {
			continue
		}
		st, err := procfs.ReadStat(pid)
		if err != nil {
			continue
		}
		t.seen[pid] = proc{ppid: st.PPID, pgrp: st.PGRP, start: st.StartTicks}
		fresh = append(fresh, pid)
	}
	for pid := range t.seen {
		if !now[pid] {
			delete(t.seen, pid)
		}
	}
	// A tree added this pass may have processes already (a daemon that
	// starts sampling late): every known process is a candidate for it.
	var freshTrees []*tree
	for _, tr := range t.trees {
		if tr.fresh {
			freshTrees = append(freshTrees, tr)
			tr.fresh = false
		}
	}
	if len(freshTrees) > 0 {
		for pid := range t.seen {
			fresh = append(fresh, pid)
		}
	}
	t.classify(fresh)
}

// classify adds each of pids to the tree it belongs to, if any: the tree
// whose group it is in, or whose member is its parent; or, for an orphan
// the daemon inherited, the tree Owner names. Parents and children may be
// new together, so it repeats until nothing more is placed.
func (t *Trees) classify(pids []int) {
	byGroup := map[int]*tree{}
	byMember := map[int]*tree{}
	for _, tr := range t.trees {
		if tr.root.PGID != 0 {
			byGroup[tr.root.PGID] = tr
		}
		for pid := range tr.members {
			byMember[pid] = tr
		}
	}
	for placed := true; placed && len(pids) > 0; {
		placed = false
		left := pids[:0]
		for _, pid := range pids {
			p := t.seen[pid]
			if tr := byMember[pid]; tr != nil {
				m := tr.members[pid]
				if m == nil || m.start == 0 || m.start == p.start {
					continue
				}
				// A member that is gone (not read since), whose pid the
				// kernel gave to another process: that one is placed anew.
				m.f.Close()
				delete(tr.members, pid)
				delete(byMember, pid)
			}
			tr := byGroup[p.pgrp]
			if tr == nil {
				tr = byMember[p.ppid]
			}
			if tr == nil && p.ppid == t.self && t.owner != nil {
				if key, ok := t.owner(pid); ok {
					tr = t.trees[key]
				}
			}
			if tr == nil {
				left = append(left, pid)
				continue
			}
			tr.add(pid, p.start)
			byMember[pid] = tr
			placed = true
		}
		pids = left
	}
}

// measure reads the members due for a read and sums them all up.
func (tr *tree) measure(p *pass, o Options) Usage {
	var u Usage
	withFDs := o.FDs || !tr.counted
	tr.counted = true
	eager := o.Eager || tr.root.Eager
	for pid, m := range tr.members {
		st := m.last
		if m.skip > 0 && !eager && !withFDs {
			m.skip--
		} else {
			var err error
			st, err = m.f.Read(p.t.buf)
			if err != nil || (m.start != 0 && st.StartTicks != m.start) {
				m.f.Close()
				delete(tr.members, pid)
				continue
			}
			if m.read && quiet(m.last, st) {
				m.quiet++
			} else {
				m.quiet = 0
			}
			m.skip = min(1<<min(m.quiet, 8)-1, maxSkip)
			if st.CPU > m.last.CPU {
				d := st.CPU - m.last.CPU
				tr.cpu += d
				// Over the member's own interval: since its last read
				// (however many passes ago), or since it started.
				var over time.Duration
				if m.read {
					over = p.now.Sub(m.readAt)
				} else if up, ok := p.sinceBoot(); ok {
					over = up - st.SinceBoot()
				}
				if over > 0 {
					u.CPUPercent += float64(d) / float64(over) * 100
				}
			}
			m.last, m.read, m.readAt = st, true, p.now
		}
		if st.Zombie() {
			continue
		}
		u.RSS += st.RSS
		u.Threads += st.Threads
		u.Procs++
		if withFDs {
			if n, err := procfs.CountFDs(pid); err == nil {
				u.FDs += n
			}
		}
	}
	u.CPU = tr.cpu
	return u
}

// quiet reports whether a process did nothing worth reading it for from
// one read to the next: no CPU tick, the same threads, and its memory
// within 1/64 (or 256 KiB) of what it was. An idle runtime's memory moves
// a little all the time (Node's timers allocate), which is no reason to
// read it every second.
func quiet(prev, cur procfs.Stat) bool {
	if cur.CPU != prev.CPU || cur.Threads != prev.Threads {
		return false
	}
	d := max(cur.RSS, prev.RSS) - min(cur.RSS, prev.RSS)
	return d <= max(prev.RSS/64, 256<<10)
}
