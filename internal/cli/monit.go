package cli

import (
	"context"
	"errors"
	"fmt"

	ucli "github.com/urfave/cli/v3"

	"github.com/tend-pm/tend/internal/monit"
)

func newMonit(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:    "monit",
		Aliases: []string{"monitor", "dashboard"},
		Usage:   "Watch and drive the apps in the terminal: CPU, memory, history, logs",
		Description: `A live view of every app and instance: status, CPU and memory (bars and a
history graph), restarts, uptime, and the selected app's logs. Keys: ↑↓ select,
r reload, R restart, s stop, S start, +/- scale, d delete (R, s and d ask first),
/ filter, ? help, q quit. If the daemon goes away, monit waits for it.`,
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			if !env.IO.OutTTY {
				return usagef("monit draws on a terminal; for scripts use `tend ls --json`, or GET /metrics on the control socket")
			}
			// The first request starts a daemon if none runs; afterwards
			// monit follows whichever daemon answers and starts none.
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			if _, err := cl.Ping(ctx); err != nil {
				return err
			}
			follow, err := env.connect(ctx, false)
			if err != nil {
				return err
			}
			// No warning on stderr about the daemon's version: it would be
			// written over the screen (after `tend update`, say). monit's
			// header shows a difference instead.
			follow.OnVersion = nil
			err = monit.Run(ctx, follow, monit.Options{Color: env.IO.Color})
			if err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("monit: %w", err)
			}
			return nil
		},
	}
}
