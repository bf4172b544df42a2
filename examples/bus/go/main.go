// Command bus-go is an example app for tend's bus, in Go: every instance
// says hello on demo.chat every few seconds and prints what the others
// say; it answers `tend trigger <app> ping` and `tend trigger <app> stats`.
//
//	go build -o examples/bus/go/bus-go ./examples/bus/go
//	tend start examples/bus/tend.yaml --only chat-go
package main

import (
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tend-pm/tend/tendbus"
)

func main() {
	nc, err := tendbus.Connect()
	if err != nil {
		log.Fatal(err)
	}
	// Drain delivers what is in flight before the connection closes.
	defer func() { _ = nc.Drain() }()
	me := fmt.Sprintf("%s[%d]", tendbus.App(), tendbus.Instance())
	var heard, said atomic.Int64

	// A broadcast: every instance of every app subscribed to demo.chat
	// gets each message.
	if _, err := nc.Subscribe("demo.chat", func(m *nats.Msg) {
		heard.Add(1)
		fmt.Printf("%s heard: %s\n", me, m.Data)
	}); err != nil {
		log.Fatal(err)
	}
	// Actions: `tend trigger chat-go ping` asks every instance.
	if _, err := tendbus.Handle(nc, "ping", func([]byte) (any, error) { return "pong from " + me, nil }); err != nil {
		log.Fatal(err)
	}
	if _, err := tendbus.Handle(nc, "stats", func([]byte) (any, error) {
		return map[string]int64{"heard": heard.Load(), "said": said.Load()}, nil
	}); err != nil {
		log.Fatal(err)
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			said.Add(1)
			if err := nc.Publish("demo.chat", []byte("hello from "+me+" (Go)")); err != nil {
				log.Print(err)
			}
		case <-stop:
			return
		}
	}
}
