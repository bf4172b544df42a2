package cli

import (
	"context"
	"fmt"
	"strconv"

	ucli "github.com/urfave/cli/v3"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/config"
)

type actionKind struct {
	name, usage string
	aliases     []string
	action      string
	updateEnv   bool // takes --update-env
}

var (
	actionStop    = actionKind{name: "stop", usage: "Stop apps; they stay in the list", action: api.ActionStop}
	actionRestart = actionKind{name: "restart", usage: "Stop and start apps again (a config file's apps take its current spec)", action: api.ActionRestart, updateEnv: true}
	actionReload  = actionKind{name: "reload", usage: "Replace apps' processes one slot at a time, each new one ready before the old one stops (zero downtime)", action: api.ActionReload, updateEnv: true}
	actionDelete  = actionKind{name: "delete", aliases: []string{"del"}, usage: "Stop apps and remove them from the list", action: api.ActionDelete}
	actionReset   = actionKind{name: "reset", usage: "Set apps' restart counters to zero", action: api.ActionReset}
)

func newAction(env *Env, k actionKind) *ucli.Command {
	flags := []ucli.Flag{
		&ucli.StringFlag{Name: "env", Usage: "with a config file: use its env_<name>"},
		&ucli.StringSliceFlag{Name: "only", Usage: "with a config file: only these apps (comma-separated)"},
	}
	if k.updateEnv {
		flags = append(flags, &ucli.BoolFlag{Name: "update-env", Aliases: []string{"a"}, Usage: "give the apps this shell's environment instead of the one they were started with"})
	}
	return &ucli.Command{
		Name:          k.name,
		Aliases:       k.aliases,
		Usage:         k.usage,
		ArgsUsage:     "<app|id|all|config file>...",
		Flags:         flags,
		ShellComplete: completeApps(env),
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 1, -1); err != nil {
				return err
			}
			args := c.Args().Slice()
			req := api.ActionRequest{Targets: args}
			var missing []api.AppSpec
			if len(args) == 1 && config.IsConfigFile(args[0]) && fileExists(args[0], env.IO.Cwd) {
				f, err := config.Load(args[0], config.Options{Cwd: env.IO.Cwd, Environ: env.IO.Environ, EnvName: c.String("env"), Only: onlyFlag(c)})
				if err != nil {
					return err
				}
				printWarnings(env.IO, f.Warnings)
				req.Targets = nil
				for _, s := range f.Apps {
					req.Targets = append(req.Targets, s.Name)
				}
				if k.action == api.ActionRestart || k.action == api.ActionReload {
					req.Specs = f.Apps
				}
				if k.action == api.ActionReload || k.action == api.ActionRestart {
					// pm2's startOrReload: apps of the file that do not
					// run yet are started.
					if req.Targets, req.Specs, missing, err = splitMissing(ctx, env, f.Apps); err != nil {
						return err
					}
				}
			}
			if k.updateEnv && c.Bool("update-env") {
				req.UpdateEnv = true
				req.BaseEnv = environMap(env.IO.Environ)
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			var started []api.AppInfo
			if len(missing) > 0 {
				r, err := cl.Start(ctx, api.StartRequest{Apps: missing})
				if err != nil {
					return err
				}
				started = r.Apps
			}
			if len(req.Targets) == 0 {
				return printApps(env.IO, started)
			}
			res, err := cl.Act(ctx, k.action, req)
			if err != nil {
				return err
			}
			res.Apps = append(started, res.Apps...)
			if k.action == api.ActionDelete {
				for _, t := range req.Targets {
					fmt.Fprintf(env.IO.Out, "deleted %s\n", t)
				}
				return nil
			}
			return printApps(env.IO, res.Apps)
		},
	}
}

func newSignal(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "sendSignal",
		Aliases:   []string{"signal"},
		Usage:     "Send a signal to apps' main processes",
		ArgsUsage: "<signal> <app|id|all>...",
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 2, -1); err != nil {
				return err
			}
			args := c.Args().Slice()
			if _, err := api.ParseSignal(args[0]); err != nil {
				return usagef("%v", err)
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			res, err := cl.Act(ctx, api.ActionSignal, api.ActionRequest{Targets: args[1:], Signal: args[0]})
			if err != nil {
				return err
			}
			for _, a := range res.Apps {
				fmt.Fprintf(env.IO.Out, "sent %s to %s\n", args[0], a.Name)
			}
			return nil
		},
	}
}

func newFlush(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:          "flush",
		Usage:         "Empty apps' log files",
		ArgsUsage:     "[app|id|all]...",
		ShellComplete: completeApps(env),
		Action: func(ctx context.Context, c *ucli.Command) error {
			args := c.Args().Slice()
			if len(args) == 0 {
				args = []string{"all"}
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			res, err := cl.Act(ctx, api.ActionFlush, api.ActionRequest{Targets: args})
			if err != nil {
				return err
			}
			for _, a := range res.Apps {
				fmt.Fprintf(env.IO.Out, "flushed the logs of %s\n", a.Name)
			}
			return nil
		},
	}
}

func newReloadLogs(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "reloadLogs",
		Usage: "Reopen every log file (after an external logrotate moved them)",
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			if err := cl.ReopenLogs(ctx); err != nil {
				return err
			}
			fmt.Fprintln(env.IO.Out, "log files reopened")
			return nil
		},
	}
}

// splitMissing splits a config file's apps into those the daemon runs
// (targets, with their specs) and those it does not have yet.
func splitMissing(ctx context.Context, env *Env, apps []api.AppSpec) (targets []string, specs, missing []api.AppSpec, err error) {
	cl, err := env.Client(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	have, err := cl.List(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	known := map[string]bool{}
	for _, a := range have {
		known[a.Name] = true
	}
	for _, s := range apps {
		if known[s.Name] {
			targets = append(targets, s.Name)
			specs = append(specs, s)
		} else {
			missing = append(missing, s)
		}
	}
	return targets, specs, missing, nil
}

func newScale(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:          "scale",
		Usage:         "Set an app's number of instances: N, +N (add) or -N (remove); the others keep running",
		ArgsUsage:     "<app|id> <N|+N|-N>",
		ShellComplete: completeApps(env),
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 2, 2); err != nil {
				return err
			}
			app, how := c.Args().Get(0), c.Args().Get(1)
			if _, err := strconv.Atoi(how); err != nil {
				return usagef("scale %s to %q: give a number, +N or -N", app, how)
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			res, err := cl.Act(ctx, api.ActionScale, api.ActionRequest{Targets: []string{app}, Instances: how})
			if err != nil {
				return err
			}
			return printApps(env.IO, res.Apps)
		},
	}
}
