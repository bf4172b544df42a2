package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/clock"
	"github.com/tend-pm/tend/internal/procfs"
	"github.com/tend-pm/tend/internal/rawnet"
	"github.com/tend-pm/tend/internal/uhttp"
)

// Readiness (DESIGN 6). An instance is ready when it says so (READY=1 on
// NOTIFY_SOCKET or POST /v1/notify; Node apps through tend's preload),
// when its probe passes, or, with ready: auto and no signal, once it has
// stayed up for listen_timeout. A timeout while waiting for an explicit
// signal is a failure, never a success.

// armReadyLocked starts waiting for the readiness of the process just
// started in in.
func (s *Supervisor) armReadyLocked(in *instance) {
	rc := in.app.spec.ReadyCheck()
	run := in.run
	in.readyTimer = s.deps.Clock.AfterFunc(rc.Timeout, func() { s.readyTimeout(in, run) })
	if rc.Mode == api.ReadyTCP || rc.Mode == "http" {
		go s.probe(in, run, rc)
	}
	if w := in.app.spec.Watchdog.Std(); w > 0 {
		s.kickWatchdogLocked(in)
	}
}

// readyTimeout fires listen_timeout after a start.
func (s *Supervisor) readyTimeout(in *instance, run uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.run != run || in.pid == 0 || in.ready || in.stopping {
		return
	}
	in.readyTimer = nil
	rc := in.app.spec.ReadyCheck()
	if rc.Mode == api.ReadyAuto {
		s.markReadyLocked(in)
		return
	}
	why := fmt.Sprintf("not ready after %s (listen_timeout)", roundDuration(rc.Timeout))
	s.deps.Log.Warn("not ready in time", "app", in.app.spec.Name, "instance", in.slot, "pid", in.pid, "waited", rc.Timeout)
	in.settleLocked(errors.New(why))
	if in.candidate {
		in.reason = why // the reload stops it and keeps the old process
		return
	}
	// A timeout is a failure: the process is stopped and the restart
	// policy decides, as after a crash. A process that never became
	// ready did not run well however long it waited: the start counts as
	// unstable, so an app that never says it is ready ends errored after
	// max_restarts rather than being restarted forever.
	s.failLocked(in, why, true)
}

// failLocked stops the process of in for a failure the supervisor saw
// (a readiness timeout, a silent watchdog) and then applies the restart
// policy as if it had crashed; unstable counts the run as unstable
// whatever its length (min_uptime).
func (s *Supervisor) failLocked(in *instance, why string, unstable bool) {
	a := in.app
	uptime := s.deps.Clock.Now().Sub(in.started)
	if unstable {
		uptime = 0
	}
	in.lastRestart = &api.RestartInfo{Reason: why, Time: s.deps.Clock.Now()}
	s.beginStopLocked(in, why, func() {
		d := decide(&a.spec, exitBySignal(syscall.SIGABRT), why, uptime, in.unstable, in.backoff)
		s.applyLocked(in, d)
	})
}

// markReadyLocked records that the process of in is ready.
func (s *Supervisor) markReadyLocked(in *instance) {
	if in.ready || in.pid == 0 || in.stopping {
		return
	}
	in.ready = true
	in.reason = ""
	if in.readyTimer != nil {
		in.readyTimer.Stop()
		in.readyTimer = nil
	}
	in.proxyReadyLocked(true)
	s.steerLocked(in.app)
	s.deps.Log.Info("ready", "app", in.app.spec.Name, "instance", in.slot, "pid", in.pid, "after", s.deps.Clock.Now().Sub(in.started))
	s.eventLocked(in.app, in, api.EventReady, nil)
	in.settleLocked(nil)
}

// settleLocked tells whoever waits for the readiness of in (a reload) how
// it went, once.
func (in *instance) settleLocked(err error) {
	if in.onReady != nil {
		f := in.onReady
		in.onReady = nil
		f(err)
	}
}

// resetReadyLocked clears readiness when a process ends.
func (s *Supervisor) resetReadyLocked(in *instance) {
	in.ready = false
	in.appStatus = ""
	for _, t := range []*clock.Timer{&in.readyTimer, &in.watchdogTimer} {
		if *t != nil {
			(*t).Stop()
			*t = nil
		}
	}
	in.proxyRemoveLocked()
}

// probe checks the instance's port until it answers, its process changes,
// or the readiness timeout passes.
func (s *Supervisor) probe(in *instance, run uint64, rc api.ReadyCheck) {
	deadline := time.Now().Add(rc.Timeout)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		port, live := in.port, in.run == run && in.pid != 0 && !in.ready && !in.stopping
		s.mu.Unlock()
		if !live {
			return
		}
		if probeOnce(rc, port) {
			s.mu.Lock()
			if in.run == run {
				s.markReadyLocked(in)
			}
			s.mu.Unlock()
			return
		}
		// Probing is real time: it waits for a real program to come up.
		time.Sleep(20 * time.Millisecond)
	}
}

// probeOnce runs one check: a TCP connect, or an HTTP GET that must
// answer 2xx or 3xx.
func probeOnce(rc api.ReadyCheck, port int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	addr := rawnet.Addr{Host: "127.0.0.1", Port: port}
	path := rc.URL
	host := "localhost:" + strconv.Itoa(port)
	if u, ok := strings.CutPrefix(rc.URL, "http://"); ok {
		hostport, p, _ := strings.Cut(u, "/")
		hostport = strings.ReplaceAll(strings.ReplaceAll(hostport, "${PORT}", fmt.Sprint(port)), "$PORT", fmt.Sprint(port))
		a, err := rawnet.ParseAddr(hostport)
		if err != nil {
			return false
		}
		addr, path, host = a.Loopback(), "/"+p, hostport
	}
	if addr.Port == 0 {
		return false
	}
	c, err := rawnet.Dial(ctx, addr)
	if err != nil {
		return false
	}
	if rc.Mode != "http" {
		c.Close()
		return true
	}
	resp, err := uhttp.Do(ctx, c, "GET", path, uhttp.Header{"host": host}, nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.Status >= 200 && resp.Status < 400
}

// Notify handles a message an instance sent: a datagram on NOTIFY_SOCKET
// or a POST /v1/notify, in sd_notify's format (KEY=VALUE lines). pid is
// the sender, known from the kernel (SCM_CREDENTIALS, SO_PEERCRED); it may
// be any process of an instance (`npm start` runs node as its child), so
// the instance is the nearest ancestor that is an instance's main process.
//
// Every METRIC= line is checked before anything of the message is applied:
// a message with a malformed line is refused whole and changes nothing, so
// a sender that is told so (POST /v1/notify answers 400) may send it again,
// fixed, without counting a counter twice.
func (s *Supervisor) Notify(pid int, msg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instanceOfLocked(pid)
	if in == nil {
		return fmt.Errorf("process %d is not part of any instance: %w", pid, api.ErrNotFound)
	}
	lines := strings.Split(msg, "\n")
	// The METRIC= lines go, in order, to a copy of the instance's metrics,
	// which replaces them only if every line was taken.
	var metrics *instance
	var errs []error
	for _, line := range lines {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		if k != "METRIC" {
			continue
		}
		if metrics == nil {
			metrics = &instance{app: in.app, slot: in.slot, metrics: make(map[string]*appMetric, len(in.metrics))}
			for name, m := range in.metrics {
				c := *m
				metrics.metrics[name] = &c
			}
		}
		if err := metrics.metricLocked(v); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if metrics != nil {
		in.metrics = metrics.metrics
	}
	for _, line := range lines {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "READY":
			if v == "1" {
				s.markReadyLocked(in)
			}
		case "STATUS":
			in.appStatus = v
		case "STOPPING":
			if v == "1" && !in.stopping {
				in.ready = false
				in.proxyReadyLocked(false)
				s.steerLocked(in.app)
			}
		case "WATCHDOG":
			switch v {
			case "1":
				s.kickWatchdogLocked(in)
			case "trigger":
				s.watchdogFiredLocked(in, in.run, "the app asked for it (WATCHDOG=trigger)")
			}
		}
	}
	return nil
}

// instanceOfLocked finds the instance pid belongs to, walking up its
// ancestors until an instance's main process.
func (s *Supervisor) instanceOfLocked(pid int) *instance {
	byPID := map[int]*instance{}
	for _, a := range s.apps {
		for _, in := range a.allInstances() {
			if in.pid != 0 {
				byPID[in.pid] = in
			}
		}
	}
	self := os.Getpid()
	for range 64 {
		if in := byPID[pid]; in != nil {
			return in
		}
		if pid <= 1 || pid == self {
			return nil
		}
		st, err := procfs.ReadStat(pid)
		if err != nil {
			return nil
		}
		pid = st.PPID
	}
	return nil
}

// kickWatchdogLocked (re)arms the watchdog of in.
func (s *Supervisor) kickWatchdogLocked(in *instance) {
	w := in.app.spec.Watchdog.Std()
	if w <= 0 || in.pid == 0 || in.stopping {
		return
	}
	if in.watchdogTimer != nil {
		in.watchdogTimer.Stop()
	}
	run := in.run
	in.watchdogTimer = s.deps.Clock.AfterFunc(w, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.watchdogFiredLocked(in, run, fmt.Sprintf("no WATCHDOG=1 for %s", roundDuration(w)))
	})
}

// watchdogFiredLocked restarts a hung instance: the stop sequence (a hung
// process gets SIGKILL after kill_timeout), then the restart policy, as
// after a crash.
func (s *Supervisor) watchdogFiredLocked(in *instance, run uint64, why string) {
	if in.run != run || in.pid == 0 || in.stopping {
		return
	}
	in.watchdogTimer = nil
	what := "watchdog: " + why
	s.deps.Log.Warn("watchdog timeout", "app", in.app.spec.Name, "instance", in.slot, "pid", in.pid, "why", why)
	in.settleLocked(errors.New(what))
	s.failLocked(in, what, false)
}
