package testproc

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tend-pm/tend/tendbus"
)

// Subjects the bus verbs use.
const (
	// BroadcastSubject is what busjoin listens on and buspub sends to.
	BroadcastSubject = "test.broadcast"
)

// busJoin connects to the bus with tendbus, as an app would, and records
// in file.<instance> every broadcast ("got DATA"), every inbox message
// ("inbox DATA") and "joined" once its subscriptions are in place. It
// answers the actions "whoami" ("<app>[<instance>] <pid>") and "echo"
// (the params). It returns at once; the process goes on with the next
// verb (sleep forever).
func busJoin(file string) error {
	path := file + "." + strconv.Itoa(tendbus.Instance())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	record := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(f, format+"\n", args...)
	}
	nc, err := tendbus.Connect(nats.ReconnectHandler(func(*nats.Conn) { record("reconnected") }))
	if err != nil {
		return err
	}
	if _, err := nc.Subscribe(BroadcastSubject, func(m *nats.Msg) { record("got %s", m.Data) }); err != nil {
		return err
	}
	if _, err := tendbus.Inbox(nc, func(data []byte) { record("inbox %s", data) }); err != nil {
		return err
	}
	who := fmt.Sprintf("%s[%d] %d", tendbus.App(), tendbus.Instance(), os.Getpid())
	if _, err := tendbus.Handle(nc, "whoami", func([]byte) (any, error) { return who, nil }); err != nil {
		return err
	}
	if _, err := tendbus.Handle(nc, "echo", func(p []byte) (any, error) { return p, nil }); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	record("joined")
	return nil
}

// busPub publishes data, with $VARIABLES expanded, on subject with a
// connection of its own, and waits until the bus has it.
func busPub(subject, data string) error {
	data = os.ExpandEnv(data)
	nc, err := tendbus.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := nc.Publish(subject, []byte(data)); err != nil {
		return err
	}
	return nc.Flush()
}

// busRepeat publishes data on subject every 50 ms until the process is
// stopped: for subscribers whose interest takes a moment to arrive (on
// another machine, through a hub).
func busRepeat(subject, data string) error {
	data = os.ExpandEnv(data)
	nc, err := tendbus.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	for {
		if err := nc.Publish(subject, []byte(data)); err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
