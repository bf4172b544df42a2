package config

import (
	"strings"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/suggest"
)

// draft is one app as the user wrote it: the fields that need no
// resolution are already in spec; the rest wait for resolve, with where
// they were written so its errors point at them.
type draft struct {
	spec api.AppSpec
	at   where // the app itself
	bad  bool  // decoding found errors: do not resolve

	name, script, interpreter, cwd string
	hasName, hasScript, hasInterp  bool
	args, interpArgs               []string
	shell                          bool // a Procfile command: always a shell command line

	env             map[string]string
	envs            map[string]map[string]string // env_<name>
	filterAll       bool
	filterPrefixes  []string
	appendEnvToName bool
	logDefault      bool // log_file: true

	nameAt, scriptAt, interpAt, interpArgsAt, cwdAt, logAt where
	execModeAt, instancesAt                                where // zero when not given
}

// canonical maps pm2's aliases to the field they stand for.
func canonical(key string) string {
	switch key {
	case "exec", "cmd", "command":
		return "script"
	case "exec_interpreter":
		return "interpreter"
	case "node_args", "interpreterArgs":
		return "interpreter_args"
	case "out", "output", "out_log":
		return "out_file"
	case "error", "err", "err_file", "err_log":
		return "error_file"
	case "log":
		return "log_file"
	case "combine_logs":
		return "merge_logs"
	case "cron":
		return "cron_restart"
	case "pid":
		return "pid_file"
	}
	return key
}

// ignored reports whether key is a pm2 field that tend accepts without
// acting on it yet, and whether v is a value that asks for something (so
// `watch: false` passes silently while `watch: true` warns). treekill and
// windowsHide default to true in pm2, which is what tend does anyway.
func ignored(key string, v *val) (known, warn bool) {
	switch key {
	case "treekill", "windowsHide":
		return true, v.kind == kindBool && !v.flag || v.kind == kindString && v.text == "false"
	case "watch", "ignore_watch", "watch_delay", "watch_options", "source_map_support",
		"disable_source_map_support", "vizion", "post_update", "pmx", "automation", "uid", "gid",
		"user", "force", "pid_file", "trace", "disable_trace", "v8", "event_loop_inspector",
		"deep_monitoring", "io", "kill_retry_time", "name_prefix":
		empty := v.kind == kindNull || v.kind == kindBool && !v.flag ||
			v.kind == kindString && (v.text == "" || v.text == "false") ||
			v.kind == kindList && len(v.list) == 0
		return true, !empty
	}
	return false, false
}

// knownKeys lists every field name and alias, for "did you mean".
func knownKeys() []string {
	return []string{
		"name", "namespace", "script", "exec", "cmd", "command", "args", "interpreter",
		"exec_interpreter", "interpreter_args", "node_args", "interpreterArgs", "cwd", "instances",
		"exec_mode", "autostart", "env", "filter_env", "instance_var", "increment_var", "port",
		"listen", "balance", "proxy_protocol", "max_surge", "ready", "watchdog", "bus",
		"autorestart", "max_restarts", "min_uptime", "restart_delay", "exp_backoff_restart_delay",
		"stop_exit_codes", "kill_timeout", "kill_signal", "shutdown_with_message", "wait_ready",
		"listen_timeout", "out_file", "out", "output", "out_log", "error_file", "error", "err",
		"err_file", "err_log", "log_file", "log", "merge_logs", "combine_logs", "time",
		"log_date_format", "log_type", "disable_logs", "max_memory_restart", "cron_restart", "cron",
		"log_max_size", "log_retain", "log_compress", "log_rotate_interval", "append_env_to_name",
		"watch", "ignore_watch", "watch_delay", "watch_options", "source_map_support",
		"disable_source_map_support", "vizion", "post_update", "pmx", "automation", "treekill",
		"uid", "gid", "user", "force", "pid_file", "pid", "windowsHide", "trace", "disable_trace",
		"v8", "event_loop_inspector", "deep_monitoring", "io", "kill_retry_time", "name_prefix",
	}
}

// decoder reads app fields from vals into drafts.
type decoder struct {
	r    *reporter
	cpus int
}

func newDraft(at where) *draft {
	return &draft{spec: api.NewSpec(), at: at}
}

// app decodes one app map.
func (d *decoder) app(v *val) *draft {
	a := newDraft(v.at)
	if v.kind != kindMap {
		d.r.errorf(v.at, "an app must be a map of fields, got %s", v.describe())
		return nil
	}
	before := d.r.count
	defer func() { a.bad = d.r.count > before }()
	seen := map[string]*member{}
	for _, m := range v.items {
		c := canonical(m.key) // each env_<name> stays its own field
		if prev := seen[c]; prev != nil {
			d.r.errorf(m.at, "%q and %q set the same field; keep one", prev.key, m.key)
			continue
		}
		seen[c] = m
		d.set(a, m)
	}
	if !a.hasScript {
		d.r.errorf(v.at, "app has no \"script\" (the file or command to run)")
	}
	return a
}

// set applies one field to a. Null means "not set", as in pm2, where an
// unset JS property and null read the same.
func (d *decoder) set(a *draft, m *member) {
	v, key := m.v, canonical(m.key)
	if v.kind == kindNull {
		return
	}
	s := &a.spec
	switch key {
	case "name":
		a.name, a.nameAt, a.hasName = d.str(m, v), v.at, true
	case "namespace":
		s.Namespace = d.str(m, v)
	case "script":
		a.script, a.scriptAt, a.hasScript = d.str(m, v), v.at, true
		if a.script == "" {
			d.r.errorf(v.at, "%q is empty", m.key)
		}
	case "args":
		a.args = d.words(m, v)
	case "interpreter":
		a.interpreter, a.interpAt = d.str(m, v), v.at
		a.hasInterp = a.interpreter != ""
	case "interpreter_args":
		a.interpArgs, a.interpArgsAt = d.words(m, v), v.at
	case "cwd":
		a.cwd, a.cwdAt = d.str(m, v), v.at
	case "instances":
		s.Instances, a.instancesAt = d.instances(m, v), m.at
	case "exec_mode":
		a.execModeAt = m.at
		switch t := d.str(m, v); t {
		case "fork", "fork_mode":
			s.ExecMode = "fork"
		case "cluster", "cluster_mode":
			s.ExecMode = "cluster"
		default:
			d.r.errorf(v.at, "%q must be \"fork\" or \"cluster\", got %q", m.key, t)
		}
	case "autostart":
		s.Autostart = d.boolean(m, v)
	case "env":
		a.env = d.env(m, v, a.env)
	case "filter_env":
		d.filterEnv(a, m, v)
	case "instance_var":
		s.InstanceVar = d.envName(m, v)
	case "increment_var":
		s.IncrementVar = d.envName(m, v)
	case "port":
		if n, ok := d.number(v); ok && n >= 1 && n <= 65535 {
			s.Port = n
		} else {
			d.r.errorf(v.at, "%q must be a port number (1 to 65535), got %s", m.key, v.describe())
		}
	case "listen":
		d.listen(m, v, s)
	case "balance":
		s.Balance = d.str(m, v)
		switch s.Balance {
		case api.BalanceReusePort, api.BalanceShared, api.BalanceProxy:
		default:
			d.r.errorf(v.at, "%q must be %q, %q or %q, got %s", m.key, api.BalanceReusePort, api.BalanceShared, api.BalanceProxy, v.describe())
		}
	case "proxy_protocol":
		s.ProxyProtocol = d.boolean(m, v)
	case "max_surge":
		s.MaxSurge = d.count(m, v)
		if s.MaxSurge == 0 {
			d.r.errorf(v.at, "%q must be at least 1", m.key)
		}
	case "ready":
		s.Ready = d.str(m, v)
		if u, ok := strings.CutPrefix(s.Ready, "http:"); ok && (strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//")) {
			break
		}
		switch s.Ready {
		case api.ReadyAuto, api.ReadyNotify, api.ReadyTCP:
		default:
			d.r.errorf(v.at, "%q must be \"auto\", \"notify\", \"tcp\", \"http:/path\" or an http:// URL, got %s", m.key, v.describe())
		}
	case "watchdog":
		s.Watchdog = d.duration(m, v)
	case "autorestart":
		s.Autorestart = d.boolean(m, v)
	case "max_restarts":
		s.MaxRestarts = d.count(m, v)
	case "min_uptime":
		s.MinUptime = d.duration(m, v)
	case "restart_delay":
		s.RestartDelay = d.duration(m, v)
	case "exp_backoff_restart_delay":
		s.ExpBackoffRestartDelay = d.duration(m, v)
	case "stop_exit_codes":
		s.StopExitCodes = d.exitCodes(m, v)
	case "kill_timeout":
		s.KillTimeout = d.duration(m, v)
	case "kill_signal":
		s.KillSignal = d.signal(m, v)
	case "shutdown_with_message":
		s.ShutdownWithMessage = d.boolean(m, v)
	case "wait_ready":
		s.WaitReady = d.boolean(m, v)
	case "bus":
		s.Bus = d.boolean(m, v)
	case "listen_timeout":
		s.ListenTimeout = d.duration(m, v)
	case "out_file":
		s.OutFile = d.str(m, v)
	case "error_file":
		s.ErrorFile = d.str(m, v)
	case "log_file":
		d.logFile(a, m, v)
	case "merge_logs":
		s.MergeLogs = d.boolean(m, v)
	case "time":
		s.Time = d.boolean(m, v)
	case "log_date_format":
		s.LogDateFormat = d.str(m, v)
	case "log_type":
		if s.LogType = d.str(m, v); s.LogType != "json" {
			d.r.errorf(v.at, "%q must be \"json\", got %s", m.key, v.describe())
		}
	case "disable_logs":
		s.DisableLogs = d.boolean(m, v)
	case "max_memory_restart":
		s.MaxMemoryRestart = d.size(m, v)
	case "cron_restart":
		// The expression is checked, so that a file tend will one day
		// act on is already right, and then left out of the spec.
		before := d.r.count
		if d.cron(m, v) != "" && d.r.count == before {
			d.r.unsupported(m.at, m.key)
		}
	case "log_max_size":
		s.LogMaxSize = d.size(m, v)
	case "log_retain":
		s.LogRetain = d.count(m, v)
	case "log_compress":
		s.LogCompress = d.boolean(m, v)
	case "log_rotate_interval":
		switch v.text {
		case "hourly":
			s.LogRotateInterval = api.Duration(time.Hour)
		case "daily":
			s.LogRotateInterval = api.Duration(24 * time.Hour)
		default:
			s.LogRotateInterval = d.duration(m, v)
		}
	case "append_env_to_name":
		a.appendEnvToName = d.boolean(m, v)
	default:
		if strings.HasPrefix(key, "env_") && len(key) > len("env_") {
			if a.envs == nil {
				a.envs = map[string]map[string]string{}
			}
			a.envs[strings.TrimPrefix(key, "env_")] = d.env(m, v, nil)
			return
		}
		if known, warn := ignored(key, v); known {
			if warn {
				d.r.unsupported(m.at, m.key)
			}
			return
		}
		d.r.errorf(m.at, "unknown field %q%s", m.key, suggest.DidYouMean(m.key, knownKeys()))
	}
}
