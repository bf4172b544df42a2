package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/config"
)

// startFlags maps each `tend start` flag to the pm2 field it sets, so the
// command line goes through the same checks as a config file.
var startFlags = []struct {
	flag, short, field, usage string
	aliases                   []string // more names, e.g. pm2's --cron for --cron-restart
	boolean                   bool
	value                     string // the field's value for a boolean flag
}{
	{flag: "name", short: "n", field: "name", usage: "app name (default: the script's name)"},
	{flag: "namespace", field: "namespace", usage: "namespace, usable as a target"},
	{flag: "interpreter", field: "interpreter", usage: "interpreter to run the script with (\"none\" runs it directly)"},
	{flag: "interpreter-args", field: "interpreter_args", usage: "arguments for the interpreter"},
	{flag: "node-args", field: "interpreter_args", usage: "same as --interpreter-args"},
	{flag: "cwd", field: "cwd", usage: "working directory of the app"},
	{flag: "instances", short: "i", field: "instances", usage: "number of instances (\"max\" = one per CPU, -1 = CPUs minus one)"},
	{flag: "no-autorestart", field: "autorestart", boolean: true, value: "false", usage: "do not restart the app when it exits"},
	{flag: "max-restarts", field: "max_restarts", usage: "unstable restarts in a row before the app is errored (default 16)"},
	{flag: "min-uptime", field: "min_uptime", usage: "a run shorter than this is unstable (default 1s)"},
	{flag: "restart-delay", field: "restart_delay", usage: "wait this long before a restart (ms, or 2s, 1m...)"},
	{flag: "exp-backoff-restart-delay", field: "exp_backoff_restart_delay", usage: "first delay of an exponential backoff between restarts"},
	{flag: "stop-exit-codes", field: "stop_exit_codes", usage: "exit codes that are not restarted (comma-separated)"},
	{flag: "kill-timeout", field: "kill_timeout", usage: "grace period between the stop signal and SIGKILL (default 1600ms)"},
	{flag: "kill-signal", field: "kill_signal", usage: "stop signal (default SIGINT)"},
	{flag: "shutdown-with-message", field: "shutdown_with_message", boolean: true, value: "true", usage: "stop a Node app with the 'shutdown' message instead of a signal"},
	{flag: "wait-ready", field: "wait_ready", boolean: true, value: "true", usage: "the app is ready when it says so"},
	{flag: "listen-timeout", field: "listen_timeout", usage: "how long to wait for readiness (default 30s; 3s of uptime for apps that give no signal)"},
	{flag: "time", field: "time", boolean: true, value: "true", usage: "prefix each log line with the time"},
	{flag: "log-date-format", field: "log_date_format", usage: "format of the log time prefix (YYYY-MM-DD HH:mm:ss)"},
	{flag: "log-type", field: "log_type", usage: "\"json\" for one JSON object per log line"},
	{flag: "output", short: "o", field: "out_file", usage: "file for stdout"},
	{flag: "error", short: "e", field: "error_file", usage: "file for stderr"},
	{flag: "log", short: "l", field: "log_file", usage: "file for stdout and stderr together"},
	{flag: "merge-logs", field: "merge_logs", boolean: true, value: "true", usage: "one log file for all instances"},
	{flag: "disable-logs", field: "disable_logs", boolean: true, value: "true", usage: "write no log files"},
	{flag: "log-max-size", field: "log_max_size", usage: "rotate log files at this size (default 10M)"},
	{flag: "log-retain", field: "log_retain", usage: "rotated log files to keep (default 10)"},
	{flag: "max-memory-restart", field: "max_memory_restart", usage: "memory limit (200M, 1G)"},
	// pm2's flags that tend accepts without acting on them yet: each warns
	// and is ignored, as the field is in a config file.
	{flag: "cron-restart", short: "c", aliases: []string{"cron"}, field: "cron_restart", usage: "restart on a cron schedule (not supported yet: warns and is ignored)"},
	{flag: "watch", field: "watch", boolean: true, value: "true", usage: "restart when files change (not supported yet: warns and is ignored)"},
	{flag: "ignore-watch", field: "ignore_watch", usage: "paths --watch ignores (not supported yet: warns and is ignored)"},
	{flag: "port", field: "port", usage: "public TCP port: the daemon listens on it for the app and sets PORT"},
	{flag: "listen", field: "listen", usage: "addresses the daemon listens on for the app (comma-separated: 3000, 127.0.0.1:8080, /run/app.sock)"},
	{flag: "balance", field: "balance", usage: "how connections reach instances: reuseport, shared or proxy (default: reuseport for Node.js, proxy otherwise)"},
	{flag: "proxy-protocol", field: "proxy_protocol", boolean: true, value: "true", usage: "proxy mode: send a PROXY protocol header so the app sees the client address"},
	{flag: "max-surge", field: "max_surge", usage: "new processes a reload starts at once (default 1)"},
	{flag: "ready", field: "ready", usage: "readiness: auto, notify, tcp, http:/path or an http:// URL (default auto)"},
	{flag: "bus", field: "bus", boolean: true, value: "true", usage: "give the instances the pub/sub bus (TEND_BUS_URL)"},
	{flag: "watchdog", field: "watchdog", usage: "restart an instance that sends no WATCHDOG=1 for this long"},
	{flag: "filter-env", field: "filter_env", usage: "drop inherited variables with these prefixes (comma-separated)"},
	{flag: "no-autostart", field: "autostart", boolean: true, value: "false", usage: "add the app without starting it"},
}

type startOptions struct {
	env     string
	only    []string
	update  bool
	envVars []string
}

func newStart(env *Env) *ucli.Command {
	flags := make([]ucli.Flag, 0, len(startFlags)+4)
	for _, sf := range startFlags {
		aliases := sf.aliases
		if sf.short != "" {
			aliases = append([]string{sf.short}, aliases...)
		}
		if sf.boolean {
			flags = append(flags, &ucli.BoolFlag{Name: sf.flag, Aliases: aliases, Usage: sf.usage})
		} else {
			flags = append(flags, &ucli.StringFlag{Name: sf.flag, Aliases: aliases, Usage: sf.usage})
		}
	}
	flags = append(flags,
		&ucli.StringFlag{Name: "env", Usage: "use the config's env_<name> on top of env"},
		&ucli.StringSliceFlag{Name: "only", Usage: "start only these apps of the config file (comma-separated)"},
		&ucli.BoolFlag{Name: "update-env", Usage: "with a config file: restart running apps with the current environment"},
		&ucli.StringSliceFlag{Name: "env-var", Usage: "KEY=VALUE: a variable for the app, over the config's env (repeatable)"},
	)
	return &ucli.Command{
		Name:      "start",
		Usage:     "Start a script, a binary, a command line, a config file's apps, or stopped apps",
		ArgsUsage: "<script|binary|'command line'|config file|app...> [-- args...]",
		Description: `Start a program and keep it running.

  tend start server.js                  node script (interpreter from the extension)
  tend start app.py --name api          python3; .sh bash, .rb ruby, .php, .pl
  tend start ./server -- --port 8080    a binary, with its arguments after --
  tend start "python3 -m http.server"   a command line, run by /bin/sh -c
  tend start ecosystem.config.js        every app of a config file (--only, --env)
  tend start web                        an app that is stopped (name, id or all)`,
		Flags:         flags,
		ShellComplete: completeApps(env),
		Action: func(ctx context.Context, c *ucli.Command) error {
			env.dashUsed = true
			args := c.Args().Slice()
			if len(args) == 0 {
				if env.dash {
					return usagef("nothing to start before --")
				}
				return needArgs(c, 1, -1)
			}
			o := &startOptions{env: c.String("env"), only: onlyFlag(c), update: c.Bool("update-env"), envVars: c.StringSlice("env-var")}
			var fields []config.Field
			for _, sf := range startFlags {
				if !c.IsSet(sf.flag) {
					continue
				}
				v := c.String(sf.flag)
				if sf.boolean {
					if !c.Bool(sf.flag) {
						continue
					}
					v = sf.value
				}
				fields = append(fields, config.Field{Key: sf.field, Value: v, Flag: "--" + sf.flag})
			}
			return runStart(ctx, env, o, args, env.afterDash, fields)
		},
	}
}

func runStart(ctx context.Context, env *Env, o *startOptions, args, scriptArgs []string, flagFields []config.Field) error {
	opts := config.Options{Cwd: env.IO.Cwd, Environ: env.IO.Environ, EnvName: o.env, Only: o.only}
	first := args[0]
	if config.IsConfigFile(first) && fileExists(first, env.IO.Cwd) {
		if len(args) > 1 {
			return usagef("start takes one config file, got %d arguments", len(args))
		}
		return startConfig(ctx, env, first, opts, o)
	}
	var fields []config.Field
	for _, kv := range o.envVars {
		fields = append(fields, config.Field{Key: "env", Value: kv, Flag: "--env-var"})
	}
	fields = append(fields, flagFields...)
	c, err := env.Client(ctx)
	if err != nil {
		return err
	}
	// Names, ids and "all" of existing apps start those apps, unless the
	// argument is a file: a script always wins over an app's name (a
	// directory does not).
	if !isFile(first, env.IO.Cwd) && len(scriptArgs) == 0 {
		apps, err := c.List(ctx)
		if err != nil {
			return err
		}
		if allTargets(args, apps) {
			res, err := c.Act(ctx, api.ActionStart, api.ActionRequest{Targets: args})
			if err != nil {
				return err
			}
			return printApps(env.IO, res.Apps)
		}
		if _, err := strconv.Atoi(first); err == nil && !fileExists(first, env.IO.Cwd) {
			return fmt.Errorf("no app has id %s: %w", first, api.ErrNotFound)
		}
	}
	if len(args) > 1 {
		return usagef("start takes one script (its arguments go after --), got %q", strings.Join(args, " "))
	}
	spec, warnings, err := config.FromCommandLine(first, scriptArgs, fields, opts)
	if err != nil {
		return err
	}
	printWarnings(env.IO, warnings)
	res, err := c.Start(ctx, api.StartRequest{Apps: []api.AppSpec{spec}})
	if errors.Is(err, api.ErrConflict) {
		// The same program under the same name, stopped: start it again
		// rather than refuse, as pm2 does.
		if apps, derr := c.Describe(ctx, spec.Name); derr == nil && len(apps) == 1 &&
			slices.Equal(apps[0].Spec.Command, spec.Command) && apps[0].Status != api.StatusOnline {
			res, err = c.Act(ctx, api.ActionStart, api.ActionRequest{Targets: []string{spec.Name}})
		}
	}
	if err != nil {
		return err
	}
	return printApps(env.IO, res.Apps)
}

// startConfig starts the apps of a config file: new ones are created,
// existing ones restarted with the file's spec (so `tend start` of an edited
// file applies it, as with pm2).
func startConfig(ctx context.Context, env *Env, path string, opts config.Options, o *startOptions) error {
	f, err := config.Load(path, opts)
	if err != nil {
		return err
	}
	vars, err := parseEnvVars(o.envVars)
	if err != nil {
		return err
	}
	for i := range f.Apps {
		if f.Apps[i].Env == nil && len(vars) > 0 {
			f.Apps[i].Env = map[string]string{}
		}
		for k, v := range vars {
			f.Apps[i].Env[k] = v
		}
	}
	updateEnv := o.update
	printWarnings(env.IO, f.Warnings)
	c, err := env.Client(ctx)
	if err != nil {
		return err
	}
	apps, err := c.List(ctx)
	if err != nil {
		return err
	}
	exists := map[string]bool{}
	for _, a := range apps {
		exists[a.Name] = true
	}
	var fresh, known []api.AppSpec
	var names []string
	for _, s := range f.Apps {
		if exists[s.Name] {
			known = append(known, s)
			names = append(names, s.Name)
		} else {
			fresh = append(fresh, s)
		}
	}
	var out []api.AppInfo
	if len(fresh) > 0 {
		res, err := c.Start(ctx, api.StartRequest{Apps: fresh})
		if err != nil {
			return err
		}
		out = append(out, res.Apps...)
	}
	if len(known) > 0 {
		req := api.ActionRequest{Targets: names, Specs: known, UpdateEnv: updateEnv}
		if updateEnv {
			req.BaseEnv = environMap(env.IO.Environ)
		}
		res, err := c.Act(ctx, api.ActionRestart, req)
		if err != nil {
			return err
		}
		out = append(out, res.Apps...)
	}
	return printApps(env.IO, out)
}

// printWarnings shows what config found that tend will not do as asked.
func printWarnings(o *IO, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(o.Err, "tend: warning: %s\n", w)
	}
}

// parseEnvVars reads --env-var KEY=VALUE flags.
func parseEnvVars(list []string) (map[string]string, error) {
	vars := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usagef("--env-var %q: want KEY=VALUE", kv)
		}
		vars[k] = v
	}
	return vars, nil
}

func allTargets(args []string, apps []api.AppInfo) bool {
	for _, a := range args {
		if a == "all" {
			continue
		}
		found := false
		for _, app := range apps {
			found = found || app.Name == a || strconv.Itoa(app.ID) == a || (app.Namespace != "" && app.Namespace == a)
		}
		if !found {
			return false
		}
	}
	return true
}

// statArg stats path, relative to the user's working directory cwd.
func statArg(path, cwd string) (os.FileInfo, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(cwd, path)
	}
	return os.Stat(path)
}

// isFile reports whether path names a file, not a directory.
func isFile(path, cwd string) bool {
	fi, err := statArg(path, cwd)
	return err == nil && !fi.IsDir()
}

func fileExists(path, cwd string) bool {
	_, err := statArg(path, cwd)
	return err == nil
}

// onlyFlag reads --only: repeated, or comma-separated.
func onlyFlag(c *ucli.Command) []string {
	var names []string
	for _, v := range c.StringSlice("only") {
		names = append(names, strings.Split(v, ",")...)
	}
	return names
}

func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
