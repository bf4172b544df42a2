package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/client"
	"github.com/tend-pm/tend/internal/daemon"
	"github.com/tend-pm/tend/internal/units"
)

func newSave(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:    "save",
		Aliases: []string{"dump"},
		Usage:   "Save the app list for `tend resurrect`",
		Flags:   []ucli.Flag{&ucli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "save even an empty list"}},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			res, err := cl.Save(ctx, c.Bool("force"))
			if err != nil {
				return err
			}
			fmt.Fprintf(env.IO.Out, "saved %d apps to %s\n", res.Apps, res.Path)
			return nil
		},
	}
}

func newResurrect(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "resurrect",
		Usage: "Start the saved apps that are not in the list",
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			res, err := cl.Resurrect(ctx)
			if err != nil {
				return err
			}
			if len(res.Apps) == 0 {
				fmt.Fprintln(env.IO.Out, "every saved app is already in the list")
				return nil
			}
			return printApps(env.IO, res.Apps)
		},
	}
}

func newKill(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "kill",
		Usage: "Stop and delete every app, and stop the daemon",
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			was, err := stopDaemon(ctx, env, false)
			if err != nil {
				return err
			}
			if !was {
				home, _ := env.Home()
				fmt.Fprintf(env.IO.Out, "no daemon was running for %s\n", home)
				return nil
			}
			fmt.Fprintln(env.IO.Out, "daemon stopped")
			return nil
		},
	}
}

func newUpdate(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "update",
		Usage: "Restart the daemon on this tend binary, keeping the app list",
		Description: `Restart the daemon on this tend binary, keeping the app list: the apps are
stopped, the daemon exits, and a new daemon from this binary starts them again.`,
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			// The new daemon reads config.yaml as it starts: a mistake
			// there is found now, while the old daemon still runs the apps.
			home, err := env.Home()
			if err != nil {
				return err
			}
			if _, err := daemon.LoadConfig(home); err != nil {
				return fmt.Errorf("%w\nnothing was stopped: fix the file and run `tend update` again: %w", err, api.ErrInvalid)
			}
			if _, err := stopDaemon(ctx, env, true); err != nil {
				return err
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			p, err := cl.Ping(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.IO.Out, "daemon restarted: tend %s, pid %d\n", p.Version, p.PID)
			return nil
		},
	}
}

// stopDaemon asks the daemon to stop every app and exit, and waits until
// its socket no longer answers, so that when the command returns nothing
// it started is left. It reports whether a daemon was running.
func stopDaemon(ctx context.Context, env *Env, keepState bool) (bool, error) {
	c, err := env.RunningClient(ctx)
	if err != nil {
		return false, err
	}
	if err := c.Kill(ctx, keepState); errors.Is(err, client.ErrNoDaemon) {
		return false, nil
	} else if err != nil {
		return true, err
	}
	env.client = nil
	// The daemon holds the lock on its pid file until its process ends,
	// after its last clean-up: that, not a refused connection, is the sign
	// that it is gone.
	home, err := env.Home()
	if err != nil {
		return true, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if daemon.Exited(filepath.Join(home, daemon.PIDFile)) {
			return true, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true, fmt.Errorf("the daemon is still running 10s after it was told to stop (see %s)", filepath.Join(home, daemon.LogFile))
}

func newPing(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "ping",
		Usage: "Check that the daemon answers (starting it if needed)",
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			p, err := cl.Ping(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.IO.Out, "pong: tend %s, pid %d, up %s, home %s\n", p.Version, p.PID, units.Duration(env.IO.Now().Sub(p.Started)), p.Home)
			return nil
		},
	}
}

func newDaemon(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "daemon",
		Usage: "Run the daemon in the foreground (other commands start it when needed)",
		Description: `Run the daemon in the foreground (other commands start it when needed).
Its settings may also come from the environment of the command that
starts it: TEND_METRICS_ADDR, TEND_SAMPLE_INTERVAL.`,
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "metrics-addr", Sources: ucli.EnvVars("TEND_METRICS_ADDR"),
				Usage: "also serve /metrics on this TCP address (9464 means 127.0.0.1:9464), to scrapers sending the bearer token of $TEND_HOME/metrics.token"},
			&ucli.StringFlag{Name: "sample-interval", Sources: ucli.EnvVars("TEND_SAMPLE_INTERVAL"),
				Usage: "how often CPU and memory are sampled (e.g. 1s, 500ms)", Value: "1s"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			home, err := env.Home()
			if err != nil {
				return err
			}
			every, err := time.ParseDuration(c.String("sample-interval"))
			if err != nil || every < 50*time.Millisecond || every > time.Hour {
				return usagef("--sample-interval %q: give a duration from 50ms to 1h, like 1s", c.String("sample-interval"))
			}
			if a := c.String("metrics-addr"); a != "" {
				if _, err := daemon.ParseMetricsAddr(a); err != nil {
					return err
				}
			}
			o := daemon.Options{Home: home, MetricsAddr: c.String("metrics-addr"), SampleEvery: every}
			if s := env.IO.getenv(readyFDEnv); s != "" {
				fd, err := strconv.Atoi(s)
				if err != nil {
					return usagef("%s=%q is not a file descriptor", readyFDEnv, s)
				}
				o.Ready = os.NewFile(uintptr(fd), "ready")
			}
			return daemon.Run(ctx, o)
		},
	}
}
