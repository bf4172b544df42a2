package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/client"
	"github.com/tend-pm/tend/internal/daemon"
	"github.com/tend-pm/tend/internal/socket"
)

// errDaemonStart marks a daemon that could not be started.
var errDaemonStart = errors.New("could not start the daemon")

// readyFDEnv tells a daemon started by the CLI which fd to report its
// readiness on.
const readyFDEnv = "TEND_READY_FD"

// startTimeout bounds the wait for a new daemon to answer.
const startTimeout = 15 * time.Second

// connect returns a client of the daemon of TEND_HOME. It does not
// contact the daemon: the command's own request does. With autostart, a
// request that finds no daemon starts one and is sent again; two CLIs doing
// this at once start one daemon between them, because the daemon's lock
// lets only one run and the loser reports that the other exists.
func (e *Env) connect(ctx context.Context, autostart bool) (*client.Client, error) {
	home, err := e.Home()
	if err != nil {
		return nil, err
	}
	path, err := socket.Path(home)
	if err != nil {
		return nil, err
	}
	c := client.New(path)
	c.OnVersion = func(v string) {
		fmt.Fprintf(e.IO.Err, "tend: warning: the daemon runs tend %s but this is tend %s; `tend update` restarts the daemon on this version (apps are restarted, their list is kept)\n", v, api.Version())
	}
	if autostart {
		c.StartDaemon = func(ctx context.Context) error { return e.ensureDaemon(ctx, home, path) }
	}
	return c, nil
}

// ensureDaemon starts a daemon and waits until its socket answers. If
// another daemon holds the lock (another CLI won the race, or a daemon is
// on its way out after `tend kill`), it waits for that one, and tries again
// should it go away without answering.
func (e *Env) ensureDaemon(ctx context.Context, home, path string) error {
	probe := client.New(path)
	deadline := time.Now().Add(startTimeout)
	var err error
	for {
		if err := e.startDaemon(ctx, home); err != nil {
			return err
		}
		for retry := time.Now().Add(time.Second); time.Now().Before(retry); {
			if _, err = probe.Ping(ctx); err == nil {
				return nil
			}
			if !errors.Is(err, client.ErrNoDaemon) {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: it does not answer on %s: %w (see %s)", errDaemonStart, path, err, filepath.Join(home, "daemon.log"))
		}
	}
}

// startDaemon re-executes this binary as `tend daemon`, detached in its own
// session, and waits for it to say it is ready (or why it is not) on a
// pipe: caddy's pingback, which spares the CLI from guessing with sleeps.
func (e *Env) startDaemon(ctx context.Context, home string) error {
	if err := socket.EnsureHome(home); err != nil {
		return err
	}
	// A mistake in config.yaml would stop the daemon; said here, it is
	// the user's to fix (exit 2) rather than a daemon that cannot start.
	if _, err := daemon.LoadConfig(home); err != nil {
		return fmt.Errorf("%w: %w", err, api.ErrInvalid)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("%w: %w", errDaemonStart, err)
	}
	defer r.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return fmt.Errorf("%w: %w", errDaemonStart, err)
	}
	defer devnull.Close()
	// The daemon's stdout and stderr go to its log, so that even a crash
	// of the Go runtime leaves its trace there.
	logf, err := os.OpenFile(filepath.Join(home, "daemon.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		w.Close()
		return fmt.Errorf("%w: %w", errDaemonStart, err)
	}
	defer logf.Close()
	env := append(withoutVar(e.IO.Environ, "TEND_HOME", readyFDEnv), "TEND_HOME="+home, readyFDEnv+"=3")
	p, err := os.StartProcess(e.IO.Exe, []string{e.IO.Exe, "daemon"}, &os.ProcAttr{
		Dir:   "/",
		Env:   env,
		Files: []*os.File{devnull, logf, logf, w},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	w.Close()
	if err != nil {
		return fmt.Errorf("%w: %w", errDaemonStart, err)
	}
	type answer struct {
		line string
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		ch <- answer{strings.TrimSpace(line), err}
	}()
	var a answer
	select {
	case a = <-ch:
	case <-time.After(startTimeout):
		_ = p.Release()
		return fmt.Errorf("%w: no answer within %s (see %s)", errDaemonStart, startTimeout, filepath.Join(home, "daemon.log"))
	case <-ctx.Done():
		_ = p.Release()
		return ctx.Err()
	}
	switch {
	case a.line == "ok":
		_ = p.Release()
		return nil
	case strings.Contains(a.line, "already running"):
		_, _ = p.Wait()
		return nil
	case a.line == "":
		_, _ = p.Wait()
		return fmt.Errorf("%w: it exited without a word (see %s)", errDaemonStart, filepath.Join(home, "daemon.log"))
	default:
		_, _ = p.Wait()
		return fmt.Errorf("%w: %s", errDaemonStart, a.line)
	}
}

func withoutVar(environ []string, names ...string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			drop = drop || k == n
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}
