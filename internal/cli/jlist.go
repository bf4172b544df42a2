package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/tend-pm/tend/internal/api"
)

// newJList is pm2's jlist: one JSON object per instance, in pm2's shape,
// for scripts written against pm2 (`pm2 jlist | jq ...`). `tend ls --json`
// stays tend's own shape.
func newJList(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "jlist",
		Usage: "List the instances as JSON in pm2's jlist shape",
		Description: `One object per instance: pm_id, name, namespace, pid, monit {memory, cpu}
and pm2_env {status, pm_uptime, restart_time, unstable_restarts, exec_mode,
instances, NODE_APP_INSTANCE, pm_exec_path, pm_cwd, env...}. pm_id is the
instance's position in this list (apps by id, then instances), not an app id:
name tend's commands by name. tend ls --json is tend's own shape.`,
		Hidden: true,
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			apps, err := cl.Describe(ctx, "all")
			if err != nil {
				return fmt.Errorf("jlist: %w", err)
			}
			return writeJSON(env.IO.Out, pm2List(apps))
		},
	}
}

// pm2Proc is one entry of `pm2 jlist`, with the fields scripts read.
type pm2Proc struct {
	// PMID numbers the instances in list order, from 0 (see newJList).
	PMID      int      `json:"pm_id"`
	Name      string   `json:"name"`
	Namespace string   `json:"namespace"`
	PID       int      `json:"pid"` // 0 when no process runs
	Monit     pm2Monit `json:"monit"`
	PM2Env    pm2Env   `json:"pm2_env"`
}

// pm2Monit is the last sample: memory in bytes, cpu in per cent of one
// core, to a tenth as pm2 rounds it; both 0 when no process runs.
type pm2Monit struct {
	Memory uint64  `json:"memory"`
	CPU    float64 `json:"cpu"`
}

// pm2Env is pm2_env: the app's settings and the instance's state, under
// pm2's names and units (times in ms since the epoch, durations in ms).
type pm2Env struct {
	PMID      int    `json:"pm_id"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// Status is pm2's word for the instance's state; tend's statuses are
	// pm2's (online, launching, stopping, stopped, waiting restart,
	// errored).
	Status string `json:"status"`
	// PMUptime is when the current (or last) process started; 0 if none
	// ever did.
	PMUptime         int64  `json:"pm_uptime"`
	CreatedAt        int64  `json:"created_at"`
	RestartTime      int    `json:"restart_time"`
	UnstableRestarts int    `json:"unstable_restarts"`
	ExitCode         *int   `json:"exit_code,omitempty"` // how the last process ended: its code, -1 for a signal
	ExecMode         string `json:"exec_mode"`           // "fork_mode" or "cluster_mode"
	Instances        int    `json:"instances"`
	InstanceVar      string `json:"instance_var,omitempty"`
	// InstanceNumber is the slot, written under the name InstanceVar
	// holds (NODE_APP_INSTANCE by default), as pm2 does.
	InstanceNumber   int      `json:"-"`
	PMExecPath       string   `json:"pm_exec_path"`
	PMCwd            string   `json:"pm_cwd"`
	ExecInterpreter  string   `json:"exec_interpreter"` // the interpreter's name, or "none"
	NodeArgs         []string `json:"node_args"`
	Args             []string `json:"args"`
	PMOutLogPath     string   `json:"pm_out_log_path"`
	PMErrLogPath     string   `json:"pm_err_log_path"`
	Autorestart      bool     `json:"autorestart"`
	MaxRestarts      int      `json:"max_restarts"`
	MinUptime        int64    `json:"min_uptime"`
	KillTimeout      int64    `json:"kill_timeout"`
	RestartDelay     int64    `json:"restart_delay"`
	MaxMemoryRestart uint64   `json:"max_memory_restart,omitempty"`
	Watch            bool     `json:"watch"` // always false: tend does not watch files
	// Env is the app's own environment as this instance gets it: PORT,
	// the config's env (with env_<name> over it), increment_var,
	// TEND_APP, TEND_INSTANCE and the instance_var. Unlike pm2's, it
	// leaves out what the app inherits from the shell that started it
	// (tend env shows that too) and the bus credentials.
	Env map[string]string `json:"env"`
}

// MarshalJSON adds the instance variable (NODE_APP_INSTANCE: 2) to the
// fields, unless its name is one of theirs.
func (e pm2Env) MarshalJSON() ([]byte, error) {
	type plain pm2Env
	b, err := json.Marshal(plain(e))
	if err != nil || e.InstanceVar == "" {
		return b, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	if _, taken := fields[e.InstanceVar]; !taken {
		fields[e.InstanceVar] = json.RawMessage(strconv.Itoa(e.InstanceNumber))
	}
	return json.Marshal(fields)
}

// pm2List turns apps into pm2's jlist: one entry per instance, apps in
// the order given (by id), instances by slot.
func pm2List(apps []api.AppDetail) []pm2Proc {
	out := []pm2Proc{}
	for _, a := range apps {
		s := &a.Spec
		ns := a.Namespace
		if ns == "" {
			ns = "default" // pm2's namespace for apps given none
		}
		mode := "fork_mode"
		if s.ExecMode == "cluster" {
			mode = "cluster_mode"
		}
		interp := "none"
		if s.Interpreter != "" {
			interp = filepath.Base(s.Interpreter)
		}
		for _, in := range a.Instances {
			id := len(out)
			p := pm2Proc{PMID: id, Name: a.Name, Namespace: ns, PID: in.PID}
			if in.PID > 0 {
				p.Monit = pm2Monit{Memory: in.Memory, CPU: math.Round(in.CPU*10) / 10}
			}
			p.PM2Env = pm2Env{
				PMID: id, Name: a.Name, Namespace: ns, Status: in.Status,
				PMUptime: unixMilli(in.Started), CreatedAt: unixMilli(a.Created),
				RestartTime: in.Restarts, UnstableRestarts: in.Unstable,
				ExecMode: mode, Instances: s.Instances,
				InstanceVar: s.InstanceVar, InstanceNumber: in.Slot,
				PMExecPath: s.Script, PMCwd: s.Cwd, ExecInterpreter: interp,
				NodeArgs: nonNil(s.InterpreterArgs), Args: nonNil(s.Args),
				PMOutLogPath: logPath(a.Logs.Out, in.Slot), PMErrLogPath: logPath(a.Logs.Err, in.Slot),
				Autorestart: s.Autorestart, MaxRestarts: s.MaxRestarts,
				MinUptime: s.MinUptime.Std().Milliseconds(), KillTimeout: s.KillTimeout.Std().Milliseconds(),
				RestartDelay: s.RestartDelay.Std().Milliseconds(), MaxMemoryRestart: uint64(s.MaxMemoryRestart),
				Env: ownEnv(s, in.Slot),
			}
			if in.LastExit != nil {
				code := in.LastExit.Code
				p.PM2Env.ExitCode = &code
			}
			out = append(out, p)
		}
	}
	return out
}

// ownEnv is the environment the app itself sets for the instance in slot:
// api.InstanceEnv without the inherited layer, TEND_HOME or what the
// daemon adds per process (sockets, bus credentials).
func ownEnv(s *api.AppSpec, slot int) map[string]string {
	own := *s
	own.BaseEnv = nil
	env := map[string]string{}
	for _, kv := range api.InstanceEnv(&own, slot, "", nil) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// logPath is the file of slot among paths: one for all instances with
// merge_logs, one per slot without; /dev/null when none is written, as
// pm2 says for disabled logs, and "" when the slot's file is not listed.
func logPath(paths []string, slot int) string {
	switch {
	case len(paths) == 0:
		return "/dev/null"
	case len(paths) == 1:
		return paths[0]
	case slot < len(paths):
		return paths[slot]
	}
	return ""
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
