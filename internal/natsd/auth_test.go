package natsd

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestAuth(t *testing.T) {
	s := start(t)
	url := func(userinfo string) string {
		return "nats://" + userinfo + joinHostPort("127.0.0.1", s.Port())
	}
	for _, tt := range []struct {
		name, url string
		ok        bool
	}{
		{"user and password", url(testUser + ":" + testPass + "@"), true},
		{"password as token", url(testPass + "@"), true},
		{"ClientURL", s.ClientURL(), true},
		{"wrong password", url(testUser + ":nope@"), false},
		{"wrong user", url("other:" + testPass + "@"), false},
		{"wrong token", url("nope@"), false},
		{"no credentials", url(""), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := nats.Connect(tt.url, nats.NoReconnect(), nats.Timeout(5*time.Second))
			if tt.ok {
				if err != nil {
					t.Fatalf("Connect = %v; want success", err)
				}
				nc.Close()
				return
			}
			if err == nil {
				nc.Close()
				t.Fatal("Connect succeeded; want nats.ErrAuthorization")
			}
			if !errors.Is(err, nats.ErrAuthorization) {
				t.Errorf("Connect = %v; want nats.ErrAuthorization", err)
			}
		})
	}
	t.Run("nothing before CONNECT", func(t *testing.T) {
		r := dialRaw(t, s)
		r.send("SUB foo 1\r\n")
		r.expect("-ERR 'Authorization Violation'")
		r.expectClosed()
	})
	t.Run("PING before CONNECT", func(t *testing.T) {
		r := dialRaw(t, s)
		r.send("PING\r\n")
		r.expect("-ERR 'Authorization Violation'")
		r.expectClosed()
	})
	t.Run("bad CONNECT", func(t *testing.T) {
		r := dialRaw(t, s)
		r.send("CONNECT {nope\r\n")
		r.expect("-ERR 'Authorization Violation'")
		r.expectClosed()
	})
}

func TestStartRefusesNoPassword(t *testing.T) {
	if s, err := Start(Options{User: "u"}); err == nil {
		s.Close()
		t.Fatal("Start without a password succeeded")
	}
}

func TestAuthTimeout(t *testing.T) {
	s := start(t, func(o *Options) { o.AuthTimeout = 100 * time.Millisecond })
	r := dialRaw(t, s)
	r.expect("-ERR 'Authentication Timeout'")
	r.expectClosed()
}

func TestStaleConnection(t *testing.T) {
	s := start(t, func(o *Options) { o.PingInterval = 50 * time.Millisecond })
	r := dialRaw(t, s)
	r.login("")
	r.expect("PING")
	r.expect("PING")
	r.expect("-ERR 'Stale Connection'")
	r.expectClosed()

	// One that answers stays.
	a := dialRaw(t, s)
	a.login("")
	for range 5 {
		a.expect("PING")
		a.send("PONG\r\n")
	}
}

func TestMaxConnections(t *testing.T) {
	s := start(t, func(o *Options) { o.MaxConnections = 2 })
	connect(t, s)
	connect(t, s)
	_, err := nats.Connect(s.ClientURL(), nats.NoReconnect())
	if err == nil || !strings.Contains(err.Error(), "maximum connections exceeded") {
		t.Fatalf("third Connect = %v; want maximum connections exceeded", err)
	}
}

func TestPortTaken(t *testing.T) {
	s := start(t)
	_, err := Start(Options{Password: "x", Port: s.Port()})
	if err == nil {
		t.Fatal("Start on a taken port succeeded")
	}
}
