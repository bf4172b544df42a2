package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/rawnet"
)

// user is what the CLI knows about the user's side, read once from
// Options: the daemon must not guess any of it.
type user struct {
	cwd  string
	vars map[string]string // Options.Environ; later entries win, as in a shell
}

func newUser(o Options) (*user, *Error) {
	u := &user{cwd: o.Cwd, vars: make(map[string]string, len(o.Environ))}
	if u.cwd == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, &Error{Msg: "cannot find the working directory: " + err.Error(), err: err}
		}
		u.cwd = wd
	}
	for _, kv := range o.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			u.vars[k] = v
		}
	}
	return u, nil
}

// abs makes p absolute against dir, expanding a leading "~/" as a shell
// would have on the command line (YAML and JSON files get no shell).
func (u *user) abs(dir, p string) string {
	if home := u.vars["HOME"]; home != "" && (p == "~" || strings.HasPrefix(p, "~/")) {
		p = filepath.Join(home, p[1:])
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	return filepath.Clean(p)
}

// lookPath finds an executable like exec.LookPath, but in the user's PATH
// (Options.Environ) rather than in this process's. A name with a slash is
// taken relative to dir.
func (u *user) lookPath(name, dir string) (string, bool) {
	if strings.Contains(name, "/") || name == "~" {
		p := u.abs(dir, name)
		return p, isExecutable(p)
	}
	for _, d := range filepath.SplitList(u.vars["PATH"]) {
		if d == "" {
			continue // an empty entry means ".", which a config must not depend on
		}
		if p := filepath.Join(u.abs(u.cwd, d), name); isExecutable(p) {
			return p, true
		}
	}
	return "", false
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// tendHome is $TEND_HOME, or ~/.tend.
func (u *user) tendHome() string {
	if h := u.vars["TEND_HOME"]; h != "" {
		return u.abs(u.cwd, h)
	}
	if home := u.vars["HOME"]; home != "" {
		return filepath.Join(home, ".tend")
	}
	return ""
}

// baseEnv is the environment an app inherits from the CLI. Variables that
// tend sets per instance, or that belong to the process that ran the CLI
// (a systemd socket, a Node IPC channel), must not leak into apps.
func (u *user) baseEnv(all bool, prefixes []string) map[string]string {
	if all {
		return nil
	}
	env := make(map[string]string, len(u.vars))
	for k, v := range u.vars {
		if strings.HasPrefix(k, "TEND_") {
			continue
		}
		switch k {
		case "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NODE_CHANNEL_FD",
			"NODE_CHANNEL_SERIALIZATION_MODE", "NODE_UNIQUE_ID":
			continue
		}
		if hasAnyPrefix(k, prefixes) {
			continue
		}
		env[k] = v
	}
	if len(env) == 0 {
		return nil
	}
	return env
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// interpreterFor returns the interpreter pm2 picks for a file extension.
func interpreterFor(ext string) string {
	switch ext {
	case ".js", ".mjs", ".cjs":
		return "node"
	case ".py":
		return "python3"
	case ".sh", ".bash":
		return "bash"
	case ".rb":
		return "ruby"
	case ".php":
		return "php"
	case ".pl":
		return "perl"
	}
	return ""
}

// resolver turns drafts into specs: it fixes paths, finds how to run the
// script, and fills the environment.
type resolver struct {
	u       *user
	r       *reporter
	envName string // the --env overlay; "" for none
	dir     string // the default cwd: the config file's directory, or the CLI's
	source  string
}

// flagName names a field as the user can set it: a flag on the command
// line, a key in a file.
func (rs *resolver) flagName(field string) string {
	if rs.r.file == "" {
		return "--" + strings.ReplaceAll(field, "_", "-")
	}
	return "\"" + field + "\""
}

func (rs *resolver) resolve(a *draft) (api.AppSpec, bool) {
	before := rs.r.count
	s := a.spec
	s.Source = rs.source
	s.Cwd = rs.dir
	if a.cwd != "" {
		s.Cwd = rs.u.abs(rs.dir, a.cwd)
		if fi, err := os.Stat(s.Cwd); err != nil {
			rs.r.errorf(a.cwdAt, "cwd %q does not exist", a.cwd)
			return s, false
		} else if !fi.IsDir() {
			rs.r.errorf(a.cwdAt, "cwd %q is not a directory", a.cwd)
			return s, false
		}
	}
	if !rs.command(a, &s) {
		return s, false
	}

	s.Name = a.name
	if !a.hasName {
		s.Name = defaultName(&s)
	}
	if a.appendEnvToName && rs.envName != "" {
		s.Name += "-" + rs.envName
	}
	nameAt := a.at
	if a.hasName {
		nameAt = a.nameAt
	}
	if err := api.ValidName(s.Name); err != nil {
		rs.r.errorf(nameAt, "%s", strings.TrimSuffix(err.Error(), ": "+api.ErrInvalid.Error()))
	}

	s.FilterAllEnv, s.FilterEnv = a.filterAll, a.filterPrefixes
	s.BaseEnv = rs.u.baseEnv(a.filterAll, a.filterPrefixes)
	s.Env = maps.Clone(a.env)
	if over, ok := a.envs[rs.envName]; ok && rs.envName != "" {
		if s.Env == nil {
			s.Env = map[string]string{}
		}
		maps.Copy(s.Env, over)
	}
	if len(s.Env) == 0 {
		s.Env = nil
	}
	if rs.r.file != "" {
		s.EnvName = rs.envName
	}

	if s.OutFile != "" {
		s.OutFile = rs.u.abs(s.Cwd, s.OutFile)
	}
	if s.ErrorFile != "" {
		s.ErrorFile = rs.u.abs(s.Cwd, s.ErrorFile)
	}
	switch {
	case a.logDefault:
		home := rs.u.tendHome()
		if home == "" {
			rs.r.errorf(a.logAt, "%s: the default log path needs $HOME or $TEND_HOME", rs.flagName("log_file"))
		}
		s.LogFile = filepath.Join(home, "logs", s.Name+".log")
	case s.LogFile != "":
		s.LogFile = rs.u.abs(s.Cwd, s.LogFile)
	}

	cluster(&s)
	rs.clusterWithoutPort(a, &s)

	if rs.r.count > before {
		return s, false
	}
	if err := s.Validate(); err != nil {
		rs.r.errorf(a.at, "%s", strings.TrimSuffix(err.Error(), ": "+api.ErrInvalid.Error()))
		return s, false
	}
	return s, true
}

// command decides how the script runs and sets Script, Interpreter, Shell
// and Command (see the package documentation for the rules).
func (rs *resolver) command(a *draft, s *api.AppSpec) bool {
	if a.shell {
		return rs.shell(a, s)
	}
	script := a.script
	path := rs.u.abs(s.Cwd, script)
	fi, statErr := os.Stat(path)
	oneWord := !strings.ContainsAny(script, " \t\n")
	switch {
	case statErr == nil && fi.IsDir():
		rs.r.errorf(a.scriptAt, "%q is a directory, not a script", script)
		return false
	case errors.Is(statErr, os.ErrPermission):
		rs.r.errorf(a.scriptAt, "script %q: %v", script, statErr)
		return false
	}
	// Any other failure (no such file, a name too long for a path) means
	// the script is not a file: it may still be a program or a command line.
	file := statErr == nil
	bin := ""
	if file {
		bin = path
	} else if oneWord && !strings.Contains(script, "/") {
		bin, _ = rs.u.lookPath(script, s.Cwd)
	}
	notFound := func() bool {
		if oneWord && !strings.Contains(script, "/") {
			rs.r.errorf(a.scriptAt, "script %q not found (looked in %s and PATH)", script, s.Cwd)
		} else {
			rs.r.errorf(a.scriptAt, "script %q not found (looked in %s)", script, s.Cwd)
		}
		return false
	}

	interp := ""
	switch {
	case a.hasInterp && a.interpreter == "none":
		if bin == "" && !oneWord {
			return rs.shell(a, s)
		}
		if bin == "" {
			return notFound()
		}
		if !isExecutable(bin) {
			rs.r.errorf(a.scriptAt, "%q is not executable (chmod +x it, or set an interpreter other than \"none\")", script)
			return false
		}
	case a.hasInterp:
		p, ok := rs.u.lookPath(a.interpreter, s.Cwd)
		if !ok {
			rs.r.errorf(a.interpAt, "interpreter %q not found (looked in PATH)", a.interpreter)
			return false
		}
		if bin == "" {
			return notFound()
		}
		interp = p
	case file:
		ext := strings.ToLower(filepath.Ext(bin))
		switch name := interpreterFor(ext); {
		case ext == ".ts" || ext == ".tsx" || ext == ".mts" || ext == ".cts":
			rs.r.errorf(a.scriptAt, "%q is TypeScript, which needs an interpreter: set %s (for example \"tsx\", \"bun\" or \"ts-node\")", script, rs.flagName("interpreter"))
			return false
		case name != "":
			p, ok := rs.u.lookPath(name, s.Cwd)
			if !ok {
				rs.r.errorf(a.scriptAt, "%q needs the interpreter %q, which is not in PATH (install it, or set %s)", script, name, rs.flagName("interpreter"))
				return false
			}
			interp = p
		case !isExecutable(bin):
			rs.r.errorf(a.scriptAt, "%q is not executable and its extension names no interpreter (chmod +x it, or set %s)", script, rs.flagName("interpreter"))
			return false
		}
	case bin != "": // a program found in PATH
	case !oneWord:
		return rs.shell(a, s)
	default:
		return notFound()
	}

	s.Script, s.Args = bin, a.args
	if interp == "" {
		if len(a.interpArgs) > 0 {
			rs.r.warnf(a.interpArgsAt, "%s has no effect: %q runs without an interpreter", rs.flagName("interpreter_args"), script)
		}
		s.Command = append([]string{bin}, a.args...)
		return true
	}
	s.Interpreter, s.InterpreterArgs = interp, a.interpArgs
	s.Command = append(append(append([]string{interp}, a.interpArgs...), bin), a.args...)
	return true
}

// shell makes s run a command line with /bin/sh, with the args quoted so
// that the shell passes them through unchanged.
func (rs *resolver) shell(a *draft, s *api.AppSpec) bool {
	if len(a.interpArgs) > 0 {
		rs.r.warnf(a.interpArgsAt, "%s has no effect: %q is a shell command line", rs.flagName("interpreter_args"), a.script)
	}
	line := a.script
	for _, arg := range a.args {
		line += " " + shellQuote(arg)
	}
	s.Script, s.Args, s.Shell = a.script, a.args, true
	s.Command = []string{"/bin/sh", "-c", line}
	return true
}

// defaultName is pm2's default: the script's base name without its
// extension; for a command line, its first word's.
func defaultName(s *api.AppSpec) string {
	p := s.Script
	if s.Shell {
		if w, err := shellSplit(p); err == nil && len(w) > 0 {
			p = w[0]
		} else if f := strings.Fields(p); len(f) > 0 {
			p = f[0]
		}
	}
	base := filepath.Base(p)
	if n := strings.TrimSuffix(base, filepath.Ext(base)); n != "" {
		return n
	}
	return base
}

// cluster completes the fields of cluster mode (docs/cluster.md): port
// and listen name each other; an app with a port gets a balancing mode by
// kind. A Node.js app gets reuseport, which tend's preload makes work with
// an unmodified listen(PORT). Any other program gets the proxy, the one
// mode that works with a program that only reads $PORT; programs that
// take sockets the systemd way (LISTEN_FDS) can choose reuseport or shared.
func cluster(s *api.AppSpec) {
	if s.Port > 0 && len(s.Listen) == 0 {
		s.Listen = []string{":" + strconv.Itoa(s.Port)}
	}
	if s.Port == 0 {
		for _, l := range s.Listen {
			if a, err := rawnet.ParseAddr(l); err == nil && !a.Unix() {
				s.Port = a.Port
				break
			}
		}
	}
	if len(s.Listen) > 0 && s.Balance == "" {
		s.Balance = api.BalanceProxy
		if s.IsNode() {
			s.Balance = api.BalanceReusePort
		}
	}
	if len(s.Listen) > 0 || s.Instances > 1 {
		s.ExecMode = "cluster"
	}
}

// clusterWithoutPort warns about an app that asks for cluster mode with
// no port: by name (exec_mode "cluster"), or as pm2 reads a Node.js app
// with more than one instance and no exec_mode ("pm2 start app.js -i
// max"). pm2's cluster module shares one port among Node.js workers,
// while tend balances connections only on the addresses it holds for the
// app. Without one, the instances run side by side, and a server that
// listens on a fixed port crash-loops on EADDRINUSE in all but one of
// them. (Other programs with several instances are workers, run that way
// on purpose, and are not warned at every start.)
func (rs *resolver) clusterWithoutPort(a *draft, s *api.AppSpec) {
	if len(s.Listen) > 0 {
		return
	}
	at := a.execModeAt
	switch {
	case at != (where{}) && a.spec.ExecMode == "cluster":
	case at == (where{}) && s.Instances > 1 && s.IsNode():
		at = a.instancesAt
	default:
		return
	}
	rs.r.warn(at, fmt.Sprintf("cluster mode without a port: tend balances connections among the instances only on "+
		"the port given with %s (or %s); without one, the instances run side by side, each on its own, "+
		"and a program that listens on a fixed port fails with EADDRINUSE in all but one",
		rs.flagName("port"), rs.flagName("listen")))
}
