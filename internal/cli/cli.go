// Package cli is tend's command line: pm2's commands, names and flags,
// as a client of the daemon's API. Every error travels up to Main, which
// prints it once, with what to do next, and picks the exit code.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"
	"golang.org/x/sys/unix"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/client"
	"github.com/tend-pm/tend/internal/socket"
)

// Exit codes, documented in README.md.
const (
	ExitOK       = 0
	ExitFailed   = 1 // the command could not do what was asked
	ExitInvalid  = 2 // bad arguments, flags or config file: nothing was done
	ExitNoDaemon = 3 // the daemon could not be reached or started
)

// IO is where a command reads and writes, and what it knows about the
// user's side. Tests build their own.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	// OutTTY tells whether Out is a terminal: tables for people, tab-
	// separated text for scripts.
	OutTTY bool
	Color  bool
	// Environ and Cwd are the user's, passed on to apps they start.
	Environ []string
	Cwd     string
	Now     func() time.Time
	// Exe is the tend binary, re-executed to start the daemon.
	Exe string
}

// System returns the IO of this process.
func System() *IO {
	cwd, _ := os.Getwd()
	exe, _ := os.Executable()
	tty := isTerminal(os.Stdout)
	return &IO{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		OutTTY:  tty,
		Color:   tty && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb",
		Environ: os.Environ(), Cwd: cwd, Now: time.Now, Exe: exe,
	}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), ioctlGetTermios)
	return err == nil
}

// getenv looks name up in io.Environ.
func (o *IO) getenv(name string) string {
	for _, kv := range o.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// usageError marks errors in the command line itself.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// Main runs the command line args and returns the exit code.
func Main(ctx context.Context, args []string, o *IO) int {
	env := &Env{IO: o}
	// What follows "--" belongs to the program `tend start` runs; the
	// parser would mix it with tend's own arguments, so it is set aside.
	for i, a := range args {
		if a == "--" {
			args, env.afterDash, env.dash = args[:i], args[i+1:], true
			break
		}
	}
	root := newRoot(env)
	only(root, args)
	err := root.Run(ctx, append([]string{"tend"}, args...))
	if err == nil && env.dash && !env.dashUsed {
		err = usagef("arguments after -- are for the program `tend start` runs")
	}
	if err == nil {
		return ExitOK
	}
	printError(o.Err, err)
	return exitCode(err)
}

func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue), errors.Is(err, api.ErrInvalid):
		return ExitInvalid
	case errors.Is(err, client.ErrNoDaemon), errors.Is(err, errDaemonStart), errors.Is(err, socket.ErrPathTooLong):
		return ExitNoDaemon
	}
	return ExitFailed
}

// printError prints err as "tend: ..." lines, adding the next step to take
// where the kind of error suggests one.
func printError(w io.Writer, err error) {
	msg := api.Text(err)
	var hint string
	switch {
	case errors.Is(err, api.ErrNotFound) && strings.Contains(msg, "app "):
		hint = "`tend ls` lists the apps"
	case errors.Is(err, client.ErrNoDaemon):
		hint = "the daemon is not running; any command that needs it starts it"
	}
	for i, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		if i == 0 {
			fmt.Fprintf(w, "tend: %s\n", line)
		} else {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	if hint != "" {
		fmt.Fprintf(w, "  (%s)\n", hint)
	}
}

// Env is what commands share: the IO, the daemon client (made on first
// use), and the arguments after "--".
type Env struct {
	IO     *IO
	client *client.Client

	afterDash      []string
	dash, dashUsed bool
	notFound       string
}

// Home returns TEND_HOME, made absolute, or ~/.tend.
func (e *Env) Home() (string, error) {
	home := e.IO.getenv("TEND_HOME")
	if home == "" {
		h := e.IO.getenv("HOME")
		if h == "" {
			var err error
			if h, err = os.UserHomeDir(); err != nil {
				return "", fmt.Errorf("cannot find a home directory for TEND_HOME; set TEND_HOME")
			}
		}
		home = filepath.Join(h, ".tend")
	}
	if !filepath.IsAbs(home) {
		home = filepath.Join(e.IO.Cwd, home)
	}
	return filepath.Clean(home), nil
}

// Client returns a client of the daemon, starting the daemon if none runs.
func (e *Env) Client(ctx context.Context) (*client.Client, error) {
	if e.client != nil {
		return e.client, nil
	}
	c, err := e.connect(ctx, true)
	if err != nil {
		return nil, err
	}
	e.client = c
	return c, nil
}

// RunningClient returns a client that never starts a daemon: its requests
// fail with client.ErrNoDaemon when none runs.
func (e *Env) RunningClient(ctx context.Context) (*client.Client, error) {
	if e.client != nil {
		return e.client, nil
	}
	c, err := e.connect(ctx, false)
	if err != nil {
		return nil, err
	}
	e.client = c
	return c, nil
}

// Categories of commands in `tend --help`.
const (
	catApps   = "Apps"
	catLogs   = "Logs"
	catBus    = "Bus"
	catDaemon = "Daemon and state"
)

func newRoot(env *Env) *ucli.Command {
	root := &ucli.Command{
		Name:  "tend",
		Usage: "runs and watches over your services",
		Description: `tend runs and watches over your services, in any language: it restarts what
crashes, keeps logs, and keeps its list of apps across daemon restarts.
It speaks pm2's commands, flags and ecosystem files.`,
		Version:                   api.Version(),
		Reader:                    env.IO.In,
		Writer:                    env.IO.Out,
		ErrWriter:                 env.IO.Err,
		EnableShellCompletion:     true,
		HideHelpCommand:           true,
		DisableSliceFlagSeparator: true,
		Suggest:                   true,
		OnUsageError:              onUsageError,
		// Errors go back to Main, which prints them once.
		ExitErrHandler: func(context.Context, *ucli.Command, error) {},
		CommandNotFound: func(ctx context.Context, c *ucli.Command, name string) {
			env.notFound = name
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if env.notFound != "" || c.NArg() > 0 {
				return usagef("unknown command %q (see `tend --help`)", c.Args().First())
			}
			return ucli.ShowRootCommandHelp(c)
		},
	}
	add := func(category string, cmds ...*ucli.Command) {
		for _, c := range cmds {
			c.Category = category
			if c.OnUsageError == nil {
				c.OnUsageError = onUsageError
			}
			root.Commands = append(root.Commands, c)
		}
	}
	add(catApps, newStart(env), newAction(env, actionStop), newAction(env, actionRestart), newAction(env, actionReload),
		newAction(env, actionDelete), newAction(env, actionReset), newSignal(env), newScale(env),
		newList(env), newJList(env), newDescribe(env), newEnvCmd(env), newVerify(env), newMonit(env))
	add(catLogs, newLogs(env), newFlush(env), newReloadLogs(env))
	add(catBus, newBus(env), newSend(env), newTrigger(env))
	add(catDaemon, newSave(env), newResurrect(env), newKill(env), newPing(env), newUpdate(env), newDaemon(env))
	return root
}

// only keeps, of root's commands, the one args names, when its first
// argument names one exactly. urfave/cli prepares every command of the
// tree (help, flag names, duplicate checks) before it runs any: for a
// command such as `tend ls`, that was a third of the time the whole
// program spends in Go. A command line that does not start with a
// command's name (help, an unknown command to suggest for) keeps all.
func only(root *ucli.Command, args []string) {
	if len(args) == 0 {
		return
	}
	for _, c := range root.Commands {
		if c.Name == args[0] || slices.Contains(c.Aliases, args[0]) {
			root.Commands = []*ucli.Command{c}
			return
		}
	}
}

// onUsageError makes flag errors usage errors, without the help page.
func onUsageError(_ context.Context, c *ucli.Command, err error, _ bool) error {
	return usageError{fmt.Errorf("%w (see `tend %s --help`)", err, c.Name)}
}

// needArgs checks the number of positional arguments of c.
func needArgs(c *ucli.Command, min, max int) error {
	n := c.NArg()
	switch {
	case n < min && min == max:
		return usagef("%s takes %d argument(s), got %d (see `tend %s --help`)", c.Name, min, n, c.Name)
	case n < min:
		return usagef("%s needs at least %d argument(s) (see `tend %s --help`)", c.Name, min, c.Name)
	case max >= 0 && n > max:
		return usagef("%s takes at most %d argument(s), got %d (see `tend %s --help`)", c.Name, max, n, c.Name)
	}
	return nil
}

// completeApps offers the names of the apps for shell completion, if a
// daemon runs (completion never starts one).
func completeApps(env *Env) ucli.ShellCompleteFunc {
	return func(ctx context.Context, c *ucli.Command) {
		cl, err := env.RunningClient(ctx)
		if err != nil {
			return
		}
		apps, err := cl.List(ctx)
		if err != nil {
			return
		}
		fmt.Fprintln(env.IO.Out, "all")
		for _, a := range apps {
			fmt.Fprintln(env.IO.Out, a.Name)
		}
	}
}
