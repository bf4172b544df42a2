package testproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// serve is a well-behaved HTTP server of the kind tend's cluster mode is
// for. Its stop is the graceful one a zero-downtime reload needs from an
// app: stop accepting (the daemon keeps the socket, so queued connections
// wait for the next process), answer every request still arriving on open
// connections with "Connection: close", and exit once they are closed.
// Go's own Server.Shutdown closes idle keep-alive connections at once,
// which races a client sending its next request on them.
func serve(how string) error {
	silent := strings.HasSuffix(how, "-silent")
	how = strings.TrimSuffix(how, "-silent")
	var ln net.Listener
	var err error
	switch how {
	case "fds":
		if pid := os.Getenv("LISTEN_PID"); pid != strconv.Itoa(os.Getpid()) {
			return fmt.Errorf("LISTEN_PID is %q, not this process's pid %d", pid, os.Getpid())
		}
		if os.Getenv("LISTEN_FDS") != "1" {
			return fmt.Errorf("LISTEN_FDS is %q, want 1", os.Getenv("LISTEN_FDS"))
		}
		ln, err = net.FileListener(os.NewFile(3, "listen"))
	case "systemd":
		// What a Go service written for systemd does, with the library
		// such services use.
		var lns []net.Listener
		if lns, err = activation.Listeners(); err == nil && len(lns) != 1 {
			err = fmt.Errorf("go-systemd found %d listeners, want 1 (LISTEN_PID %q, pid %d)", len(lns), os.Getenv("LISTEN_PID"), os.Getpid())
		}
		if err == nil {
			ln = lns[0]
		}
	case "port":
		ln, err = net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	default:
		return fmt.Errorf("serve %q: want fds or port", how)
	}
	if err != nil {
		return err
	}
	// draining: answers carry Connection: close. stopped: the accept loop
	// has ended, so no connection can appear any more and the last one to
	// close may end the process.
	var draining, stopped atomic.Bool
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	allClosed := make(chan struct{})
	var closeOnce sync.Once
	done := func() { closeOnce.Do(func() { close(allClosed) }) }
	tag := os.Getenv("TAG")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if draining.Load() {
				w.Header().Set("Connection", "close")
			}
			if code, err := strconv.Atoi(os.Getenv("STATUS")); err == nil {
				w.WriteHeader(code)
			}
			fmt.Fprintf(w, "ok %d %s\n", os.Getpid(), tag)
		}),
		ConnState: func(c net.Conn, st http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			switch st {
			case http.StateNew:
				open[c] = true
			case http.StateClosed, http.StateHijacked:
				delete(open, c)
				if stopped.Load() && len(open) == 0 {
					done()
				}
			}
		},
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	served := make(chan struct{})
	go func() {
		_ = srv.Serve(ln)
		close(served)
	}()
	switch {
	case how == "systemd":
		if ok, err := daemon.SdNotify(false, daemon.SdNotifyReady); !ok {
			return fmt.Errorf("sd_notify READY=1 not sent (is NOTIFY_SOCKET set?): %w", err)
		}
	case !silent:
		if err := Notify("READY=1"); err != nil {
			return err
		}
	}
	<-sigs
	draining.Store(true)
	ln.Close()
	// Serve returns once its accept loop has seen the close, after it has
	// recorded (StateNew) the last connection it accepted.
	<-served
	mu.Lock()
	stopped.Store(true)
	if len(open) == 0 {
		done()
	}
	mu.Unlock()
	// A connection with no request in 500 ms is idle: close it.
	select {
	case <-allClosed:
	case <-time.After(500 * time.Millisecond):
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
	os.Exit(0)
	return nil
}

// Notify sends msg to $NOTIFY_SOCKET, as sd_notify does.
func Notify(msg string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return errors.New("NOTIFY_SOCKET is not set")
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	_, err = c.Write([]byte(msg))
	return err
}

// watchdog pings n times at half the watchdog period, then returns.
func watchdog(n int) error {
	usec, err := strconv.Atoi(os.Getenv("WATCHDOG_USEC"))
	if err != nil {
		return fmt.Errorf("WATCHDOG_USEC: %w", err)
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != strconv.Itoa(os.Getpid()) {
		return fmt.Errorf("WATCHDOG_PID is %q, not this process's pid %d", pid, os.Getpid())
	}
	for i := 0; i < n; i++ {
		if err := Notify("WATCHDOG=1"); err != nil {
			return err
		}
		time.Sleep(time.Duration(usec) * time.Microsecond / 2)
	}
	return nil
}

// firstLine accepts on $PORT and answers each connection with the first
// line it received (a PROXY protocol header, from tend's proxy), then
// closes it.
func firstLine() error {
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		return err
	}
	if err := Notify("READY=1"); err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer func() { _ = c.Close() }()
			line, _ := bufio.NewReader(c).ReadString('\n')
			_, _ = c.Write([]byte(line))
		}()
	}
}
