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
	"strings"
	"time"

	"github.com/spf13/cobra"
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
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
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
	root := newRoot(env)
	root.SetArgs(args)
	root.SetIn(o.In)
	root.SetOut(o.Out)
	root.SetErr(o.Err)
	err := root.ExecuteContext(ctx)
	if env.client != nil {
		env.client.Close()
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
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"):
		// cobra's own errors for a mistyped command carry no type.
		return ExitInvalid
	}
	return ExitFailed
}

// printError prints err as "tend: ..." lines, adding the next step to take
// where the kind of error suggests one.
func printError(w io.Writer, err error) {
	msg := err.Error()
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

// Env is what commands share: the IO, and the daemon client, made on
// first use.
type Env struct {
	IO     *IO
	client *client.Client
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

func newRoot(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "tend",
		Short: "tend runs and watches over your services",
		Long: `tend runs and watches over your services, in any language: it restarts what
crashes, keeps logs, and keeps its list of apps across daemon restarts.
It speaks pm2's commands, flags and ecosystem files.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Version:           api.Version(),
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see `tend %s --help`)", err, c.Name())}
	})
	defer wrapArgs(root)
	root.AddGroup(&cobra.Group{ID: "apps", Title: "Apps:"}, &cobra.Group{ID: "logs", Title: "Logs:"}, &cobra.Group{ID: "daemon", Title: "Daemon and state:"})
	for _, c := range []*cobra.Command{
		newStart(env), newAction(env, actionStop), newAction(env, actionRestart), newAction(env, actionReload),
		newAction(env, actionDelete), newAction(env, actionReset), newSignal(env),
		newList(env), newJList(env), newDescribe(env), newEnvCmd(env),
	} {
		c.GroupID = "apps"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newLogs(env), newFlush(env), newReloadLogs(env)} {
		c.GroupID = "logs"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newSave(env), newResurrect(env), newKill(env), newPing(env), newUpdate(env), newDaemon(env)} {
		c.GroupID = "daemon"
		root.AddCommand(c)
	}
	return root
}

// wrapArgs marks the argument-count errors of every command as usage
// errors, which cobra returns as plain errors.
func wrapArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return usageError{fmt.Errorf("%s: %w (see `tend %s --help`)", cmd.Name(), err, cmd.Name())}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// completeApps offers the names of the apps for shell completion, if a
// daemon runs (completion never starts one).
func completeApps(env *Env) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		c, err := env.RunningClient(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		apps, err := c.List(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := []string{"all"}
		for _, a := range apps {
			names = append(names, a.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
