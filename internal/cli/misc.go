package cli

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/tend-pm/tend/internal/client"
	"github.com/tend-pm/tend/internal/daemon"
)

func newSave(env *Env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "save",
		Aliases: []string{"dump"},
		Short:   "Save the app list for `tend resurrect`",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Save(cmd.Context(), force)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.IO.Out, "saved %d apps to %s\n", res.Apps, res.Path)
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "save even an empty list")
	return cmd
}

func newResurrect(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "resurrect",
		Short: "Start the saved apps that are not in the list",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Resurrect(cmd.Context())
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

func newKill(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "kill",
		Short: "Stop and delete every app, and stop the daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			was, err := stopDaemon(cmd, env, false)
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

func newUpdate(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "update",
		Short: "Restart the daemon on this tend binary, keeping the app list",
		Long: `Restart the daemon on this tend binary, keeping the app list: the apps are
stopped, the daemon exits, and a new daemon from this binary starts them again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := stopDaemon(cmd, env, true); err != nil {
				return err
			}
			c, err := env.Client(cmd.Context())
			if err != nil {
				return err
			}
			p, err := c.Ping(cmd.Context())
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
func stopDaemon(cmd *cobra.Command, env *Env, keepState bool) (bool, error) {
	ctx := cmd.Context()
	c, err := env.RunningClient(ctx)
	if err != nil {
		return false, err
	}
	if err := c.Kill(ctx, keepState); errors.Is(err, client.ErrNoDaemon) {
		return false, nil
	} else if err != nil {
		return true, err
	}
	c.Close()
	env.client = nil
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Ping(ctx); errors.Is(err, client.ErrNoDaemon) {
			return true, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true, fmt.Errorf("the daemon still answers 10s after it was told to stop")
}

func newPing(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "ping",
		Short: "Check that the daemon answers (starting it if needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client(cmd.Context())
			if err != nil {
				return err
			}
			p, err := c.Ping(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(env.IO.Out, "pong: tend %s, pid %d, up %s, home %s\n", p.Version, p.PID, humanDuration(env.IO.Now().Sub(p.Started)), p.Home)
			return nil
		},
	}
}

func newDaemon(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "daemon",
		Short: "Run the daemon in the foreground (other commands start it when needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			home, err := env.Home()
			if err != nil {
				return err
			}
			o := daemon.Options{Home: home}
			if s := env.IO.getenv(readyFDEnv); s != "" {
				fd, err := strconv.Atoi(s)
				if err != nil {
					return usagef("%s=%q is not a file descriptor", readyFDEnv, s)
				}
				o.Ready = os.NewFile(uintptr(fd), "ready")
			}
			return daemon.Run(cmd.Context(), o)
		},
	}
}
