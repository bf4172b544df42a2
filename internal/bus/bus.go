// Package bus is the daemon's side of the pub/sub bus. It starts tend's
// NATS server (package natsd) the first time something needs it — an app
// with `bus: true`, a `tend bus` command — so a daemon that never uses the
// bus pays nothing for it; it keeps the server's port and credentials in
// $TEND_HOME so the next daemon listens at the same address with the same
// secret; and it gives the rest of the daemon publish, subscribe and
// request.
//
// Kept across daemons, the address lets clients that outlive a daemon —
// a `nats` CLI given `tend bus url`, a monitor subscribed to events —
// reconnect on their own; the apps themselves are restarted by the next
// daemon (see supervisor.Restore) and connect afresh.
package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/natsd"
	"github.com/tend-pm/tend/internal/state"
)

// File is where the bus's port and credentials are kept, in TEND_HOME.
const File = "bus.json"

// user is the one user of the bus: every instance of every app of this
// daemon's owner, and the daemon itself.
const user = "tend"

// inboxPrefix starts the reply subjects of the daemon's own requests.
const inboxPrefix = "_INBOX.tend."

// Config is how the daemon's bus is set up (docs/bus.md).
type Config struct {
	// Home is TEND_HOME, where File is kept.
	Home string
	// Host to bind; empty is 127.0.0.1. Anything else is the owner's
	// explicit choice (config.yaml).
	Host string
	// Port to bind; 0 is the port kept in File, or a free one the first
	// time.
	Port int
	// Leafs are remote NATS servers the bus joins as a leaf node, so
	// instances on several machines share subjects.
	Leafs []string
	Log   *slog.Logger
}

// Bus is the daemon's bus: not running until Start.
type Bus struct {
	cfg Config

	mu     sync.Mutex
	srv    *natsd.Server
	creds  saved
	closed bool
	// Requests share one wildcard inbox subscription; each waits on its
	// own token under it.
	inbox   string
	inboxes *natsd.Subscription
	waiting map[string]chan []byte
	seq     uint64
}

// saved is the content of File.
type saved struct {
	Port     int    `json:"port"`
	User     string `json:"user"`
	Password string `json:"password"`
}

// New returns a Bus that starts on first use.
func New(cfg Config) *Bus {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Bus{cfg: cfg, waiting: map[string]chan []byte{}}
}

// Running reports whether the bus has been started.
func (b *Bus) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srv != nil
}

// Start starts the bus if it does not run yet.
func (b *Bus) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, err := b.startLocked()
	return err
}

func (b *Bus) startLocked() (*natsd.Server, error) {
	if b.srv != nil {
		return b.srv, nil
	}
	if b.closed {
		return nil, errors.New("bus: the daemon is shutting down")
	}
	path := b.path()
	creds, err := load(path)
	if err != nil {
		return nil, err
	}
	if creds.Password == "" {
		creds = saved{User: user, Password: password()}
	}
	port := b.cfg.Port
	if port == 0 {
		port = creds.Port
	}
	leafs := make([]natsd.Remote, len(b.cfg.Leafs))
	for i, u := range b.cfg.Leafs {
		leafs[i] = natsd.Remote{URL: u}
	}
	opts := natsd.Options{
		Host: b.cfg.Host, Port: port, User: creds.User, Password: creds.Password,
		Name: "tend-" + strconv.Itoa(os.Getpid()), Leafs: leafs, Log: b.cfg.Log,
		// What names an app and a slot means something on this machine
		// only: `tend trigger web` must not be answered by another
		// machine's web.
		Local: []string{api.SubjectAction + ".", api.SubjectInbox + ".", inboxPrefix},
		// What tend reports, only tend publishes.
		Reserved: []string{api.SubjectEvents + ".", api.SubjectMsg + "."},
	}
	srv, err := natsd.Start(opts)
	if err != nil && b.cfg.Port == 0 && port != 0 {
		// The kept port is taken: instances of the last daemon cannot
		// come back to it anyway, so take another and say so.
		b.cfg.Log.Warn("bus: the port it had is taken; instances that kept the old address will not reconnect", "port", port, "err", err)
		opts.Port = 0
		srv, err = natsd.Start(opts)
	}
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	creds.Port = srv.Port()
	if err := store(path, creds); err != nil {
		_ = srv.Close()
		return nil, err
	}
	b.inbox = inboxPrefix + secret()[:16]
	sub, err := srv.Subscribe(b.inbox+".*", "", b.answer)
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("bus: %w", err)
	}
	b.srv, b.creds, b.inboxes = srv, creds, sub
	b.cfg.Log.Info("bus started", "port", creds.Port, "leafs", len(leafs))
	return srv, nil
}

func (b *Bus) path() string { return b.cfg.Home + string(os.PathSeparator) + File }

func load(path string) (saved, error) {
	var c saved
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("bus: %w", err)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("bus: %s is not valid JSON (%w); remove it to get new credentials", path, err)
	}
	return c, nil
}

func store(path string, c saved) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := state.WriteFile(path, append(data, '\n')); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	return nil
}

// password returns a new password for the bus. It begins with a letter:
// nats.js takes the first ":<digits>" of a URL as its port, so a password
// that began with a digit would send it to the wrong port.
func password() string { return "p" + secret() }

// secret returns 128 random bits as hex: safe in a URL and in any client's
// configuration.
func secret() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}

// Env starts the bus if needed and returns what an instance needs to
// connect (api.EnvBusURL...).
func (b *Bus) Env() (map[string]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	srv, err := b.startLocked()
	if err != nil {
		return nil, err
	}
	return map[string]string{
		api.EnvBusURL:      srv.ClientURL(),
		api.EnvBusUser:     b.creds.User,
		api.EnvBusPassword: b.creds.Password,
	}, nil
}

// server returns the running server, or nil.
func (b *Bus) server() *natsd.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srv
}

// Publish sends data on subject if the bus runs: with no bus there is no
// subscriber to miss it. It never blocks.
func (b *Bus) Publish(subject string, data []byte) {
	if srv := b.server(); srv != nil {
		if err := srv.Publish(subject, "", nil, data); err != nil {
			b.cfg.Log.Debug("bus publish", "subject", subject, "err", err)
		}
	}
}

// Deliver publishes data on subject if the bus runs and something
// subscribes to it, and returns how many subscriptions it reached.
func (b *Bus) Deliver(subject string, data []byte) (int, error) {
	srv := b.server()
	if srv == nil {
		return 0, nil
	}
	local, remote := srv.Interest(subject)
	n := local + remote
	if n == 0 {
		return 0, nil
	}
	if err := srv.Publish(subject, "", nil, data); err != nil {
		return 0, kind(err, false)
	}
	return n, nil
}

// PublishStarted sends data on subject, starting the bus if needed (a
// user's `tend bus pub`).
func (b *Bus) PublishStarted(subject string, data []byte) error {
	b.mu.Lock()
	srv, err := b.startLocked()
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if srv.IsReserved(subject) {
		return fmt.Errorf("%s: tend.events.> and tend.msg.> carry what tend reports, and only tend publishes there: %w", subject, api.ErrInvalid)
	}
	return kind(srv.Publish(subject, "", nil, data), false)
}

// kind marks what the server refuses as the caller's mistake, saying
// what a subject may be where it is used: to publish on, or to subscribe.
func kind(err error, subscribe bool) error {
	switch {
	case errors.Is(err, natsd.ErrInvalidSubject) && subscribe:
		return fmt.Errorf("%w (subjects are tokens separated by '.', without spaces; the wildcard * stands for one whole token, > for all the tokens that follow and comes last): %w", err, api.ErrInvalid)
	case errors.Is(err, natsd.ErrInvalidSubject):
		return fmt.Errorf("%w (subjects are tokens separated by '.', without spaces; a message is published on a subject without the wildcards * and >): %w", err, api.ErrInvalid)
	case errors.Is(err, natsd.ErrMaxPayload):
		return fmt.Errorf("%w: %w", err, api.ErrInvalid)
	}
	return err
}

// Subscribe calls fn with every message on subject (wildcards allowed),
// starting the bus if needed, until the subscription is ended.
func (b *Bus) Subscribe(subject string, fn func(natsd.Msg)) (*natsd.Subscription, error) {
	b.mu.Lock()
	srv, err := b.startLocked()
	b.mu.Unlock()
	if err != nil {
		return nil, err
	}
	sub, err := srv.Subscribe(subject, "", fn)
	if err != nil {
		return nil, kind(err, true)
	}
	return sub, nil
}

// Request publishes data on subject with a reply subject of the daemon's
// and returns the first answer. With no subscriber to subject it returns
// api.ErrNoSubscriber at once; otherwise it waits until ctx ends.
func (b *Bus) Request(ctx context.Context, subject string, data []byte) ([]byte, error) {
	b.mu.Lock()
	srv := b.srv
	if srv == nil {
		b.mu.Unlock()
		return nil, api.ErrNoSubscriber
	}
	b.seq++
	reply := b.inbox + "." + strconv.FormatUint(b.seq, 10)
	ch := make(chan []byte, 1)
	b.waiting[reply] = ch
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.waiting, reply)
		b.mu.Unlock()
	}()
	if local, remote := srv.Interest(subject); local+remote == 0 {
		return nil, api.ErrNoSubscriber
	}
	if err := srv.Publish(subject, reply, nil, data); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// answer hands a reply to the request waiting for it.
func (b *Bus) answer(m natsd.Msg) {
	b.mu.Lock()
	ch := b.waiting[m.Subject]
	b.mu.Unlock()
	if ch != nil {
		select {
		case ch <- m.Data:
		default: // a second answer to the same request
		}
	}
}

// Status describes the bus, starting it first if start is set; the
// password (in URL and Password) only with credentials.
func (b *Bus) Status(start, credentials bool) (api.BusStatus, error) {
	b.mu.Lock()
	srv := b.srv
	if start {
		var err error
		if srv, err = b.startLocked(); err != nil {
			b.mu.Unlock()
			return api.BusStatus{}, err
		}
	}
	creds := b.creds
	b.mu.Unlock()
	if srv == nil {
		return api.BusStatus{}, nil
	}
	st := srv.Stats()
	out := api.BusStatus{
		Running: true, URL: srv.URL(), Port: srv.Port(), User: creds.User,
		Clients: st.Conns, Subscriptions: st.Subs, InMsgs: st.InMsgs, OutMsgs: st.OutMsgs,
		SlowConsumers: st.SlowConsumers, Dropped: st.Dropped,
	}
	if credentials {
		out.URL, out.Password = srv.ClientURL(), creds.Password
	}
	for _, l := range st.Leafs {
		out.Leafs = append(out.Leafs, api.LeafState{URL: l.URL, Connected: l.Connected, Since: l.Since, Error: l.LastError})
	}
	return out, nil
}

// Close stops the bus; nothing starts it again.
func (b *Bus) Close() {
	b.mu.Lock()
	srv := b.srv
	b.srv, b.closed = nil, true
	b.mu.Unlock()
	if srv != nil {
		if err := srv.Close(); err != nil {
			b.cfg.Log.Warn("bus close", "err", err)
		}
	}
}
