// Package testproc turns a test binary into a scripted child process, so
// tests start real processes without depending on a shell or on system
// binaries. A test's TestMain calls MaybeRun first; when the environment
// says so, the binary runs the script given in its arguments and exits.
//
//	func TestMain(m *testing.M) {
//		testproc.MaybeRun()
//		os.Exit(m.Run())
//	}
//
//	argv := testproc.Command("print", "hello", "sleep", "1h")
//
// Verbs, run in order:
//
//	print TEXT         write TEXT and a newline to stdout
//	stderr TEXT        write TEXT and a newline to stderr
//	nonl TEXT          write TEXT to stdout with no newline
//	lines N TEXT       write N lines "TEXT i" to stdout
//	bigline BYTES      write one line of BYTES 'x' characters to stdout
//	sleep DURATION     sleep (Go duration, or "forever")
//	exit CODE          exit with CODE
//	ignore SIGNAL      ignore SIGNAL (e.g. INT, TERM)
//	trap SIGNAL CODE   exit with CODE when SIGNAL arrives
//	pid FILE           write this process's pid to FILE
//	spawn FILE         start a grandchild that sleeps forever (same process
//	                   group) and write its pid to FILE
//	spawnsid FILE      the same, but the grandchild leaves the process group
//	                   and session (setsid), as a daemonizing program would
//	daemonize FILE     daemonize a grandchild the way daemons do: a child
//	                   that starts it with setsid and exits at once, so the
//	                   grandchild is orphaned; its pid goes to FILE
//	env FILE           write the environment to FILE, one VAR=value a line
//	write FILE TEXT    write TEXT to FILE
//	busy DURATION      burn CPU for DURATION ("forever" too)
//	hold MIB           allocate MIB mebibytes, touch every page, and keep
//	                   them until the process exits
//	spawnhold MIB FILE start a grandchild (same process group) that holds
//	                   MIB mebibytes, and write its pid to FILE once it
//	                   holds them
//	waitfile FILE      wait until FILE exists (the test says when to go on)
//	serve HOW          serve HTTP ("ok <pid> <TAG>", TAG from $TAG) until
//	                   SIGINT/SIGTERM, then drain gracefully (see serve.go);
//	                   HOW is "fds" (LISTEN_FDS, checking LISTEN_PID),
//	                   "systemd" (coreos/go-systemd's activation and
//	                   sd_notify, as a systemd service does it),
//	                   "port" ($PORT), or "fds-silent"/"port-silent" (never
//	                   send READY=1)
//	                   ($STATUS, if set, is the status of every answer)
//	firstline          on $PORT, answer each connection with the first
//	                   line it sent (to see a PROXY protocol header)
//	notify MSG         send MSG (e.g. READY=1) to $NOTIFY_SOCKET
//	watchdog N         send WATCHDOG=1 N times, every half WATCHDOG_USEC,
//	                   then stop sending (a hung program)
//	busjoin FILE       connect to the bus (TEND_BUS_URL) as an app would and
//	                   record broadcasts and inbox messages in FILE.<instance>;
//	                   answer the actions whoami and echo (see bus.go)
//	buspub SUBJ DATA   publish DATA on SUBJ on the bus
//	busrepeat SUBJ DATA  publish DATA on SUBJ every 50 ms, forever
//	httpget SOCK PATH FILE  GET PATH over the unix socket SOCK and write the
//	                   status line and body to FILE (a client as another
//	                   user, for permission tests)
package testproc

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// EnvVar is the variable that makes a test binary run as a scripted child.
const EnvVar = "GO_TESTPROC"

// MaybeRun runs the script in os.Args and exits, if EnvVar is set;
// otherwise it returns at once.
func MaybeRun() {
	if os.Getenv(EnvVar) != "1" {
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "testproc: %v\n", err)
		os.Exit(99)
	}
	os.Exit(0)
}

// Command returns the argv that runs this test binary as a child with the
// given script. The child needs EnvVar=1 in its environment (see Env).
func Command(script ...string) []string {
	exe, err := os.Executable()
	if err != nil {
		panic(err) // a test binary always knows its path on Linux
	}
	return append([]string{exe}, script...)
}

// Env is the environment entry that makes a child run its script.
func Env() string { return EnvVar + "=1" }

func run(args []string) error {
	need := func(n int) error {
		if len(args) < n+1 {
			return fmt.Errorf("%s needs %d argument(s)", args[0], n)
		}
		return nil
	}
	// held keeps what "hold" allocated reachable until the process exits.
	var held [][]byte
	defer func() { runtime.KeepAlive(held) }()
	for len(args) > 0 {
		verb := args[0]
		var n int
		switch verb {
		case "hold":
			if err := need(1); err != nil {
				return err
			}
			b, err := hold(args[1])
			if err != nil {
				return fmt.Errorf("hold: %w", err)
			}
			held = append(held, b)
			args = args[2:]
			continue
		case "spawnhold":
			n = 2
		case "print", "stderr", "nonl", "bigline", "sleep", "exit", "ignore", "pid", "spawn", "spawnsid", "daemonize", "env", "busy", "waitfile", "serve", "notify", "watchdog", "busjoin":
			n = 1
		case "firstline":
			n = 0
		case "lines", "trap", "write", "buspub", "busrepeat":
			n = 2
		case "httpget":
			n = 3
		default:
			return fmt.Errorf("unknown verb %q", verb)
		}
		if err := need(n); err != nil {
			return err
		}
		if err := do(verb, args[1:n+1]); err != nil {
			return fmt.Errorf("%s: %w", verb, err)
		}
		args = args[n+1:]
	}
	return nil
}

func do(verb string, a []string) error {
	switch verb {
	case "busjoin":
		return busJoin(a[0])
	case "buspub":
		return busPub(a[0], a[1])
	case "busrepeat":
		return busRepeat(a[0], a[1])
	case "serve":
		return serve(a[0])
	case "firstline":
		return firstLine()
	case "notify":
		return Notify(a[0])
	case "watchdog":
		n, err := strconv.Atoi(a[0])
		if err != nil {
			return err
		}
		return watchdog(n)
	case "print":
		_, err := fmt.Fprintln(os.Stdout, a[0])
		return err
	case "stderr":
		_, err := fmt.Fprintln(os.Stderr, a[0])
		return err
	case "nonl":
		_, err := os.Stdout.WriteString(a[0])
		return err
	case "lines":
		n, err := strconv.Atoi(a[0])
		if err != nil {
			return err
		}
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "%s %d\n", a[1], i)
			if b.Len() > 64<<10 {
				if _, err := os.Stdout.WriteString(b.String()); err != nil {
					return err
				}
				b.Reset()
			}
		}
		_, err = os.Stdout.WriteString(b.String())
		return err
	case "bigline":
		n, err := strconv.Atoi(a[0])
		if err != nil {
			return err
		}
		_, err = os.Stdout.WriteString(strings.Repeat("x", n) + "\n")
		return err
	case "sleep":
		if a[0] == "forever" {
			select {}
		}
		d, err := time.ParseDuration(a[0])
		if err != nil {
			return err
		}
		time.Sleep(d)
	case "spawnhold":
		tmp := a[1] + ".tmp"
		attr := &os.ProcAttr{Env: os.Environ(), Files: []*os.File{nil, nil, nil}}
		_, err := os.StartProcess(Command()[0], []string{Command()[0], "hold", a[0], "pid", tmp, "sleep", "forever"}, attr)
		if err != nil {
			return err
		}
		for {
			if _, err := os.Stat(tmp); err == nil {
				return os.Rename(tmp, a[1])
			}
			time.Sleep(2 * time.Millisecond)
		}
	case "busy":
		if a[0] == "forever" {
			a[0] = "876000h"
		}
		d, err := time.ParseDuration(a[0])
		if err != nil {
			return err
		}
		for end := time.Now().Add(d); time.Now().Before(end); {
		}
	case "waitfile":
		for {
			if _, err := os.Stat(a[0]); err == nil {
				return nil
			}
			time.Sleep(2 * time.Millisecond)
		}
	case "httpget":
		out := "dial: "
		c, err := net.Dial("unix", a[0])
		if err == nil {
			fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: tend\r\n\r\n", a[1])
			b, _ := io.ReadAll(c)
			c.Close()
			out = string(b)
		} else {
			out += err.Error()
		}
		return os.WriteFile(a[2], []byte(out), 0o644)
	case "exit":
		code, err := strconv.Atoi(a[0])
		if err != nil {
			return err
		}
		os.Exit(code)
	case "ignore":
		sig, err := parseSignal(a[0])
		if err != nil {
			return err
		}
		signal.Ignore(sig)
	case "trap":
		sig, err := parseSignal(a[0])
		if err != nil {
			return err
		}
		code, err := strconv.Atoi(a[1])
		if err != nil {
			return err
		}
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, sig)
		go func() { <-ch; os.Exit(code) }()
	case "pid":
		return os.WriteFile(a[0], []byte(strconv.Itoa(os.Getpid())), 0o600)
	case "spawn", "spawnsid":
		attr := &os.ProcAttr{
			Env:   os.Environ(),
			Files: []*os.File{nil, nil, nil},
			Sys:   &syscall.SysProcAttr{Setsid: verb == "spawnsid"},
		}
		p, err := os.StartProcess(Command()[0], []string{Command()[0], "sleep", "forever"}, attr)
		if err != nil {
			return err
		}
		return os.WriteFile(a[0], []byte(strconv.Itoa(p.Pid)), 0o600)
	case "daemonize":
		attr := &os.ProcAttr{Env: os.Environ(), Files: []*os.File{nil, nil, nil}}
		p, err := os.StartProcess(Command()[0], []string{Command()[0], "spawnsid", a[0]}, attr)
		if err != nil {
			return err
		}
		_, err = p.Wait()
		return err
	case "env":
		return os.WriteFile(a[0], []byte(strings.Join(os.Environ(), "\n")+"\n"), 0o600)
	case "write":
		return os.WriteFile(a[0], []byte(a[1]), 0o600)
	}
	return nil
}

func parseSignal(s string) (syscall.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(s), "SIG") {
	case "INT":
		return syscall.SIGINT, nil
	case "TERM":
		return syscall.SIGTERM, nil
	case "HUP":
		return syscall.SIGHUP, nil
	case "USR1":
		return syscall.SIGUSR1, nil
	case "USR2":
		return syscall.SIGUSR2, nil
	case "QUIT":
		return syscall.SIGQUIT, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// hold maps mib mebibytes and writes to every page, so they count in the
// process's resident memory. The memory comes from mmap, outside Go's
// heap: the race detector would shadow a heap allocation with as much
// again, and a test would not know what to expect.
func hold(mib string) ([]byte, error) {
	n, err := strconv.Atoi(mib)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("%q is not a number of MiB", mib)
	}
	if n == 0 {
		return nil, nil
	}
	b, err := syscall.Mmap(-1, 0, n<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return b, nil
}
