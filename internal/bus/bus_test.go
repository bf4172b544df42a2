package bus

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/natsd"
)

func newBus(t *testing.T, home string) *Bus {
	t.Helper()
	b := New(Config{Home: home})
	t.Cleanup(b.Close)
	return b
}

// TestStartsOnFirstUse: nothing listens and nothing is written until
// something needs the bus; then its credentials are the owner's only.
func TestStartsOnFirstUse(t *testing.T) {
	home := t.TempDir()
	b := newBus(t, home)
	b.Publish("x", []byte("dropped: nobody can listen"))
	if b.Running() {
		t.Fatal("running before first use")
	}
	if _, err := os.Stat(filepath.Join(home, File)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists before first use: %v", File, err)
	}
	env, err := b.Env()
	if err != nil {
		t.Fatal(err)
	}
	if !b.Running() {
		t.Fatal("Env did not start the bus")
	}
	fi, err := os.Stat(filepath.Join(home, File))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v", File, err, fi.Mode())
	}
	pw := env[api.EnvBusPassword]
	if len(pw) < 32 || !unicode.IsLetter(rune(pw[0])) {
		t.Errorf("password %q: want at least 128 bits, beginning with a letter", pw)
	}
	if url := env[api.EnvBusURL]; !strings.HasPrefix(url, "nats://tend:"+pw+"@127.0.0.1:") {
		t.Errorf("URL %q", url)
	}
	nc, err := nats.Connect(env[api.EnvBusURL])
	if err != nil {
		t.Fatalf("a stock client with the URL an instance gets: %v", err)
	}
	nc.Close()
}

// TestKeepsPortAndSecret: a new Bus on the same home (the next daemon)
// listens on the same port with the same password, so clients reconnect.
func TestKeepsPortAndSecret(t *testing.T) {
	home := t.TempDir()
	b1 := New(Config{Home: home})
	env1, err := b1.Env()
	if err != nil {
		t.Fatal(err)
	}
	b1.Close()
	b2 := newBus(t, home)
	env2, err := b2.Env()
	if err != nil {
		t.Fatal(err)
	}
	if env1[api.EnvBusURL] != env2[api.EnvBusURL] {
		t.Errorf("the next bus is at %s; the last was at %s", env2[api.EnvBusURL], env1[api.EnvBusURL])
	}
}

// TestTakenPort: when the kept port is taken, the bus starts on another
// one rather than not at all.
func TestTakenPort(t *testing.T) {
	home := t.TempDir()
	other := newBus(t, t.TempDir())
	st, err := other.Status(true, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := store(filepath.Join(home, File), saved{Port: st.Port, User: user, Password: password()}); err != nil {
		t.Fatal(err)
	}
	b := newBus(t, home)
	mine, err := b.Status(true, false)
	if err != nil {
		t.Fatal(err)
	}
	if mine.Port == st.Port || mine.Port == 0 {
		t.Errorf("port %d, while %d is taken", mine.Port, st.Port)
	}
}

// TestBadFile: a damaged bus.json is refused with what to do.
func TestBadFile(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, File), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := newBus(t, home).Env()
	if err == nil || !strings.Contains(err.Error(), "remove it to get new credentials") {
		t.Fatalf("err = %v", err)
	}
}

// TestRequest: an answer comes back to the one request that asked; a
// subject nobody handles fails at once; one that never answers waits for
// the context.
func TestRequest(t *testing.T) {
	b := newBus(t, t.TempDir())
	env, err := b.Env()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(env[api.EnvBusURL])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("act.echo", func(m *nats.Msg) { _ = m.Respond(append([]byte("re: "), m.Data...)) }); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("act.mute", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, word := range []string{"one", "two"} {
		got, err := b.Request(ctx, "act.echo", []byte(word))
		if err != nil || string(got) != "re: "+word {
			t.Errorf("request %q: %q, %v", word, got, err)
		}
	}
	if _, err := b.Request(ctx, "act.nobody", nil); !errors.Is(err, api.ErrNoSubscriber) {
		t.Errorf("no handler: %v", err)
	}
	short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if _, err := b.Request(short, "act.mute", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("no answer: %v", err)
	}
	if n, err := b.Deliver("act.echo", []byte("x")); n != 1 || err != nil {
		t.Errorf("Deliver reached %d subscriptions (%v); want 1", n, err)
	}
	if n, err := b.Deliver("act.echo", make([]byte, 2<<20)); n != 0 || !errors.Is(err, api.ErrInvalid) {
		t.Errorf("Deliver of 2 MiB: %d, %v; want refused as invalid", n, err)
	}
	if n, err := b.Deliver("act.nobody", []byte("x")); n != 0 || err != nil {
		t.Errorf("Deliver to nobody: %d, %v", n, err)
	}
}

// TestSubjectErrors: a subject no NATS server takes is the caller's
// mistake, named as such.
func TestSubjectErrors(t *testing.T) {
	b := newBus(t, t.TempDir())
	for _, s := range []string{"", "a b", "a..b", "a.*"} {
		if err := b.PublishStarted(s, nil); !errors.Is(err, api.ErrInvalid) || !errors.Is(err, natsd.ErrInvalidSubject) {
			t.Errorf("publish on %q: %v", s, err)
		}
	}
	if _, err := b.Subscribe("a.>.b", func(natsd.Msg) {}); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("subscribe to a.>.b: %v", err)
	}
}
