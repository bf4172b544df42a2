// Package daemon wires tend's daemon together: it takes the lock, becomes
// the subreaper of everything it starts, restores the stored state, serves
// the control API on the socket, and on shutdown stops every app before it
// exits.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/apiserver"
	"github.com/tend-pm/tend/internal/applog"
	"github.com/tend-pm/tend/internal/bus"
	"github.com/tend-pm/tend/internal/clock"
	"github.com/tend-pm/tend/internal/logs"
	"github.com/tend-pm/tend/internal/nodeshim"
	"github.com/tend-pm/tend/internal/notify"
	"github.com/tend-pm/tend/internal/proc"
	"github.com/tend-pm/tend/internal/rawnet"
	"github.com/tend-pm/tend/internal/socket"
	"github.com/tend-pm/tend/internal/state"
	"github.com/tend-pm/tend/internal/supervisor"
)

// Files inside TEND_HOME.
const (
	PIDFile   = "daemon.pid" // holds the pid, and its lock is the daemon's
	LogFile   = "daemon.log"
	StateFile = "state.json"
	DumpFile  = "dump.json"
	LogsDir   = "logs"
)

// ErrAlreadyRunning means another daemon holds the lock of this TEND_HOME.
var ErrAlreadyRunning = errors.New("a daemon is already running for this TEND_HOME")

// Options configure Run.
type Options struct {
	Home string
	// Ready, if set, receives "ok\n" once the daemon answers on its socket,
	// or the error that stopped it from starting; then it is closed. The
	// CLI that auto-starts a daemon waits on it.
	Ready *os.File
	// MetricsAddr, if set, is a TCP address to serve /metrics on too,
	// to scrapers that send the token of TokenFile (see ParseMetricsAddr).
	MetricsAddr string
	// SampleEvery is the sampler's cadence (0: every second).
	SampleEvery time.Duration
}

// Run runs the daemon until it is told to stop (SIGTERM, SIGINT, or a kill
// request) and every app is stopped.
func Run(ctx context.Context, o Options) (err error) {
	ready := o.Ready
	// say answers the CLI waiting on Ready, once: "ok", or why not.
	say := func(msg string) {
		if ready != nil {
			_, _ = io.WriteString(ready, msg+"\n")
			ready.Close()
			ready = nil
		}
	}
	defer func() {
		if r := recover(); r != nil {
			say(fmt.Sprintf("the daemon crashed: %v", r))
			panic(r)
		}
		if err != nil {
			say(err.Error())
		}
	}()
	closeInherited(o.Ready)
	home := o.Home
	var metricsAddr rawnet.Addr
	if o.MetricsAddr != "" {
		if metricsAddr, err = ParseMetricsAddr(o.MetricsAddr); err != nil {
			return err
		}
	}
	sockPath, err := socket.Path(home)
	if err != nil {
		return err
	}
	if err := socket.EnsureHome(home); err != nil {
		return err
	}
	lock, err := acquireLock(filepath.Join(home, PIDFile))
	if err != nil {
		return err
	}
	defer lock.Close()

	// The daemon's own log rotates like an app's, so a daemon that runs
	// for months beside a flapping app does not fill the disk either.
	logf, err := logs.OpenFile(filepath.Join(home, LogFile), logs.FileOptions{MaxSize: 10 << 20, Retain: 3, Compress: true})
	if err != nil {
		return fmt.Errorf("open daemon log: %w", err)
	}
	defer func() { _ = logf.Close() }() // nothing is left to log a failure to
	log := slog.New(slog.NewTextHandler(logf, nil))
	log.Info("daemon starting", "version", api.Version(), "pid", os.Getpid())

	if err := proc.BecomeSubreaper(); err != nil {
		log.Warn("cannot become a subreaper; orphaned grandchildren will go to init", "err", err)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR2, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	resetIgnoredSignals()

	st, err := state.Load(filepath.Join(home, StateFile))
	if err != nil {
		return fmt.Errorf("%w; move the file away to start with no apps", err)
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		return err
	}
	if o.MetricsAddr == "" && cfg.Metrics.Addr != "" {
		// The flag (or TEND_METRICS_ADDR) wins over config.yaml.
		o.MetricsAddr = cfg.Metrics.Addr
		metricsAddr, _ = ParseMetricsAddr(o.MetricsAddr) // checked by LoadConfig
	}
	// The socket comes before any app starts: a daemon that cannot serve
	// must not leave apps running that nobody can reach.
	ln, err := socket.Listen(sockPath)
	if err != nil {
		return err
	}
	// The metrics listener is bound before any app starts too, but a
	// failure (the port is taken) is not fatal: the daemon is started by
	// whatever command runs first, so a fatal error would fail every
	// command and keep every app down (after a reboot, say) for the sake
	// of one scraper, whose figures the control socket still serves. The
	// log says why, as for the bus.
	var metricsLn *metricsListener
	if o.MetricsAddr != "" {
		l, lerr := listenMetrics(home, metricsAddr)
		if lerr != nil {
			log.Error("no metrics listener; running without it (/metrics is still served on the control socket)", "addr", metricsAddr.String(), "err", lerr)
		} else {
			metricsLn = l
			defer metricsLn.Close()
		}
	}
	if err := writePID(lock); err != nil {
		log.Warn("write pid file", "err", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	clk := clock.Real{}
	router := applog.NewRouter(filepath.Join(home, LogsDir), clk, log)
	var sup *supervisor.Supervisor
	reaper := proc.NewReaper(func() { sup.OnReap() })
	bs := bus.New(bus.Config{Home: home, Host: cfg.Bus.Host, Port: cfg.Bus.Port, Leafs: cfg.Bus.Leafnodes, Log: log})
	defer bs.Close()
	if busWanted(cfg, home) {
		// A bus that cannot start costs its users the bus, not everyone
		// the daemon; `tend bus` and apps with bus: true say why.
		if err := bs.Start(); err != nil {
			log.Error("bus", "err", err)
		}
	}
	host, _ := os.Hostname() // only a label in events; empty is fine
	deps := supervisor.Deps{
		Clock: clk, Reaper: reaper, Logs: router, Home: home, Log: log,
		Store: state.NewStore(filepath.Join(home, StateFile)),
		Exe:   selfExe(),
		Bus:   bs,
		Host:  host,
		// How often the sampler reads /proc (0: every second); the
		// memory limit acts at this cadence, and its events go on the bus.
		SampleEvery: o.SampleEvery,
	}
	// Readiness messages: a missing notify socket or preload costs apps
	// their fast readiness (they fall back to listen_timeout), not their
	// start, so neither is fatal.
	nl, err := notify.Listen(filepath.Join(home, notify.Name), os.Getuid())
	if err != nil {
		log.Warn("no NOTIFY_SOCKET for instances", "err", err)
	} else {
		defer func() { _ = nl.Close() }()
		nl.Log = log
		deps.NotifySocket = nl.Path()
	}
	if p, err := installPreload(filepath.Join(home, "node")); err != nil {
		log.Warn("no Node.js preload for instances", "err", err)
	} else {
		deps.NodePreload = p
	}
	sup = supervisor.New(deps)
	if nl != nil {
		// A refused METRIC= line is worth a warning, or its sender never
		// learns why its numbers do not show; but one a minute per app,
		// as a sender may repeat it many times a second.
		warns := newRateLimit(time.Minute, clk.Now)
		go nl.Serve(func(pid int, msg string) {
			err := sup.Notify(pid, msg)
			var me *supervisor.MetricError
			switch {
			case err == nil:
			case errors.As(err, &me):
				if ok, held := warns.allow(me.App); ok {
					log.Warn("notify: refused", "app", me.App, "instance", me.Slot, "pid", pid, "err", err, "held_back", held)
				}
			default:
				log.Debug("notify", "pid", pid, "err", err)
			}
		})
	}
	go reaper.Run(ctx)
	if err := sup.Restore(st); err != nil {
		_ = ln.Close()
		sup.Shutdown(true)
		return fmt.Errorf("restore %s: %w", StateFile, err)
	}

	d := &daemon{home: home, sup: sup, router: router, bus: bs, started: time.Now(), log: log, exit: cancel}
	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := apiserver.Serve(serveCtx, ln, apiserver.New(d, os.Getuid(), log), log); err != nil {
			// Said at once: nobody can reach the daemon any more.
			log.Error("the control socket stopped accepting connections", "err", err)
		}
	}()
	go sup.RunSampler(ctx)
	metricsDone := func() {}
	if metricsLn != nil {
		metricsDone = d.serveMetrics(serveCtx, metricsLn, log, clk.Now)
	}
	say("ok")
	log.Info("daemon ready", "socket", sockPath)

	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP, syscall.SIGUSR2:
				if err := router.ReopenAll(); err != nil {
					log.Error("reopen logs", "err", err)
				}
			default:
				log.Info("stopping every app before exiting; they start again with the next daemon", "signal", sig.String())
				// A second signal while the apps stop means: now.
				go func() {
					<-sigs
					log.Warn("second signal: killing everything at once")
					sweep(log)
					os.Exit(1)
				}()
				d.Kill(true)
				done = true
			}
		}
	}
	stopServing()
	<-served
	metricsDone()
	sweep(log)
	log.Info("daemon stopped")
	return nil
}

// daemon implements apiserver.Backend.
type daemon struct {
	home    string
	sup     *supervisor.Supervisor
	router  *applog.Router
	bus     *bus.Bus
	started time.Time
	log     *slog.Logger
	exit    func()

	killOnce sync.Once
}

var _ apiserver.Backend = (*daemon)(nil)

func (d *daemon) Ping() api.Ping {
	return api.Ping{Version: api.Version(), PID: os.Getpid(), Home: d.home, Started: d.started}
}

func (d *daemon) List() []api.AppInfo { return d.sup.List() }

func (d *daemon) Notify(pid int, msg string) error { return d.sup.Notify(pid, msg) }

func (d *daemon) Monitor(history string, points int) (api.Monitor, error) {
	return d.sup.Monitor(history, points)
}

// selfExe is this binary, for the exec wrapper. On Linux /proc/self/exe
// still executes it after the file on disk was replaced by an upgrade.
func selfExe() string {
	if runtime.GOOS == "linux" {
		return "/proc/self/exe"
	}
	exe, _ := os.Executable()
	return exe
}

func (d *daemon) Describe(target string) ([]api.AppDetail, error) { return d.sup.Describe(target) }

func (d *daemon) Create(ctx context.Context, specs []api.AppSpec) ([]api.AppInfo, error) {
	return d.sup.Create(ctx, specs)
}

func (d *daemon) Act(ctx context.Context, action string, req api.ActionRequest) ([]api.AppInfo, error) {
	return d.sup.Act(ctx, action, req)
}

func (d *daemon) ReopenLogs() error { return d.router.ReopenAll() }

// Kill stops every app, then makes Run return once the answer is sent.
func (d *daemon) Kill(keepState bool) {
	d.killOnce.Do(func() {
		d.sup.Shutdown(keepState)
		d.exit()
	})
}

// Save writes the app list for resurrect, keeping the previous one as
// dump.json.bak. An empty list is refused without force: saving it by
// mistake would make the next resurrect bring nothing back.
func (d *daemon) Save(force bool) (api.SaveResult, error) {
	snap := d.sup.Snapshot()
	for i := range snap.Apps {
		snap.Apps[i].Instances = nil
	}
	path := filepath.Join(d.home, DumpFile)
	if len(snap.Apps) == 0 && !force {
		return api.SaveResult{}, fmt.Errorf("no apps to save; `tend save --force` saves the empty list, which makes resurrect start nothing: %w", api.ErrConflict)
	}
	if old, err := os.ReadFile(path); err == nil {
		if err := state.WriteFile(path+".bak", old); err != nil {
			return api.SaveResult{}, err
		}
	}
	b, err := state.Encode(snap)
	if err != nil {
		return api.SaveResult{}, err
	}
	if err := state.WriteFile(path, b); err != nil {
		return api.SaveResult{}, err
	}
	return api.SaveResult{Path: path, Apps: len(snap.Apps)}, nil
}

// Resurrect creates the saved apps that do not exist, running or stopped
// as they were saved.
func (d *daemon) Resurrect(ctx context.Context) ([]api.AppInfo, error) {
	path := filepath.Join(d.home, DumpFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("nothing saved yet (%s does not exist); `tend save` writes it: %w", path, api.ErrNotFound)
	}
	f, err := state.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, api.ErrInvalid)
	}
	existing := map[string]bool{}
	for _, a := range d.sup.List() {
		existing[a.Name] = true
	}
	var specs []api.AppSpec
	var run []bool
	for _, a := range f.Apps {
		if !existing[a.Spec.Name] {
			specs = append(specs, a.Spec)
			run = append(run, a.Running)
		}
	}
	if len(specs) == 0 {
		return nil, nil
	}
	return d.sup.Add(ctx, specs, run)
}

func (d *daemon) Logs(ctx context.Context, q apiserver.LogQuery, emit func(api.LogLine) error) error {
	apps, err := d.sup.Describe(q.Target)
	if err != nil {
		return err
	}
	return d.router.Stream(ctx, apps, applog.Query{Instance: q.Instance, Stream: q.Stream, Lines: q.Lines, Follow: q.Follow}, emit)
}

// acquireLock opens and locks the pid file. The kernel drops the lock when
// the daemon dies however it dies, so a stale file never blocks the next
// daemon, and two daemons racing to start never both run. The file is
// never removed: a daemon that unlinked it on exit could let the next two
// lock different files.
func acquireLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrAlreadyRunning
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// Exited reports whether no daemon holds the lock of the pid file at path:
// the daemon that held it has exited (or none ever ran).
func Exited(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return false
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return true
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// installPreload writes tend's Node.js preload script into dir.
func installPreload(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return nodeshim.Install(dir)
}
