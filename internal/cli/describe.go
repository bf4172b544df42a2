package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/units"
)

func newDescribe(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:          "describe",
		Aliases:       []string{"desc", "show", "info"},
		Usage:         "Show an app in detail: its spec, its instances, and why each is in its state",
		ArgsUsage:     "<app|id|all>",
		Flags:         []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "print JSON"}},
		ShellComplete: completeApps(env),
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			apps, err := cl.Describe(ctx, c.Args().First())
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(env.IO.Out, apps)
			}
			for i, a := range apps {
				if i > 0 {
					fmt.Fprintln(env.IO.Out)
				}
				describeApp(env.IO, a)
			}
			return nil
		},
	}
}

func describeApp(o *IO, a api.AppDetail) {
	p := &painter{on: o.Color}
	kv := func(k string, v any) {
		if s := fmt.Sprint(v); s != "" && s != "[]" {
			fmt.Fprintf(o.Out, "  %-18s %s\n", k, s)
		}
	}
	fmt.Fprintf(o.Out, "%s (id %d): %s\n", p.paint("1", a.Name), a.ID, p.paint(statusColor(a.Status), a.Status))
	s := &a.Spec
	kv("script", s.Script)
	if s.Shell {
		kv("run by", "/bin/sh -c")
	}
	kv("command", shellJoin(s.Command))
	kv("cwd", s.Cwd)
	kv("source", s.Source)
	kv("namespace", s.Namespace)
	kv("instances", s.Instances)
	if len(s.Listen) > 0 {
		kv("listen", strings.Join(s.Listen, ", "))
		bal := s.Balance
		if s.ProxyProtocol {
			bal += ", PROXY protocol"
		}
		kv("balance", bal)
	}
	rc := s.ReadyCheck()
	ready := rc.Mode
	if rc.URL != "" {
		ready += " " + rc.URL
	}
	if rc.Mode == api.ReadyAuto {
		kv("ready", fmt.Sprintf("%s (READY=1, or up for %s)", ready, rc.Timeout))
	} else {
		kv("ready", fmt.Sprintf("%s (within %s)", ready, rc.Timeout))
	}
	if s.Watchdog > 0 {
		kv("watchdog", s.Watchdog)
	}
	if s.Bus {
		kv("bus", "yes (TEND_BUS_URL; `tend bus` shows it)")
	}
	if s.MaxMemoryRestart > 0 {
		kv("max_memory_restart", fmt.Sprintf("%s (each instance's whole process tree, checked every sample)", units.Bytes(uint64(s.MaxMemoryRestart))))
	}
	kv("autorestart", s.Autorestart)
	kv("max_restarts", s.MaxRestarts)
	kv("min_uptime", s.MinUptime)
	if s.RestartDelay > 0 {
		kv("restart_delay", s.RestartDelay)
	}
	if s.ExpBackoffRestartDelay > 0 {
		kv("exp_backoff", s.ExpBackoffRestartDelay)
	}
	if len(s.StopExitCodes) > 0 {
		kv("stop_exit_codes", fmt.Sprint(s.StopExitCodes))
	}
	if s.ShutdownWithMessage && s.RunsNode() {
		kv("kill", fmt.Sprintf("the 'shutdown' message (Node.js IPC), then SIGKILL after %s", s.KillTimeout))
	} else {
		kv("kill", fmt.Sprintf("%s, then SIGKILL after %s", s.KillSignal, s.KillTimeout))
	}
	if s.EnvName != "" {
		kv("env", "env_"+s.EnvName)
	}
	kv("created", a.Created.Local().Format("2006-01-02 15:04:05"))
	l := a.Logs
	kv("out log", strings.Join(l.Out, ", "))
	kv("error log", strings.Join(l.Err, ", "))
	kv("combined log", strings.Join(l.Combined, ", "))
	for _, in := range a.Instances {
		fmt.Fprintf(o.Out, "  instance %d: %s", in.Slot, p.paint(statusColor(in.Status), in.Status))
		if in.PID > 0 {
			fmt.Fprintf(o.Out, ", pid %d, up %s, cpu %.1f%%, memory %s", in.PID, units.Duration(o.Now().Sub(in.Started)), in.CPU, units.Bytes(in.Memory))
		}
		if in.PID > 0 {
			if in.Ready {
				fmt.Fprint(o.Out, ", ready")
			} else {
				fmt.Fprint(o.Out, ", not ready yet")
			}
		}
		if in.Port > 0 {
			fmt.Fprintf(o.Out, ", private port %d, %s", in.Port, plural(in.Conns, "connection"))
		}
		fmt.Fprintf(o.Out, ", %s\n", plural(in.Restarts, "restart"))
		if in.AppStatus != "" {
			fmt.Fprintf(o.Out, "    app status: %s\n", in.AppStatus)
		}
		if in.PID > 0 && in.Procs > 0 {
			procs := "1 process"
			if in.Procs != 1 {
				procs = fmt.Sprintf("%d processes", in.Procs)
			}
			fmt.Fprintf(o.Out, "    tree: %s, %s", procs, plural(in.Threads, "thread"))
			if in.FDs > 0 {
				fmt.Fprintf(o.Out, ", %s", plural(in.FDs, "open fd"))
			}
			fmt.Fprintf(o.Out, ", %.2f s of CPU\n", in.CPUTime)
		}
		for _, m := range in.Metrics {
			fmt.Fprintf(o.Out, "    metric %s (%s): %g\n", m.Name, m.Type, m.Value)
		}
		if r := in.LastRestart; r != nil {
			fmt.Fprintf(o.Out, "    last restart by tend: %s, at %s\n", r.Reason, r.Time.Local().Format("15:04:05"))
		}
		if in.Reason != "" {
			fmt.Fprintf(o.Out, "    why: %s\n", in.Reason)
		}
		if e := in.LastExit; e != nil {
			how := "exit code " + strconv.Itoa(e.Code)
			if e.Signal != "" {
				how = e.Signal
			}
			fmt.Fprintf(o.Out, "    last exit: %s at %s after %s\n", how, e.Time.Local().Format("15:04:05.000"), e.Uptime.Std().Round(time.Millisecond))
		}
		if !in.NextRestart.IsZero() {
			fmt.Fprintf(o.Out, "    next restart: in %s\n", in.NextRestart.Sub(o.Now()).Round(time.Millisecond))
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// shellJoin renders argv so it can be pasted into a shell.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`|&;<>()*?[]{}~#!") {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

func newEnvCmd(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:          "env",
		Usage:         "Print the environment an app's instance runs with",
		ArgsUsage:     "<app|id>",
		Flags:         []ucli.Flag{&ucli.IntFlag{Name: "instance", Usage: "instance (slot) number"}},
		ShellComplete: completeApps(env),
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			apps, err := cl.Describe(ctx, c.Args().First())
			if err != nil {
				return err
			}
			if len(apps) != 1 {
				return usagef("env takes one app, %q names %d", c.Args().First(), len(apps))
			}
			slot := int(c.Int("instance"))
			if slot < 0 || slot >= apps[0].Spec.Instances {
				return usagef("--instance %d: %s has instances 0 to %d", slot, apps[0].Name, apps[0].Spec.Instances-1)
			}
			home, err := env.Home()
			if err != nil {
				return err
			}
			// The bus's address and credentials are the daemon's to give:
			// they are what the instance got when it started.
			var extra map[string]string
			if apps[0].Spec.Bus {
				st, err := cl.BusStatus(ctx, false, true)
				if err != nil {
					return err
				}
				if st.Running {
					extra = map[string]string{api.EnvBusURL: st.URL, api.EnvBusUser: st.User, api.EnvBusPassword: st.Password}
				}
			}
			for _, kv := range api.InstanceEnv(&apps[0].Spec, slot, home, extra) {
				fmt.Fprintln(env.IO.Out, kv)
			}
			return nil
		},
	}
}
