package api

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// signals lists the signals a user may name, by their usual names.
var signals = map[string]syscall.Signal{
	"SIGHUP": syscall.SIGHUP, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGKILL": syscall.SIGKILL, "SIGUSR1": syscall.SIGUSR1, "SIGUSR2": syscall.SIGUSR2,
	"SIGTERM": syscall.SIGTERM, "SIGCONT": syscall.SIGCONT, "SIGSTOP": syscall.SIGSTOP,
	"SIGTSTP": syscall.SIGTSTP, "SIGWINCH": syscall.SIGWINCH, "SIGALRM": syscall.SIGALRM,
	"SIGPIPE": syscall.SIGPIPE, "SIGABRT": syscall.SIGABRT, "SIGTTIN": syscall.SIGTTIN,
	"SIGTTOU": syscall.SIGTTOU, "SIGSEGV": syscall.SIGSEGV, "SIGBUS": syscall.SIGBUS,
	"SIGFPE": syscall.SIGFPE, "SIGILL": syscall.SIGILL, "SIGTRAP": syscall.SIGTRAP,
	"SIGXCPU": syscall.SIGXCPU, "SIGXFSZ": syscall.SIGXFSZ, "SIGVTALRM": syscall.SIGVTALRM,
	"SIGPROF": syscall.SIGPROF, "SIGIO": syscall.SIGIO, "SIGSYS": syscall.SIGSYS,
}

// ParseSignal reads a signal given as "SIGTERM", "TERM", "term" or "15".
func ParseSignal(s string) (syscall.Signal, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(t); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal number %d is out of range", n)
		}
		return syscall.Signal(n), nil
	}
	if !strings.HasPrefix(t, "SIG") {
		t = "SIG" + t
	}
	if sig, ok := signals[t]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q (use a name like SIGTERM or a number)", s)
}

// SignalName returns the usual name of sig, such as "SIGTERM".
func SignalName(sig syscall.Signal) string {
	for name, v := range signals {
		if v == sig {
			return name
		}
	}
	return "signal " + strconv.Itoa(int(sig))
}
