// Package supervisor runs apps: it starts each app's instances, restarts
// them by policy when they exit, stops them with the stop sequence
// (signal, grace period, SIGKILL to the whole process group), and keeps the
// desired state on disk so a new daemon can take over from one that died.
//
// All app and instance state sits behind one mutex, Supervisor.mu. Events
// (a process exit from the Reaper, a timer from the Clock, a user's action
// from the API) take it, change the state, and release it; nothing blocks
// while holding it. User actions on one app are also serialized by the
// app's own op mutex, so a restart and a delete of the same app never
// interleave.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/clock"
	"github.com/tend-pm/tend/internal/proc"
	"github.com/tend-pm/tend/internal/sample"
	"github.com/tend-pm/tend/internal/state"
)

// LogRouter gives each app the destination of its output.
type LogRouter interface {
	Open(spec *api.AppSpec) (AppLogs, error)
}

// AppLogs is where one app's output goes.
type AppLogs interface {
	// Copy reads r, an instance's stdout or stderr pipe ("out" or "err"),
	// until EOF and closes it. It runs in its own goroutine.
	Copy(slot int, stream string, r *os.File)
	// Paths names the files the output of slots 0 to instances-1 is
	// written to.
	Paths(instances int) api.LogPaths
	// Flush empties the log files of slots 0 to instances-1 (pm2's flush).
	Flush(instances int) error
	// Close releases the files once the app is deleted.
	Close() error
}

// Deps are what a Supervisor needs from the daemon around it.
type Deps struct {
	Clock  clock.Clock
	Reaper *proc.Reaper
	Logs   LogRouter
	// Store, if set, receives the state after every change.
	Store *state.Store
	// Home is TEND_HOME, given to instances.
	Home string
	Log  *slog.Logger
	// Exe is the tend binary, run as the exec wrapper in front of
	// instances that get sockets (see proc.Wrap).
	Exe string
	// NotifySocket is the NOTIFY_SOCKET path given to instances; empty
	// gives none.
	NotifySocket string
	// NodePreload is the path of tend's Node.js preload script, given to
	// instances that get sockets; empty gives none.
	NodePreload string
	// Host is this machine's name, put in events: with hubs, several
	// machines' events meet.
	Host string
	// Bus, if set, is the pub/sub bus: instances of apps with `bus: true`
	// get its address, and it carries lifecycle events and what Node.js
	// instances send on their IPC channel.
	Bus Bus
	// SampleEvery is the sampler's cadence (0: DefaultSampleEvery;
	// negative: no sampling). History is how many samples each slot keeps
	// (0: DefaultHistory).
	SampleEvery time.Duration
	History     int
	// OnLimit, if set, hears about every instance that goes over its
	// max_memory_restart, as the daemon acts on it: an event to publish.
	OnLimit func(LimitEvent)
}

// Supervisor owns every app.
type Supervisor struct {
	deps Deps

	mu      sync.Mutex
	apps    []*app // in id order
	nextID  int
	gen     uint64 // snapshot counter for Store
	runs    uint64 // processes started, for instance.run
	closing bool   // Shutdown has begun: nothing new starts
	// shutdown is closed when Shutdown begins, ending a reload's wait for
	// new processes to be ready.
	shutdown chan struct{}
	// writes are state writes started where s.mu is held (persist takes
	// it); Shutdown waits for them before its last one.
	writes sync.WaitGroup
	// mon is the sampler (monitor.go).
	mon monitor
}

type app struct {
	// op serializes user actions on this app; it is taken before mu.
	op sync.Mutex

	id      int
	spec    api.AppSpec
	created time.Time
	running bool // desired state: false once a user stops it
	deleted bool
	logs    AppLogs
	insts   []*instance
	// extra are processes outside the slots: a reload's new process
	// before it takes its slot, an old one being stopped after, a slot
	// being scaled away.
	extra []*instance
	// socks are the app's listening sockets, while it runs.
	socks *sockets
	// reloading is set while a reload runs; a second one is refused.
	reloading bool
	// history holds the recent samples of each slot (monitor.go).
	history []*sample.Ring
}

// New returns a Supervisor with no apps.
func New(d Deps) *Supervisor {
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{deps: d, shutdown: make(chan struct{})}
}

// errClosing refuses work that would outlive a daemon on its way out.
var errClosing = fmt.Errorf("the daemon is shutting down: %w", api.ErrConflict)

// OnReap is given to the Reaper: after children were reaped, instances
// whose leader is gone but that had processes left may now be stopped.
func (s *Supervisor) OnReap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := lazySnapshot()
	for _, a := range s.apps {
		for _, in := range a.allInstances() {
			if in.stopping && in.pid == 0 {
				s.checkStoppedLocked(in, snap)
			}
		}
	}
}

// Create adds apps from specs and starts those with autostart. Every spec
// is checked first: one bad spec, or a name already taken, and nothing is
// created.
func (s *Supervisor) Create(ctx context.Context, specs []api.AppSpec) ([]api.AppInfo, error) {
	run := make([]bool, len(specs))
	for i := range specs {
		run[i] = specs[i].Autostart
	}
	return s.Add(ctx, specs, run)
}

// Add is Create with the choice of which apps to start made by the caller
// (resurrect brings back stopped apps as stopped).
func (s *Supervisor) Add(ctx context.Context, specs []api.AppSpec, run []bool) ([]api.AppInfo, error) {
	if len(specs) == 0 {
		return nil, fmt.Errorf("no apps to start: %w", api.ErrInvalid)
	}
	seen := map[string]bool{}
	for i := range specs {
		if err := specs[i].Validate(); err != nil {
			return nil, err
		}
		if seen[specs[i].Name] {
			return nil, fmt.Errorf("app %q is given twice: %w", specs[i].Name, api.ErrInvalid)
		}
		seen[specs[i].Name] = true
		if specs[i].Bus && s.deps.Bus != nil {
			// The first app with the bus starts it here, before anything
			// is created and without the lock held: starting binds a port
			// and writes bus.json.
			if _, err := s.deps.Bus.Env(); err != nil {
				return nil, fmt.Errorf("app %q: %w", specs[i].Name, err)
			}
		}
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, errClosing
	}
	for i := range specs {
		if a := s.byNameLocked(specs[i].Name); a != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("app %q already exists (id %d); use `tend restart %s` to apply changes, or `tend delete %s` first: %w",
				a.spec.Name, a.id, a.spec.Name, a.spec.Name, api.ErrConflict)
		}
	}
	var created []*app
	for i := range specs {
		a, err := s.addLocked(specs[i], s.deps.Clock.Now())
		if err != nil {
			var closers []AppLogs
			for _, c := range created {
				closers = append(closers, s.removeLocked(c))
			}
			s.mu.Unlock()
			s.closeLogs(closers...)
			return nil, err
		}
		created = append(created, a)
	}
	s.mu.Unlock()
	for i, a := range created {
		if !run[i] {
			continue
		}
		var err error
		s.withApp(a, func() { err = s.startLocked(a) })
		if err != nil {
			// A program that cannot even be started (not executable, a
			// wrong format) is refused like a bad spec: the apps created
			// here are stopped and removed, and nothing is left half done.
			for _, c := range created {
				_ = s.deleteApp(c)
			}
			return nil, err
		}
	}
	s.persist()
	return s.infos(created), nil
}

// addLocked creates the app and its instances, stopped.
func (s *Supervisor) addLocked(spec api.AppSpec, created time.Time) (*app, error) {
	lg, err := s.deps.Logs.Open(&spec)
	if err != nil {
		return nil, fmt.Errorf("app %q: open logs: %w", spec.Name, err)
	}
	a := &app{id: s.nextID, spec: spec, created: created, logs: lg}
	s.nextID++
	for slot := 0; slot < spec.Instances; slot++ {
		a.insts = append(a.insts, &instance{app: a, slot: slot, status: api.StatusStopped})
	}
	s.apps = append(s.apps, a)
	return a, nil
}

// removeLocked takes a out of the list. It returns its logs, which the
// caller closes once the lock is released: closing may wait for a rotated
// file's compression, and nothing else should wait for that.
func (s *Supervisor) removeLocked(a *app) AppLogs {
	a.deleted = true
	s.apps = slices.DeleteFunc(s.apps, func(x *app) bool { return x == a })
	return a.logs
}

func (s *Supervisor) closeLogs(logs ...AppLogs) {
	for _, l := range logs {
		if err := l.Close(); err != nil {
			s.deps.Log.Warn("close logs", "err", err)
		}
	}
}

// withApp runs f with the app's op lock and the supervisor lock held.
func (s *Supervisor) withApp(a *app, f func()) {
	a.op.Lock()
	defer a.op.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !a.deleted {
		f()
	}
}

func (s *Supervisor) byNameLocked(name string) *app {
	for _, a := range s.apps {
		if a.spec.Name == name {
			return a
		}
	}
	return nil
}

// resolve turns targets (names, ids, namespaces, "all") into apps, in id
// order without duplicates. An unknown target is an error and nothing is
// returned, so an action with a typo changes nothing.
func (s *Supervisor) resolve(targets []string) ([]*app, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(targets) == 0 {
		return nil, fmt.Errorf("no app named: %w", api.ErrInvalid)
	}
	picked := map[*app]bool{}
	for _, t := range targets {
		found := false
		for _, a := range s.apps {
			if t == "all" || a.spec.Name == t || strconv.Itoa(a.id) == t || (a.spec.Namespace != "" && a.spec.Namespace == t) {
				picked[a] = true
				found = true
			}
		}
		if !found && t != "all" {
			return nil, fmt.Errorf("app %q: %w", t, api.ErrNotFound)
		}
	}
	var out []*app
	for _, a := range s.apps {
		if picked[a] {
			out = append(out, a)
		}
	}
	return out, nil
}

// Act performs action on the apps req names and returns them as they are
// afterwards.
func (s *Supervisor) Act(ctx context.Context, action string, req api.ActionRequest) ([]api.AppInfo, error) {
	apps, err := s.resolve(req.Targets)
	if err != nil {
		return nil, err
	}
	var fn func(*app) error
	switch action {
	case api.ActionStart:
		fn = func(a *app) (err error) {
			s.withApp(a, func() {
				if err = errClosing; !s.closing {
					err = s.startLocked(a)
				}
			})
			return err
		}
	case api.ActionStop:
		fn = s.stopApp
	case api.ActionRestart:
		specs := map[string]*api.AppSpec{}
		for i := range req.Specs {
			if err := req.Specs[i].Validate(); err != nil {
				return nil, err
			}
			specs[req.Specs[i].Name] = &req.Specs[i]
		}
		fn = func(a *app) error { return s.restartApp(a, specs[a.spec.Name], req) }
	case api.ActionReload:
		specs := map[string]*api.AppSpec{}
		for i := range req.Specs {
			if err := req.Specs[i].Validate(); err != nil {
				return nil, err
			}
			specs[req.Specs[i].Name] = &req.Specs[i]
		}
		fn = func(a *app) error { return s.reloadApp(a, specs[a.spec.Name], req) }
	case api.ActionScale:
		if _, err := strconv.Atoi(strings.TrimSpace(req.Instances)); err != nil {
			return nil, fmt.Errorf("scale to %q: give a number, +N or -N: %w", req.Instances, api.ErrInvalid)
		}
		fn = func(a *app) error { return s.scaleApp(a, req.Instances) }
	case api.ActionDelete:
		fn = s.deleteApp
	case api.ActionReset:
		fn = func(a *app) error { s.withApp(a, func() { s.resetLocked(a) }); return nil }
	case api.ActionSignal:
		sig, err := api.ParseSignal(req.Signal)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", err, api.ErrInvalid)
		}
		fn = func(a *app) error { return s.signalApp(a, sig) }
	case api.ActionFlush:
		fn = func(a *app) error {
			s.mu.Lock()
			n := len(a.insts)
			s.mu.Unlock()
			return a.logs.Flush(n)
		}
	default:
		return nil, fmt.Errorf("unknown action %q: %w", action, api.ErrNotFound)
	}
	errs := make([]error, len(apps))
	var wg sync.WaitGroup
	for i, a := range apps {
		wg.Go(func() { errs[i] = fn(a) })
	}
	wg.Wait()
	s.persist()
	if action == api.ActionDelete {
		return nil, errors.Join(errs...)
	}
	return s.infos(apps), errors.Join(errs...)
}

// stopApp stops every instance of a and waits until they are gone.
func (s *Supervisor) stopApp(a *app) error {
	a.op.Lock()
	defer a.op.Unlock()
	s.stopAll(a, "stopped by `tend stop`", false)
	s.mu.Lock()
	s.closeSocketsLocked(a)
	s.mu.Unlock()
	return nil
}

// stopAll stops every instance of a and waits, without holding s.mu, until
// they are gone. wanted says whether a should still run (restart, a
// shutdown that keeps the state) or not (stop, delete). The caller holds
// a.op.
func (s *Supervisor) stopAll(a *app, why string, wanted bool) {
	s.mu.Lock()
	if !wanted {
		a.running = false
	}
	var waits []<-chan struct{}
	for _, in := range a.allInstances() {
		waits = append(waits, s.stopLocked(in, why))
	}
	s.mu.Unlock()
	for _, c := range waits {
		<-c
	}
}

// remove takes a, stopped, out of the list and closes its logs. The
// caller holds a.op.
func (s *Supervisor) remove(a *app) {
	s.mu.Lock()
	s.closeSocketsLocked(a)
	s.eventLocked(a, nil, api.EventDelete, nil)
	lg := s.removeLocked(a)
	s.mu.Unlock()
	s.closeLogs(lg)
}

// restartApp stops a and starts it again. A new spec (from a config file)
// replaces the old one; req.UpdateEnv replaces the inherited environment.
// Whatever can fail with the new spec (its log files) is tried before the
// app is stopped, so a bad spec leaves the app running as it was.
func (s *Supervisor) restartApp(a *app, spec *api.AppSpec, req api.ActionRequest) error {
	a.op.Lock()
	defer a.op.Unlock()
	return s.restartLocked(a, spec, req)
}

// restartLocked is restartApp with a.op held.
func (s *Supervisor) restartLocked(a *app, spec *api.AppSpec, req api.ActionRequest) error {
	var newLogs AppLogs
	if spec != nil {
		lg, err := s.deps.Logs.Open(spec)
		if err != nil {
			return fmt.Errorf("app %q: open logs: %w", spec.Name, err)
		}
		newLogs = lg
	}
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		s.closeLogs(newLogs)
		return errClosing
	}
	s.stopAll(a, "restarting", true)

	s.mu.Lock()
	var oldLogs AppLogs
	defer func() {
		s.mu.Unlock()
		if oldLogs != nil {
			s.closeLogs(oldLogs)
		}
	}()
	if a.deleted {
		oldLogs = newLogs
		return nil
	}
	if spec != nil {
		if !rollable(&a.spec, spec) {
			// New addresses or slots: bind afresh (nothing runs now).
			s.closeSocketsLocked(a)
		}
		oldLogs = a.logs
		a.logs, a.spec = newLogs, *spec
		for len(a.insts) < spec.Instances {
			a.insts = append(a.insts, &instance{app: a, slot: len(a.insts), status: api.StatusStopped})
		}
		a.insts = a.insts[:spec.Instances]
	}
	if req.UpdateEnv {
		a.spec.BaseEnv = filterEnv(req.BaseEnv, &a.spec)
	}
	for _, in := range a.insts {
		in.restarts++
		in.unstable, in.backoff = 0, 0
		s.eventLocked(a, in, api.EventRestart, func(e *api.Event) { e.Reason = "restarted by a user" })
	}
	if s.closing {
		return errClosing
	}
	return s.startLocked(a)
}

// filterEnv applies the app's filter_env to a fresh inherited environment.
func filterEnv(env map[string]string, spec *api.AppSpec) map[string]string {
	if spec.FilterAllEnv {
		return nil
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		if !hasAnyPrefix(k, spec.FilterEnv) {
			out[k] = v
		}
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if len(s) >= len(p) && s[:len(p)] == p {
			return true
		}
	}
	return false
}

// deleteApp stops a and removes it.
func (s *Supervisor) deleteApp(a *app) error {
	a.op.Lock()
	defer a.op.Unlock()
	s.stopAll(a, "deleted", false)
	s.remove(a)
	return nil
}

func (s *Supervisor) resetLocked(a *app) {
	for _, in := range a.insts {
		in.restarts, in.unstable, in.backoff = 0, 0, 0
	}
}

// signalApp sends sig to the main process of each running instance, as
// pm2's sendSignal does; for a command line run by /bin/sh, whose main
// process is the shell, to its whole process group, so the program gets it.
func (s *Supervisor) signalApp(a *app, sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sent := 0
	for _, in := range a.insts {
		if in.pid > 0 {
			send := s.deps.Reaper.Signal
			if a.spec.Shell {
				send = s.deps.Reaper.SignalGroup
			}
			if err := send(in.pid, sig); err != nil && !errors.Is(err, proc.ErrReaped) {
				return fmt.Errorf("app %q: %w", a.spec.Name, err)
			}
			sent++
		}
	}
	if sent == 0 {
		return fmt.Errorf("app %q has no running process to signal: %w", a.spec.Name, api.ErrConflict)
	}
	return nil
}

// Shutdown stops every app and waits. With keepState the stored state
// still says which apps should run, so the next daemon starts them again;
// otherwise every app is deleted (pm2's kill).
func (s *Supervisor) Shutdown(keepState bool) {
	s.mu.Lock()
	if !s.closing {
		close(s.shutdown)
	}
	s.closing = true
	apps := slices.Clone(s.apps)
	for _, a := range apps {
		for _, in := range a.insts {
			in.erroredAtClose = in.status == api.StatusErrored
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, a := range apps {
		wg.Go(func() {
			a.op.Lock()
			defer a.op.Unlock()
			s.stopAll(a, "the daemon is shutting down", true)
			s.mu.Lock()
			s.closeSocketsLocked(a)
			s.mu.Unlock()
			if !keepState {
				s.remove(a)
			}
		})
	}
	wg.Wait()
	s.writes.Wait()
	if !keepState {
		// pm2's kill starts the next daemon's ids from 0 again.
		s.mu.Lock()
		if len(s.apps) == 0 {
			s.nextID = 0
		}
		s.mu.Unlock()
	}
	s.persist()
}

// persist writes the state, if the Supervisor has a Store.
func (s *Supervisor) persist() {
	if s.deps.Store == nil {
		return
	}
	s.mu.Lock()
	s.gen++
	gen := s.gen
	f := s.snapshotLocked()
	s.mu.Unlock()
	if err := s.deps.Store.Write(gen, f); err != nil {
		s.deps.Log.Error("write state", "err", err)
	}
}

func (s *Supervisor) snapshotLocked() *state.File {
	f := &state.File{NextID: s.nextID}
	for _, a := range s.apps {
		sa := state.App{ID: a.id, Created: a.created, Running: a.running, Spec: a.spec}
		// One record per slot; processes a reload is retiring are not
		// stored (a new daemon finds every process by its environment).
		for _, in := range a.insts {
			si := state.Instance{Slot: in.slot, PID: in.pid, StartTicks: in.startTicks, Restarts: in.restarts}
			if in.status == api.StatusErrored && in.pid == 0 {
				si.Errored = in.reason
			}
			sa.Instances = append(sa.Instances, si)
		}
		f.Apps = append(f.Apps, sa)
	}
	return f
}

// Snapshot returns the state as it would be stored (for `tend save`).
func (s *Supervisor) Snapshot() *state.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}
