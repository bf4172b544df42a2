package monit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"golang.org/x/sys/unix"

	"github.com/tend-pm/tend/internal/api"
)

// openPTY returns the program's side of a new pseudo-terminal; what the
// program draws is read and dropped.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, master) }()
	t.Cleanup(func() { tty.Close(); master.Close() })
	return tty
}

func termios(t *testing.T, tty *os.File) *unix.Termios {
	t.Helper()
	st, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// runOnPTY runs Run's program on tty and waits for its first poll, then
// checks that the terminal is raw.
func runOnPTY(t *testing.T, f *fakeDaemon, tty *os.File) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- run(context.Background(), f, Options{}, tea.WithInput(tty), tea.WithOutput(tty)) }()
	deadline := time.After(20 * time.Second)
	for n, _, _ := f.counts(); n == 0; n, _, _ = f.counts() {
		select {
		case err := <-done:
			t.Fatalf("monit ended before its first poll: %v", err)
		case <-deadline:
			t.Fatal("no poll")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if termios(t, tty).Lflag&unix.ICANON != 0 {
		t.Error("the terminal is not raw while monit runs")
	}
	return done
}

func sameTermios(t *testing.T, after, before *unix.Termios) {
	t.Helper()
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("terminal left changed: lflag %#x iflag %#x oflag %#x; was %#x %#x %#x",
			after.Lflag, after.Iflag, after.Oflag, before.Lflag, before.Iflag, before.Oflag)
	}
}

// TestLogFollowerPanic: a panic in the log follower's goroutine (outside
// Bubble Tea's own recovery, where it would end the process with the
// terminal raw) reaches the program, which puts the terminal back as it
// was; Run returns it as an ErrProgramPanic.
func TestLogFollowerPanic(t *testing.T) {
	tty := openPTY(t)
	before := termios(t, tty)
	f := newFake("api")
	boom := make(chan struct{})
	f.logs = func(context.Context, func(api.LogLine) error) error {
		<-boom
		panic("boom in the log follower")
	}
	done := runOnPTY(t, f, tty)
	close(boom)
	select {
	case err := <-done:
		if !errors.Is(err, tea.ErrProgramPanic) || !strings.Contains(err.Error(), "boom in the log follower") {
			t.Fatalf("Run = %v; want ErrProgramPanic with the panic", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("monit did not end after the panic")
	}
	sameTermios(t, termios(t, tty), before)
}

// TestSIGINTQuits: SIGINT (kill -INT; ^C when the terminal is not raw)
// ends monit like q: no error, so exit code 0, and the terminal back.
func TestSIGINTQuits(t *testing.T) {
	// This test's own handler keeps a SIGINT from ending the test binary
	// before Bubble Tea's handler is in place.
	guard := make(chan os.Signal, 16)
	signal.Notify(guard, syscall.SIGINT)
	defer signal.Stop(guard)

	tty := openPTY(t)
	before := termios(t, tty)
	done := runOnPTY(t, newFake("api"), tty)
	// Again until it ends: Bubble Tea starts listening in a goroutine.
	deadline := time.After(20 * time.Second)
	for {
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("SIGINT: Run = %v; want nil", err)
			}
			sameTermios(t, termios(t, tty), before)
			return
		case <-deadline:
			t.Fatal("SIGINT did not end monit")
		case <-time.After(50 * time.Millisecond):
		}
	}
}
