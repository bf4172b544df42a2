package natsd

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A client that never reads is cut off once MaxPending bytes wait for
// it, while a subscriber that reads gets every message and the publisher
// is never held up.
func TestSlowConsumer(t *testing.T) {
	s := start(t, func(o *Options) { o.MaxPending = 256 << 10 })
	stuck := dialRaw(t, s)
	stuck.login("")
	stuck.send("SUB flood 1\r\nPING\r\n")
	stuck.expect("PONG")

	good := connect(t, s)
	var got atomic.Int64
	good.Subscribe("flood", func(*nats.Msg) { got.Add(1) })
	good.Flush()

	pub := connect(t, s)
	payload := make([]byte, 1024)
	const total = 32 << 10 // 32 MiB in all: more than any socket buffers
	for i := 1; i <= total; i++ {
		if err := pub.Publish("flood", payload); err != nil {
			t.Fatal(err)
		}
		if i%128 == 0 {
			// Keep the reading subscriber within its own MaxPending.
			waitFor(t, "the subscriber to keep up", func() bool { return got.Load() >= int64(i-128) })
		}
	}
	pub.Flush()
	waitFor(t, "every message", func() bool { return got.Load() == total })
	if n := s.Stats().SlowConsumers; n != 1 {
		t.Errorf("SlowConsumers = %d; want 1", n)
	}
	waitFor(t, "the slow consumer to be gone", func() bool { return s.Stats().Conns == 2 })
	// The stuck client's connection ends: reading it now finds the
	// messages that fitted, then the end.
	_ = stuck.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, stuck.c); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("the slow consumer's connection is still open")
		}
	}
}

// A client whose server restarts (a daemon restart: same port, same
// credentials) reconnects and gets its subscriptions back.
func TestReconnectAfterRestart(t *testing.T) {
	s1, err := Start(Options{User: testUser, Password: testPass})
	if err != nil {
		t.Fatal(err)
	}
	port := s1.Port()
	reconnected := make(chan struct{}, 1)
	nc := connect(t, s1,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectJitter(0, 0),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	sub, _ := nc.SubscribeSync("after.restart")
	nc.Flush()
	s1.Close()

	s2 := start(t, func(o *Options) { o.Port = port })
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnect")
	}
	nc.Flush()
	waitFor(t, "the subscription to be back", func() bool { l, _ := s2.Interest("after.restart"); return l == 1 })
	other := connect(t, s2)
	other.Publish("after.restart", []byte("back"))
	other.Flush()
	if m := next(t, sub); string(m.Data) != "back" {
		t.Errorf("got %q; want back", m.Data)
	}
}

// Close ends every goroutine the server started: clients', in-process
// subscriptions', and a leaf link's, even one waiting to retry.
func TestCloseNoLeaks(t *testing.T) {
	base := runtime.NumGoroutine()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	s, err := Start(Options{User: testUser, Password: testPass, Leafs: []Remote{{URL: "nats://u:p@" + deadAddr}}})
	if err != nil {
		t.Fatal(err)
	}
	var clients []*nats.Conn
	for i := range 5 {
		nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		nc.Subscribe("x."+strconv.Itoa(i), func(*nats.Msg) {})
		nc.Flush()
		clients = append(clients, nc)
	}
	s.Subscribe("x.>", "", func(Msg) {})
	s.Publish("x.1", "", nil, []byte("hi"))
	waitFor(t, "the leaf to fail once", func() bool { return s.Stats().Leafs[0].LastError != "" })
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for _, nc := range clients {
		nc.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close; want %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := s.Subscribe("y", "", func(Msg) {}); err == nil {
		t.Error("Subscribe after Close succeeded")
	}
	if err := s.Publish("y", "", nil, nil); err == nil {
		t.Error("Publish after Close succeeded")
	}
}
