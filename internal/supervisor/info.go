package supervisor

import (
	"slices"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/procfs"
)

// scanMaxAge bounds how stale the process table used to find each
// instance's tree may be. The figures themselves are read fresh on every
// call; only membership (which pids belong to which instance) is cached,
// so `tend ls` costs a few stat reads instead of a walk of all of /proc.
const scanMaxAge = 2 * time.Second

type scanCache struct {
	at    time.Time
	procs []procfs.Stat
}

// List returns every app with its instances and their figures.
func (s *Supervisor) List() []api.AppInfo {
	s.mu.Lock()
	apps := slices.Clone(s.apps)
	s.mu.Unlock()
	return s.infos(apps)
}

// Describe returns the apps target names, with their specs and log files.
func (s *Supervisor) Describe(target string) ([]api.AppDetail, error) {
	apps, err := s.resolve([]string{target})
	if err != nil {
		return nil, err
	}
	infos := s.infos(apps)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]api.AppDetail, len(apps))
	for i, a := range apps {
		out[i] = api.AppDetail{AppInfo: infos[i], Spec: a.spec, Logs: a.logs.Paths()}
	}
	return out, nil
}

func (s *Supervisor) infos(apps []*app) []api.AppInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := make([]api.AppInfo, 0, len(apps))
	for _, a := range apps {
		info := api.AppInfo{
			ID: a.id, Name: a.spec.Name, Namespace: a.spec.Namespace,
			Created: a.created, Instances: make([]api.InstanceInfo, 0, len(a.insts)),
			Listen: a.spec.Listen, Balance: a.spec.Balance,
		}
		for _, in := range a.insts {
			ii := api.InstanceInfo{
				Slot: in.slot, PID: in.pid, Status: in.status, Restarts: in.restarts,
				Unstable: in.unstable, LastExit: in.lastExit, NextRestart: in.nextRestart, Reason: in.reason,
				Ready: in.ready, AppStatus: in.appStatus, Port: in.port,
			}
			for _, p := range in.proxies() {
				ii.Conns += p.Conns(in.run)
			}
			if in.pid > 0 {
				ii.Started = in.started
				ii.CPU, ii.Memory = s.figuresLocked(in, now)
			}
			info.Instances = append(info.Instances, ii)
		}
		info.Status = appStatus(info.Instances)
		out = append(out, info)
	}
	return out
}

// appStatus sums up the instances' statuses in one word: the status they
// share, or the most urgent one when they differ.
func appStatus(insts []api.InstanceInfo) string {
	if len(insts) == 0 {
		return api.StatusStopped
	}
	for _, st := range []string{api.StatusErrored, api.StatusWaitingRestart, api.StatusStopping, api.StatusLaunching} {
		for _, in := range insts {
			if in.Status == st {
				return st
			}
		}
	}
	return insts[0].Status
}

// figuresLocked returns the CPU percentage (since the last sample) and the
// resident memory of the whole process tree of in: its process group plus
// any descendant that left the group.
func (s *Supervisor) figuresLocked(in *instance, now time.Time) (cpu float64, rss uint64) {
	if now.Sub(s.scan.at) > scanMaxAge || s.scan.procs == nil {
		procs, err := procfs.Scan()
		if err != nil {
			return 0, 0
		}
		s.scan = scanCache{at: now, procs: procs}
	}
	members := map[int]bool{in.pid: true}
	for _, p := range s.scan.procs {
		if p.PGRP == in.pgid {
			members[p.PID] = true
		}
	}
	for _, pid := range procfs.Tree(s.scan.procs, in.pid) {
		members[pid] = true
	}
	var total time.Duration
	for pid := range members {
		st, err := procfs.ReadStat(pid)
		if err != nil || st.Zombie() {
			continue
		}
		if pid == in.pid && in.startTicks != 0 && st.StartTicks != in.startTicks {
			continue
		}
		total += st.CPU
		rss += st.RSS
	}
	// CPU time moves in 10 ms ticks, so a percentage over a short interval
	// is noise: keep the last figure until a second has passed, and until
	// then report the average since the process started.
	dt := now.Sub(in.cpuAt)
	switch {
	case dt >= time.Second:
		in.cpuLast = 0
		if total >= in.cpuPrev {
			in.cpuLast = float64(total-in.cpuPrev) / float64(dt) * 100
		}
		in.cpuPrev, in.cpuAt, in.cpuValid = total, now, true
	case !in.cpuValid && dt > 0:
		in.cpuLast = float64(total-in.cpuPrev) / float64(dt) * 100
	}
	cpu = in.cpuLast
	return cpu, rss
}
