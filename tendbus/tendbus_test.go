package tendbus_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/natsd"
	"github.com/tend-pm/tend/tendbus"
)

// underTend runs a bus and sets the environment tend gives an instance
// (slot 1 of app "web.api") of an app with the bus.
func underTend(t *testing.T) *natsd.Server {
	t.Helper()
	srv, err := natsd.Start(natsd.Options{User: "tend", Password: "psecret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	t.Setenv(api.EnvBusURL, srv.ClientURL())
	t.Setenv(api.EnvBusPassword, "psecret")
	t.Setenv("TEND_APP", "web.api")
	t.Setenv("TEND_INSTANCE", "1")
	return srv
}

func TestConnectOutsideTend(t *testing.T) {
	t.Setenv(api.EnvBusURL, "")
	if _, err := tendbus.Connect(); !errors.Is(err, tendbus.ErrNotUnderTend) {
		t.Fatalf("err = %v", err)
	}
}

func TestHandle(t *testing.T) {
	underTend(t)
	nc, err := tendbus.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	handlers := map[string]func([]byte) (any, error){
		"text":   func(p []byte) (any, error) { return "got " + string(p), nil },
		"bytes":  func(p []byte) (any, error) { return p, nil },
		"json":   func([]byte) (any, error) { return map[string]int{"n": 2}, nil },
		"fail":   func([]byte) (any, error) { return nil, errors.New("no disk") },
		"silent": func([]byte) (any, error) { return nil, nil },
	}
	for name, fn := range handlers {
		if _, err := tendbus.Handle(nc, name, fn); err != nil {
			t.Fatal(err)
		}
	}
	for action, want := range map[string]string{
		"text": "got p", "bytes": "p", "json": `{"n":2}`, "fail": `{"error":"no disk"}`, "silent": "null",
	} {
		// Where `tend trigger web.api <action> p` asks instance 1.
		m, err := nc.Request(api.ActionSubject("web.api", 1, action), []byte("p"), 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", action, err)
		}
		if string(m.Data) != want {
			t.Errorf("%s answered %q; want %q", action, m.Data, want)
		}
	}
}

func TestInboxAndEvents(t *testing.T) {
	srv := underTend(t)
	nc, err := tendbus.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	inbox := make(chan string, 1)
	if _, err := tendbus.Inbox(nc, func(d []byte) { inbox <- string(d) }); err != nil {
		t.Fatal(err)
	}
	events := make(chan tendbus.Event, 4)
	if _, err := tendbus.Events(nc, "web.api", func(e tendbus.Event) { events <- e }); err != nil {
		t.Fatal(err)
	}
	all := make(chan tendbus.Event, 4)
	if _, err := tendbus.Events(nc, "*", func(e tendbus.Event) { all <- e }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Publish(api.InboxSubject("web.api", 1), "", nil, []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"other", "web.api"} {
		ev, _ := json.Marshal(api.Event{Event: api.EventExit, App: app, Instance: 0})
		if err := srv.Publish(api.EventSubject(app, api.EventExit), "", nil, ev); err != nil {
			t.Fatal(err)
		}
	}
	if got := recv(t, inbox); got != `{"x":1}` {
		t.Errorf("inbox: %q", got)
	}
	if e := recv(t, events); e.App != "web.api" || e.Event != api.EventExit {
		t.Errorf("event: %+v", e)
	}
	if a, b := recv(t, all), recv(t, all); a.App != "other" || b.App != "web.api" {
		t.Errorf("every app's events: %s, %s", a.App, b.App)
	}
	select {
	case e := <-events:
		t.Errorf("web.api's subscription got %s's event", e.App)
	default:
	}
}

func recv[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing arrived")
	}
	var zero T
	return zero
}
