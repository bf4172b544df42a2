// Package tendbus connects a Go program that tend runs to tend's pub/sub
// bus, with the stock NATS client (github.com/nats-io/nats.go).
//
// An app started with `tend start --bus` (or `bus: true` in its config)
// gets TEND_BUS_URL; Connect reads it. The rest is plain NATS: publish to
// a subject every instance subscribes to for a broadcast, or use the
// helpers below for what tend's commands send:
//
//	nc, err := tendbus.Connect()
//	...
//	nc.Subscribe("orders.created", func(m *nats.Msg) { ... }) // every instance
//	nc.Publish("orders.created", data)                        // to all of them
//	tendbus.Handle(nc, "flush-cache", func(params []byte) (any, error) {
//		return "flushed", nil // `tend trigger <app> flush-cache` prints it
//	})
//
// Subjects tend uses are listed in docs/bus.md.
package tendbus

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tend-pm/tend/internal/api"
)

// ErrNotUnderTend means the program was not started by tend with the bus:
// TEND_BUS_URL is not set.
var ErrNotUnderTend = errors.New("TEND_BUS_URL is not set: start the app with `tend start --bus` (or bus: true)")

// Event is a lifecycle event tend publishes (on tend.events.<app>.<event>).
type Event = api.Event

// Connect connects to the bus of the daemon that runs this program. It
// reconnects for as long as the program runs: a daemon that restarts
// comes back on the same port with the same credentials, and messages
// published meanwhile are buffered by the client. opts come after tend's
// defaults, so they can change them.
func Connect(opts ...nats.Option) (*nats.Conn, error) {
	url := os.Getenv(api.EnvBusURL)
	if url == "" {
		return nil, ErrNotUnderTend
	}
	name := App()
	if name != "" {
		name += "[" + strconv.Itoa(Instance()) + "]"
	}
	all := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// Even the first connection is retried in the background.
		nats.RetryOnFailedConnect(true),
	}, opts...)
	nc, err := nats.Connect(url, all...)
	if err != nil {
		return nil, fmt.Errorf("tendbus: connect to %s: %w", redacted(), err)
	}
	return nc, nil
}

// redacted is the bus's address without the password, for messages.
func redacted() string {
	u := os.Getenv(api.EnvBusURL)
	if p := os.Getenv(api.EnvBusPassword); p != "" {
		return strings.ReplaceAll(u, p, "xxx")
	}
	return u
}

// App is the name of the app this program runs as (TEND_APP).
func App() string { return os.Getenv("TEND_APP") }

// Instance is the instance (slot) this program runs in (TEND_INSTANCE).
func Instance() int {
	n, _ := strconv.Atoi(os.Getenv("TEND_INSTANCE"))
	return n
}

// Handle answers `tend trigger <app> <action> [params]` for this instance.
// fn gets the params as given; what it returns is the answer: a string or
// []byte as it is, anything else as JSON. An error is answered as
// {"error": "..."}.
func Handle(nc *nats.Conn, action string, fn func(params []byte) (any, error)) (*nats.Subscription, error) {
	subject := api.ActionSubject(App(), Instance(), action)
	return nc.Subscribe(subject, func(m *nats.Msg) {
		ret, err := fn(m.Data)
		var out []byte
		switch v := ret.(type) {
		case nil:
			out = []byte("null")
		case string:
			out = []byte(v)
		case []byte:
			out = v
		default:
			if out, err = json.Marshal(v); err != nil {
				err = fmt.Errorf("cannot encode the answer: %w", err)
			}
		}
		if err != nil {
			out, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		_ = m.Respond(out) // the requester may be gone: nobody to tell
	})
}

// Inbox calls fn with each message `tend send <app>:<instance>` gives this
// instance.
func Inbox(nc *nats.Conn, fn func(data []byte)) (*nats.Subscription, error) {
	return nc.Subscribe(api.InboxSubject(App(), Instance()), func(m *nats.Msg) { fn(m.Data) })
}

// Events calls fn with the lifecycle events of app ("*" for every app).
func Events(nc *nats.Conn, app string, fn func(Event)) (*nats.Subscription, error) {
	subject := api.SubjectEvents + ".>"
	if app != "*" {
		subject = api.SubjectEvents + "." + api.SubjectToken(app) + ".*"
	}
	return nc.Subscribe(subject, func(m *nats.Msg) {
		var e Event
		if json.Unmarshal(m.Data, &e) == nil {
			fn(e)
		}
	})
}
