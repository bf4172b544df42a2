package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/config"
)

type actionKind struct {
	use, short string
	aliases    []string
	action     string
	updateEnv  bool // takes --update-env
}

var (
	actionStop    = actionKind{use: "stop", short: "Stop apps; they stay in the list", action: api.ActionStop}
	actionRestart = actionKind{use: "restart", short: "Stop and start apps again (a config file's apps take its current spec)", action: api.ActionRestart, updateEnv: true}
	actionReload  = actionKind{use: "reload", short: "Restart apps (rolling, zero-downtime reload comes with cluster mode)", action: api.ActionRestart, updateEnv: true}
	actionDelete  = actionKind{use: "delete", aliases: []string{"del"}, short: "Stop apps and remove them from the list", action: api.ActionDelete}
	actionReset   = actionKind{use: "reset", short: "Set apps' restart counters to zero", action: api.ActionReset}
)

func newAction(env *Env, k actionKind) *cobra.Command {
	var o struct {
		updateEnv bool
		envName   string
		only      []string
	}
	cmd := &cobra.Command{
		Use:     k.use + " <app|id|all|config file>...",
		Aliases: k.aliases,
		Short:   k.short,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.ActionRequest{Targets: args}
			if len(args) == 1 && config.IsConfigFile(args[0]) && fileExists(args[0], env.IO.Cwd) {
				f, err := config.Load(args[0], config.Options{Cwd: env.IO.Cwd, Environ: env.IO.Environ, EnvName: o.envName, Only: o.only})
				if err != nil {
					return err
				}
				for _, w := range f.Warnings {
					fmt.Fprintf(env.IO.Err, "tend: warning: %s\n", w)
				}
				req.Targets = nil
				for _, s := range f.Apps {
					req.Targets = append(req.Targets, s.Name)
				}
				if k.action == api.ActionRestart {
					req.Specs = f.Apps
				}
			}
			if o.updateEnv {
				req.UpdateEnv = true
				req.BaseEnv = environMap(env.IO.Environ)
			}
			c, err := env.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Act(cmd.Context(), k.action, req)
			if err != nil {
				return err
			}
			if k.action == api.ActionDelete {
				for _, t := range req.Targets {
					fmt.Fprintf(env.IO.Out, "deleted %s\n", t)
				}
				return nil
			}
			return printApps(env.IO, res.Apps)
		},
		ValidArgsFunction: completeApps(env),
	}
	if k.updateEnv {
		cmd.Flags().BoolVarP(&o.updateEnv, "update-env", "a", false, "give the apps this shell's environment instead of the one they were started with")
	}
	cmd.Flags().StringVar(&o.envName, "env", "", "with a config file: use its env_<name>")
	cmd.Flags().StringSliceVar(&o.only, "only", nil, "with a config file: only these apps")
	return cmd
}

func newSignal(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "sendSignal <signal> <app|id|all>...",
		Aliases: []string{"signal"},
		Short:   "Send a signal to apps' main processes",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := api.ParseSignal(args[0]); err != nil {
				return usagef("%v", err)
			}
			c, err := env.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Act(cmd.Context(), api.ActionSignal, api.ActionRequest{Targets: args[1:], Signal: args[0]})
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

func newFlush(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "flush [app|id|all]...",
		Short: "Empty apps' log files",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{"all"}
			}
			c, err := env.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := c.Act(cmd.Context(), api.ActionFlush, api.ActionRequest{Targets: args})
			if err != nil {
				return err
			}
			for _, a := range res.Apps {
				fmt.Fprintf(env.IO.Out, "flushed the logs of %s\n", a.Name)
			}
			return nil
		},
		ValidArgsFunction: completeApps(env),
	}
}

func newReloadLogs(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "reloadLogs",
		Short: "Reopen every log file (after an external logrotate moved them)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := env.Client(cmd.Context())
			if err != nil {
				return err
			}
			if err := c.ReopenLogs(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(env.IO.Out, "log files reopened")
			return nil
		},
	}
}
