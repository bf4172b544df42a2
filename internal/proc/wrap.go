package proc

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// WrapArg is the first argument that makes the tend binary act as the exec
// wrapper (see Wrap) instead of its command line.
const WrapArg = "__tend-exec"

// Wrap returns the command that runs argv through the exec wrapper: tend
// itself, which sets LISTEN_PID (and WATCHDOG_PID when a watchdog is set)
// to its own pid and then executes argv in place.
//
// The systemd protocol wants LISTEN_PID to be the pid of the process the
// sockets are for, so that a child of that process, inheriting the
// environment, does not take them too. That pid exists only after fork,
// and Go's ForkExec cannot change the environment between fork and exec;
// exec keeps the pid, so a wrapper that knows its pid and then executes
// the program gives exactly the right value. Only instances that get
// sockets or a watchdog pay for the extra exec (about a millisecond).
func Wrap(self string, c Cmd) Cmd {
	c.Path = self
	c.Argv = append([]string{c.Argv[0], WrapArg}, c.Argv...)
	return c
}

// RunWrapper is the exec wrapper's main: args are what followed WrapArg.
// It returns only on failure, with the exit status to use; the message
// goes to stderr, which is the instance's error log.
func RunWrapper(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "tend: exec wrapper: no program given")
		return 127
	}
	pid := strconv.Itoa(os.Getpid())
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "LISTEN_PID=") || strings.HasPrefix(kv, "WATCHDOG_PID=")
	})
	if os.Getenv("LISTEN_FDS") != "" {
		env = append(env, "LISTEN_PID="+pid)
	}
	if os.Getenv("WATCHDOG_USEC") != "" {
		env = append(env, "WATCHDOG_PID="+pid)
	}
	err := syscall.Exec(args[0], args, env)
	fmt.Fprintf(os.Stderr, "tend: cannot execute %s: %v\n", args[0], err)
	return 127
}
