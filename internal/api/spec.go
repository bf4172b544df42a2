package api

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// AppSpec is everything the daemon needs to run an app. The CLI builds it
// (from flags or a config file), resolving every default and every path on
// the user's side, so the daemon never guesses about the user's working
// directory or PATH. The daemon stores it as it was received.
type AppSpec struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`

	// Script is what the user asked to run: a file (made absolute), a
	// binary, or a shell command line when Shell is set.
	Script string   `json:"script"`
	Args   []string `json:"args,omitempty"`
	// Interpreter is the resolved interpreter path; empty means the script
	// is executed directly (pm2's interpreter "none").
	Interpreter     string   `json:"interpreter,omitempty"`
	InterpreterArgs []string `json:"interpreter_args,omitempty"`
	// Shell is set when Script is a command line the user wrote for a
	// shell; it is then run by /bin/sh -c, and only then.
	Shell bool `json:"shell,omitempty"`
	// Command is the argv the daemon executes, derived from the fields
	// above by the CLI.
	Command []string `json:"command"`
	Cwd     string   `json:"cwd"`
	// Source is the config file the app came from, if any.
	Source string `json:"source,omitempty"`

	Instances int    `json:"instances"`
	ExecMode  string `json:"exec_mode,omitempty"`
	Autostart bool   `json:"autostart"`

	// The environment, by layer (see docs/config.md, "Environment"):
	// BaseEnv is the CLI's environment when the app was started (after
	// filter_env), Env is the config's env with env_<EnvName> over it.
	BaseEnv   map[string]string `json:"base_env,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	EnvName   string            `json:"env_name,omitempty"`
	FilterEnv []string          `json:"filter_env,omitempty"`
	// FilterAllEnv drops the whole inherited environment (filter_env: true).
	FilterAllEnv bool `json:"filter_all_env,omitempty"`
	// InstanceVar names the variable that holds the slot number
	// (pm2: NODE_APP_INSTANCE); IncrementVar, if set, is a variable whose
	// value from Env is increased by the slot number in each instance.
	InstanceVar  string `json:"instance_var,omitempty"`
	IncrementVar string `json:"increment_var,omitempty"`
	// Port is the app's public TCP port: the daemon listens on it (see
	// Listen) and instances get it as PORT.
	Port int `json:"port,omitempty"`

	// Cluster mode (docs/cluster.md). Listen holds the addresses the
	// daemon binds for the app and keeps for its whole life, in
	// rawnet.Addr's canonical form (":3000", "127.0.0.1:3000", a path).
	Listen []string `json:"listen,omitempty"`
	// Balance is how connections reach instances: BalanceReusePort,
	// BalanceShared or BalanceProxy.
	Balance string `json:"balance,omitempty"`
	// ProxyProtocol makes the proxy send a PROXY protocol v1 line first.
	ProxyProtocol bool `json:"proxy_protocol,omitempty"`
	// MaxSurge is how many new processes a reload starts at once.
	MaxSurge int `json:"max_surge,omitempty"`

	// Restart policy.
	Autorestart            bool     `json:"autorestart"`
	MaxRestarts            int      `json:"max_restarts"`
	MinUptime              Duration `json:"min_uptime"`
	RestartDelay           Duration `json:"restart_delay,omitempty"`
	ExpBackoffRestartDelay Duration `json:"exp_backoff_restart_delay,omitempty"`
	StopExitCodes          []int    `json:"stop_exit_codes,omitempty"`

	// Stop sequence.
	KillSignal          string   `json:"kill_signal"`
	KillTimeout         Duration `json:"kill_timeout"`
	ShutdownWithMessage bool     `json:"shutdown_with_message,omitempty"`

	// Readiness: Ready is ReadyAuto, ReadyNotify, ReadyTCP or
	// "http:<path>" / an http:// URL (see ReadyCheck). WaitReady is pm2's
	// name for ReadyNotify. ListenTimeout bounds the wait for a signal
	// (0: DefaultReadyTimeout), or, with ReadyAuto and no signal, is the
	// uptime after which an instance counts as ready (0:
	// DefaultListenTimeout).
	Ready         string   `json:"ready,omitempty"`
	WaitReady     bool     `json:"wait_ready,omitempty"`
	ListenTimeout Duration `json:"listen_timeout,omitempty"`
	// Watchdog, if set, is WATCHDOG_USEC: an instance that sends no
	// WATCHDOG=1 for that long is restarted.
	Watchdog Duration `json:"watchdog,omitempty"`

	// Bus gives every instance the pub/sub bus's address and credentials
	// (TEND_BUS_URL...), starting the bus if it is not running.
	Bus bool `json:"bus,omitempty"`

	// Logs. Empty OutFile/ErrorFile mean the default file in
	// $TEND_HOME/logs; "/dev/null" means the stream is not written.
	// Empty LogFile means no combined file.
	OutFile       string   `json:"out_file,omitempty"`
	ErrorFile     string   `json:"error_file,omitempty"`
	LogFile       string   `json:"log_file,omitempty"`
	MergeLogs     bool     `json:"merge_logs"`
	Time          bool     `json:"time,omitempty"`
	LogDateFormat string   `json:"log_date_format,omitempty"`
	LogType       string   `json:"log_type,omitempty"`
	DisableLogs   bool     `json:"disable_logs,omitempty"`
	LogMaxSize    ByteSize `json:"log_max_size"`
	LogRetain     int      `json:"log_retain"`
	LogCompress   bool     `json:"log_compress"`
	// LogRotateInterval rotates files by age as well as by size (0: never).
	LogRotateInterval Duration `json:"log_rotate_interval,omitempty"`

	// Accepted from pm2 files and kept, enforced by later parts of tend.
	MaxMemoryRestart ByteSize `json:"max_memory_restart,omitempty"`
	CronRestart      string   `json:"cron_restart,omitempty"`
}

// Defaults for the fields of AppSpec, with pm2's values where pm2 has one.
const (
	DefaultMaxRestarts   = 16
	DefaultMinUptime     = Duration(time.Second)
	DefaultKillSignal    = "SIGINT"
	DefaultKillTimeout   = Duration(1600 * time.Millisecond)
	DefaultListenTimeout = Duration(3 * time.Second)
	DefaultInstanceVar   = "NODE_APP_INSTANCE"
	// DefaultReadyTimeout bounds the wait for an explicit ready signal or
	// probe: long enough for a slow framework to boot; a reload that hits
	// it fails and keeps the old processes.
	DefaultReadyTimeout = Duration(30 * time.Second)
	// Logs rotate at 10 MiB and keep 10 compressed files: at most about
	// 10 MiB plus ten compressed files per stream, so an app that prints
	// without pause cannot fill a disk.
	DefaultLogMaxSize = ByteSize(10 << 20)
	DefaultLogRetain  = 10
	// MaxInstances bounds instances: a typo of a zero more should not
	// start ten thousand processes.
	MaxInstances = 1024
	// MaxBackoff caps exp_backoff_restart_delay, as pm2 does.
	MaxBackoff = Duration(15 * time.Second)
)

// Balancing modes and readiness checks.
const (
	BalanceReusePort = "reuseport"
	BalanceShared    = "shared"
	BalanceProxy     = "proxy"

	ReadyAuto   = "auto"
	ReadyNotify = "notify"
	ReadyTCP    = "tcp"
)

// ReadyCheck is how an instance's readiness is decided.
type ReadyCheck struct {
	Mode    string        // ReadyAuto, ReadyNotify, ReadyTCP or "http"
	URL     string        // for "http": a path on the instance's port, or a URL
	Timeout time.Duration // the wait for the signal, or the uptime that counts as ready
}

// ReadyCheck resolves Ready, WaitReady and ListenTimeout.
func (s *AppSpec) ReadyCheck() ReadyCheck {
	r := ReadyCheck{Mode: s.Ready}
	if r.Mode == "" {
		r.Mode = ReadyAuto
		if s.WaitReady {
			r.Mode = ReadyNotify
		}
	}
	if r.Mode == ReadyAuto && s.Balance == BalanceProxy {
		// The proxy sends connections only to a ready instance: its
		// private port accepting is the signal, and a program that never
		// listens is a failure, not ready by default.
		r.Mode = ReadyTCP
	}
	if u, ok := strings.CutPrefix(r.Mode, "http:"); ok {
		r.Mode, r.URL = "http", u
		if strings.HasPrefix(u, "//") {
			r.URL = "http:" + u
		}
	}
	r.Timeout = s.ListenTimeout.Std()
	if r.Timeout == 0 {
		r.Timeout = DefaultReadyTimeout.Std()
		if r.Mode == ReadyAuto {
			r.Timeout = DefaultListenTimeout.Std()
		}
	}
	return r
}

// NewSpec returns a spec with every default set; callers fill in what the
// user gave.
func NewSpec() AppSpec {
	return AppSpec{
		Instances:   1,
		ExecMode:    "fork",
		Autostart:   true,
		Autorestart: true,
		MaxRestarts: DefaultMaxRestarts,
		MinUptime:   DefaultMinUptime,
		KillSignal:  DefaultKillSignal,
		KillTimeout: DefaultKillTimeout,
		InstanceVar: DefaultInstanceVar,
		MaxSurge:    1,
		MergeLogs:   true,
		LogMaxSize:  DefaultLogMaxSize,
		LogRetain:   DefaultLogRetain,
		LogCompress: true,
	}
}

// Validate checks the invariants the daemon relies on. The CLI checks the
// user's input with better positions first; this is the daemon's guard
// against a malformed request, so every message names the app.
func (s *AppSpec) Validate() error {
	if err := ValidName(s.Name); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("app %q: %s: %w", s.Name, fmt.Sprintf(format, args...), ErrInvalid)
	}
	if len(s.Command) == 0 || s.Command[0] == "" {
		return bad("empty command")
	}
	if !filepath.IsAbs(s.Command[0]) {
		return bad("command %q is not an absolute path", s.Command[0])
	}
	if !filepath.IsAbs(s.Cwd) {
		return bad("cwd %q is not an absolute path", s.Cwd)
	}
	if s.Instances < 1 || s.Instances > MaxInstances {
		return bad("instances must be between 1 and %d, got %d", MaxInstances, s.Instances)
	}
	if s.Namespace != "" {
		if err := ValidName(s.Namespace); err != nil {
			return bad("namespace: %v", err)
		}
	}
	for _, list := range [][]string{s.Command, s.Args, s.InterpreterArgs} {
		for _, a := range list {
			if strings.ContainsRune(a, 0) {
				return bad("argument %q holds a NUL byte", a)
			}
		}
	}
	for _, env := range []map[string]string{s.BaseEnv, s.Env} {
		for k, v := range env {
			if err := validEnvKey(k); err != nil {
				return bad("env: %v", err)
			}
			if strings.ContainsRune(v, 0) {
				return bad("env: the value of %s holds a NUL byte", k)
			}
		}
	}
	for _, v := range []string{s.InstanceVar, s.IncrementVar} {
		if v != "" {
			if err := validEnvKey(v); err != nil {
				return bad("%v", err)
			}
		}
	}
	if s.MaxRestarts < 0 {
		return bad("max_restarts must not be negative")
	}
	if s.MinUptime < 0 || s.RestartDelay < 0 || s.ExpBackoffRestartDelay < 0 || s.KillTimeout < 0 || s.ListenTimeout < 0 || s.LogRotateInterval < 0 {
		return bad("durations must not be negative")
	}
	switch s.Balance {
	case "", BalanceReusePort, BalanceShared, BalanceProxy:
	default:
		return bad("balance must be %s, %s or %s, got %q", BalanceReusePort, BalanceShared, BalanceProxy, s.Balance)
	}
	if s.Balance != "" && len(s.Listen) == 0 {
		return bad("balance %q needs a port or listen address", s.Balance)
	}
	if s.MaxSurge < 0 || s.MaxSurge > MaxInstances {
		return bad("max_surge must be between 0 and %d", MaxInstances)
	}
	if s.Port < 0 || s.Port > 65535 {
		return bad("port must be between 1 and 65535")
	}
	if s.Watchdog < 0 {
		return bad("durations must not be negative")
	}
	switch r := s.ReadyCheck(); r.Mode {
	case ReadyAuto, ReadyNotify:
	case ReadyTCP:
		if s.Balance != BalanceProxy {
			return bad("ready %q probes the instance's private port, which only proxy mode gives (balance: proxy); use notify, or an http:// URL", s.Ready)
		}
	case "http":
		if !strings.HasPrefix(r.URL, "/") && !strings.HasPrefix(r.URL, "http://") {
			return bad("ready %q: give http:/path (on the instance's port) or an http:// URL", s.Ready)
		}
		if strings.HasPrefix(r.URL, "/") && s.Balance != BalanceProxy {
			return bad("ready %q probes the instance's private port, which only proxy mode gives (balance: proxy); give a full http:// URL instead", s.Ready)
		}
	default:
		return bad("ready must be auto, notify, tcp, or http:/path, got %q", s.Ready)
	}
	if _, err := ParseSignal(s.KillSignal); err != nil {
		return bad("kill_signal: %v", err)
	}
	if s.LogType != "" && s.LogType != "json" {
		return bad("log_type must be \"json\" or empty, got %q", s.LogType)
	}
	if s.LogMaxSize < 0 || s.LogRetain < 0 {
		return bad("log_max_size and log_retain must not be negative")
	}
	for _, p := range []string{s.OutFile, s.ErrorFile, s.LogFile} {
		if p != "" && !filepath.IsAbs(p) {
			return bad("log path %q is not absolute", p)
		}
	}
	return nil
}

// ValidName checks an app name. Names are used in file names and as
// command-line targets, so they are kept to printable characters without a
// path separator, and a name made of digits only would read as an id.
func ValidName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("app name is empty: %w", ErrInvalid)
	case len(name) > 128:
		return fmt.Errorf("app name %q is longer than 128 bytes: %w", name, ErrInvalid)
	case name == "all":
		return fmt.Errorf("app name \"all\" is reserved (it means every app): %w", ErrInvalid)
	case name == "." || name == "..":
		return fmt.Errorf("app name %q is not allowed: %w", name, ErrInvalid)
	}
	if _, err := strconv.Atoi(name); err == nil {
		return fmt.Errorf("app name %q is a number, which would read as an id: %w", name, ErrInvalid)
	}
	for _, r := range name {
		if r == '/' || r == 0 || r < ' ' || r == 0x7f {
			return fmt.Errorf("app name %q has a character that is not allowed (%q): %w", name, r, ErrInvalid)
		}
	}
	return nil
}

func validEnvKey(k string) error {
	if k == "" || strings.ContainsAny(k, "=\x00") {
		return fmt.Errorf("invalid variable name %q", k)
	}
	return nil
}

// Duration is a time.Duration that reads as pm2 writes durations: a number
// of milliseconds, or a string such as "1.5s", "200ms", "1m". It is written
// as a string.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a number of milliseconds or a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case float64:
		*d = Duration(x * float64(time.Millisecond))
		return nil
	case string:
		p, err := ParseDuration(x)
		if err != nil {
			return err
		}
		*d = p
		return nil
	}
	return fmt.Errorf("duration must be a number of milliseconds or a string like \"5s\", got %s", b)
}

// ParseDuration reads "1500" (milliseconds, as pm2), "1.5s", "200ms", "2m",
// "1h". Negative durations are refused.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("duration %q is negative", s)
		}
		return Duration(n * float64(time.Millisecond)), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want milliseconds or a value like \"5s\", \"200ms\", \"1m\"", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return Duration(v), nil
}

// ByteSize is a size in bytes that reads as pm2 writes sizes: a number of
// bytes, or a string with a K, M or G suffix (powers of 1024).
type ByteSize int64

// UnmarshalJSON reads a number of bytes or a size string.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case float64:
		*b = ByteSize(x)
		return nil
	case string:
		p, err := ParseByteSize(x)
		if err != nil {
			return err
		}
		*b = p
		return nil
	}
	return fmt.Errorf("size must be a number of bytes or a string like \"10M\", got %s", data)
}

// ParseByteSize reads "1024", "512K", "10M", "1G" (also "10MB", "10mb").
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "IB"), "B")
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "K"):
		mult = 1 << 10
	case strings.HasSuffix(t, "M"):
		mult = 1 << 20
	case strings.HasSuffix(t, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		t = t[:len(t)-1]
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want bytes or a value like \"512K\", \"10M\", \"1G\"", s)
	}
	return ByteSize(n * float64(mult)), nil
}

func (b ByteSize) String() string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%dG", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dM", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%dK", b>>10)
	}
	return strconv.FormatInt(int64(b), 10)
}

// RunsNode reports whether the program tend executes is node itself (a
// script run by node): only then does the app get Node's IPC channel. A
// package manager (npm start) is a Node.js program too, and would keep the
// channel for itself; the app under it would never see it.
func (s *AppSpec) RunsNode() bool {
	program := s.Interpreter
	if program == "" && len(s.Command) > 0 {
		program = s.Command[0]
	}
	switch filepath.Base(program) {
	case "node", "nodejs":
		return true
	}
	return false
}

// IsNode reports whether the app runs on Node.js: a node interpreter, or a
// program that is node or one of its package managers (npm start).
func (s *AppSpec) IsNode() bool {
	program := s.Interpreter
	if program == "" && len(s.Command) > 0 {
		program = s.Command[0]
	}
	switch filepath.Base(program) {
	case "node", "nodejs", "npm", "npx", "yarn", "pnpm":
		return true
	}
	return false
}
