package supervisor

import (
	"slices"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/procfs"
)

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
		out[i] = api.AppDetail{AppInfo: infos[i], Spec: a.spec, Logs: a.logs.Paths(len(a.insts))}
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
			Listen: a.spec.Listen, Balance: a.spec.Balance, MaxMemory: a.spec.MaxMemoryRestart,
			Listeners: a.listenersLocked(),
		}
		for _, in := range a.insts {
			ii := api.InstanceInfo{
				Slot: in.slot, PID: in.pid, Status: in.status, Restarts: in.restarts,
				Unstable: in.unstable, LastExit: in.lastExit, NextRestart: in.nextRestart, Reason: in.reason,
				Ready: in.ready, AppStatus: in.appStatus, Port: in.port,
				Metrics: in.appMetricsLocked(), LastRestart: in.lastRestart,
			}
			for _, p := range in.proxies() {
				ii.Conns += p.Conns(in.run)
			}
			if in.pid > 0 {
				ii.Started = in.started
				in.figuresLocked(&ii, now)
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

// figuresLocked fills in the sampler's figures of in's tree. Before the
// first pass after a start, it reads the main process alone: `tend ls`
// right after `tend start` shows its memory, not zero.
func (in *instance) figuresLocked(ii *api.InstanceInfo, now time.Time) {
	if in.sampled {
		u := in.usage
		ii.CPU, ii.Memory, ii.CPUTime = in.cpuPct, u.RSS, u.CPU.Seconds()
		ii.FDs, ii.Threads, ii.Procs, ii.Sampled = u.FDs, u.Threads, u.Procs, in.usageAt
		return
	}
	st, err := procfs.ReadStat(in.pid)
	if err != nil || (in.startTicks != 0 && st.StartTicks != in.startTicks) {
		return
	}
	ii.Memory, ii.CPUTime, ii.Threads, ii.Procs = st.RSS, st.CPU.Seconds(), st.Threads, 1
	if up := now.Sub(in.startedWall); up > 0 {
		ii.CPU = float64(st.CPU) / float64(up) * 100
	}
}
