package natsd

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tend-pm/tend/internal/resolve"
)

const (
	hubLeafUser = "leaf"
	hubLeafPass = "leafpass"
)

// hub is a real nats-server with a leafnode listener, as the remote end
// of natsd's leaf links.
type hub struct {
	t          *testing.T
	srv        *server.Server
	clientPort int
	leafPort   int
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startHub(t *testing.T) *hub {
	h := &hub{t: t, clientPort: freePort(t), leafPort: freePort(t)}
	h.start()
	t.Cleanup(func() { h.srv.Shutdown(); h.srv.WaitForShutdown() })
	return h
}

// start (re)starts the hub on its ports.
func (h *hub) start() {
	h.t.Helper()
	o := &server.Options{
		Host:   "127.0.0.1",
		Port:   h.clientPort,
		NoLog:  true,
		NoSigs: true,
		LeafNode: server.LeafNodeOpts{
			Host:     "127.0.0.1",
			Port:     h.leafPort,
			Username: hubLeafUser,
			Password: hubLeafPass,
		},
	}
	s, err := server.NewServer(o)
	if err != nil {
		h.t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		h.t.Fatal("hub not ready")
	}
	h.srv = s
}

func (h *hub) leafURL() string {
	return fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", hubLeafUser, hubLeafPass, h.leafPort)
}

func (h *hub) connect() *nats.Conn {
	h.t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", h.clientPort))
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(nc.Close)
	return nc
}

// startLeaf starts a natsd linked to the hub and waits for the link.
func startLeaf(t *testing.T, h *hub) *Server {
	t.Helper()
	s := start(t, func(o *Options) { o.Leafs = []Remote{{URL: h.leafURL()}} })
	waitLinked(t, s)
	return s
}

func waitLinked(t *testing.T, s *Server) {
	t.Helper()
	waitFor(t, "the leaf link", func() bool { return s.Stats().Leafs[0].Connected })
}

// waitRemote waits until s knows of remote interest in subject.
func waitRemote(t *testing.T, s *Server, subject string, n int) {
	t.Helper()
	waitFor(t, "remote interest in "+subject, func() bool { _, r := s.Interest(subject); return r >= n })
}

func TestLeafPubSub(t *testing.T) {
	h := startHub(t)
	a, b := startLeaf(t, h), startLeaf(t, h)

	onB := connect(t, b)
	subB, _ := onB.SubscribeSync("events.>")
	onB.Flush()
	onHub := h.connect()
	subHub, _ := onHub.SubscribeSync("events.app")
	onHub.Flush()
	onA := connect(t, a)
	subA, _ := onA.SubscribeSync("events.app")
	onA.Flush()
	waitRemote(t, a, "events.app", 2)

	m := nats.NewMsg("events.app")
	m.Header.Set("From", "a")
	m.Data = []byte("started")
	if err := onA.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	onA.Flush()
	for name, sub := range map[string]*nats.Subscription{"B": subB, "hub": subHub, "A": subA} {
		got := next(t, sub)
		if string(got.Data) != "started" || got.Header.Get("From") != "a" {
			t.Errorf("%s got %q %v; want started with From: a", name, got.Data, got.Header)
		}
	}
	// The hub's messages reach A and B once, and nothing comes back.
	waitRemote(t, b, "events.app", 1) // the hub's subscriber and A's
	onHub.Publish("events.app", []byte("from hub"))
	onHub.Flush()
	for name, sub := range map[string]*nats.Subscription{"B": subB, "A": subA, "hub": subHub} {
		if got := next(t, sub); string(got.Data) != "from hub" {
			t.Errorf("%s got %q; want from hub", name, got.Data)
		}
	}
	onA.Flush()
	onB.Flush()
	onHub.Flush()
	for name, sub := range map[string]*nats.Subscription{"B": subB, "A": subA, "hub": subHub} {
		if n, _, _ := sub.Pending(); n != 0 {
			t.Errorf("%s has %d more messages; want none (echo through the hub)", name, n)
		}
	}
	if st := a.Stats().Leafs[0]; !st.Connected || st.URL == h.leafURL() || st.RemoteInterest == 0 {
		t.Errorf("leaf stats %+v: want connected, the password redacted, remote interest", st)
	}
}

func TestLeafRequestReply(t *testing.T) {
	h := startHub(t)
	a, b := startLeaf(t, h), startLeaf(t, h)
	onA := connect(t, a)
	onA.Subscribe("svc.hello", func(m *nats.Msg) { m.Respond([]byte("hello from A, " + string(m.Data))) })
	onA.Flush()
	waitRemote(t, b, "svc.hello", 1)
	onB := connect(t, b)
	for i := range 5 {
		m, err := onB.Request("svc.hello", []byte(strconv.Itoa(i)), 5*time.Second)
		if err != nil {
			t.Fatalf("request %d from B: %v", i, err)
		}
		if want := "hello from A, " + strconv.Itoa(i); string(m.Data) != want {
			t.Errorf("reply %q; want %q", m.Data, want)
		}
	}
	// In-process requests cross too.
	rep, err := b.Request(t.Context(), "svc.hello", nil, []byte("daemon"))
	if err != nil || string(rep.Data) != "hello from A, daemon" {
		t.Errorf("in-process Request = %q, %v", rep.Data, err)
	}
}

// A queue group with members on two leafs gets each of the hub's
// messages once; a member next to the publisher is preferred.
func TestLeafQueueGroup(t *testing.T) {
	h := startHub(t)
	a, b := startLeaf(t, h), startLeaf(t, h)
	var mu sync.Mutex
	seen := map[string]int{}
	var onA, onB atomic.Int64
	for _, x := range []struct {
		s *Server
		n *atomic.Int64
	}{{a, &onA}, {b, &onB}} {
		nc := connect(t, x.s)
		nc.QueueSubscribe("work", "q", func(m *nats.Msg) {
			mu.Lock()
			seen[string(m.Data)]++
			mu.Unlock()
			x.n.Add(1)
		})
		nc.Flush()
	}
	// Each leaf hears of the other's member through the hub, which then
	// knows both.
	waitRemote(t, a, "work", 1)
	waitRemote(t, b, "work", 1)
	pub := h.connect()
	const total = 200
	for i := range total {
		pub.Publish("work", []byte(strconv.Itoa(i)))
	}
	pub.Flush()
	waitFor(t, "every message", func() bool { return onA.Load()+onB.Load() == total })
	mu.Lock()
	for p, n := range seen {
		if n != 1 {
			t.Errorf("message %s delivered %d times; want once", p, n)
		}
	}
	mu.Unlock()
	if onA.Load() == 0 || onB.Load() == 0 {
		t.Errorf("A got %d, B %d; want both some", onA.Load(), onB.Load())
	}

	// Published on A, the local member takes everything.
	before := onA.Load()
	local := connect(t, a)
	for i := range 50 {
		local.Publish("work", []byte("local"+strconv.Itoa(i)))
	}
	local.Flush()
	waitFor(t, "local delivery", func() bool { return onA.Load() == before+50 })
	if n := onB.Load(); n != total-before {
		t.Errorf("B got %d more; want none", n-(total-before))
	}
}

func TestLeafReconnect(t *testing.T) {
	h := startHub(t)
	a := startLeaf(t, h)
	onA := connect(t, a)
	sub, _ := onA.SubscribeSync("after")
	onA.Flush()

	h.srv.Shutdown()
	h.srv.WaitForShutdown()
	waitFor(t, "the link to drop", func() bool { return !a.Stats().Leafs[0].Connected })
	h.start()
	waitLinked(t, a)
	if st := a.Stats().Leafs[0]; st.LastError != "" || st.Since.IsZero() {
		t.Errorf("stats after reconnect %+v", st)
	}

	// The interest was announced again.
	pub := h.connect()
	waitFor(t, "interest at the hub", func() bool {
		lz, _ := h.srv.Leafz(&server.LeafzOptions{Subscriptions: true})
		for _, l := range lz.Leafs {
			for _, s := range l.Subs {
				if s == "after" {
					return true
				}
			}
		}
		return false
	})
	pub.Publish("after", []byte("back"))
	pub.Flush()
	if m := next(t, sub); string(m.Data) != "back" {
		t.Errorf("got %q; want back", m.Data)
	}
}

func TestLeafBadCredentials(t *testing.T) {
	h := startHub(t)
	url := fmt.Sprintf("nats://%s:wrong@127.0.0.1:%d", hubLeafUser, h.leafPort)
	s := start(t, func(o *Options) { o.Leafs = []Remote{{URL: url}} })
	waitFor(t, "the refusal", func() bool { return s.Stats().Leafs[0].LastError != "" })
	st := s.Stats().Leafs[0]
	if st.Connected {
		t.Errorf("connected with a wrong password")
	}
	if want := "Authorization Violation"; !strings.Contains(st.LastError, want) {
		t.Errorf("LastError = %q; want it to say %q", st.LastError, want)
	}
	if strings.Contains(st.URL, "wrong") || strings.Contains(st.LastError, "wrong") {
		t.Errorf("the password shows: %+v", st)
	}
}

// Pointing a leaf at a client port is recognised.
func TestLeafWrongPort(t *testing.T) {
	h := startHub(t)
	url := fmt.Sprintf("nats://u:p@127.0.0.1:%d", h.clientPort)
	s := start(t, func(o *Options) { o.Leafs = []Remote{{URL: url}} })
	waitFor(t, "the refusal", func() bool { return s.Stats().Leafs[0].LastError != "" })
	if st := s.Stats().Leafs[0]; !strings.Contains(st.LastError, "not a leafnode port") {
		t.Errorf("LastError = %q; want not a leafnode port", st.LastError)
	}
}

// Two links to the same hub make a loop: the hub hands one link the
// loop detection subject this server announced on the other.
func TestLeafLoopDetected(t *testing.T) {
	h := startHub(t)
	s := start(t, func(o *Options) { o.Leafs = []Remote{{URL: h.leafURL()}, {URL: h.leafURL()}} })
	waitFor(t, "a loop to be found", func() bool {
		for _, l := range s.Stats().Leafs {
			if strings.Contains(l.LastError, "loop detected") {
				return true
			}
		}
		return false
	})
}

// hubSees returns the interest the hub holds for its leaf connections.
func hubSees(h *hub) []string {
	lz, _ := h.srv.Leafz(&server.LeafzOptions{Subscriptions: true})
	var out []string
	for _, l := range lz.Leafs {
		out = append(out, l.Subs...)
	}
	return out
}

// The hub hears of a subject when its first local subscription comes
// and when its last goes, and of each change of a queue group's size.
func TestLeafInterestUpdates(t *testing.T) {
	h := startHub(t)
	a := startLeaf(t, h)
	has := func(subj string) bool { return slices.Contains(hubSees(h), subj) }
	nc := connect(t, a)
	s1, _ := nc.SubscribeSync("x")
	s2, _ := nc.SubscribeSync("x")
	is, _ := a.Subscribe("y.>", "", func(Msg) {})
	nc.Flush()
	waitFor(t, "x and y.> at the hub", func() bool { return has("x") && has("y.>") })
	s1.Unsubscribe()
	nc.Flush()
	// A round trip with the hub: a request to itself through it.
	pub := h.connect()
	pub.Publish("x", []byte("still"))
	pub.Flush()
	if m := next(t, s2); string(m.Data) != "still" {
		t.Errorf("got %q; want still", m.Data)
	}
	s2.Unsubscribe()
	is.Unsubscribe()
	nc.Flush()
	waitFor(t, "x and y.> gone from the hub", func() bool { return !has("x") && !has("y.>") })
}

// hubByName returns the hub's leaf URL with a host name, and a lookup on
// a hosts file of the test's (written with hosts) for it.
func hubByName(t *testing.T, h *hub) (url string, hosts func(string), lookup func(context.Context, string) ([]netip.Addr, error)) {
	dir := t.TempDir()
	r := &resolve.Resolver{HostsFile: filepath.Join(dir, "hosts"), ResolvConf: filepath.Join(dir, "resolv.conf")}
	// The name is always in the hosts file; were DNS asked, it would not
	// be the machine's.
	if err := os.WriteFile(r.ResolvConf, []byte("nameserver 127.0.0.2\nsearch .\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Replaced, not rewritten, as the leaf may be reading it.
	hosts = func(s string) {
		t.Helper()
		tmp := r.HostsFile + ".new"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, r.HostsFile); err != nil {
			t.Fatal(err)
		}
	}
	return fmt.Sprintf("nats://%s:%s@hub.test:%d", hubLeafUser, hubLeafPass, h.leafPort), hosts, r.LookupHost
}

// A hub named by a host name is reached at each of its addresses in
// turn: nothing listens on 127.0.0.2.
func TestLeafHostName(t *testing.T) {
	h := startHub(t)
	url, hosts, lookup := hubByName(t, h)
	hosts("127.0.0.2 hub.test\n127.0.0.1 hub.test\n")
	s := start(t, func(o *Options) { o.Leafs, o.Lookup = []Remote{{URL: url}}, lookup })
	waitLinked(t, s)
	if st := s.Stats().Leafs[0]; !strings.Contains(st.URL, "@hub.test:") || strings.Contains(st.URL, hubLeafPass) {
		t.Errorf("leaf stats URL %q; want the name, without the password", st.URL)
	}
	sub, _ := connect(t, s).SubscribeSync("by.name")
	waitFor(t, "interest at the hub", func() bool { return slices.Contains(hubSees(h), "by.name") })
	pub := h.connect()
	pub.Publish("by.name", []byte("found"))
	pub.Flush()
	if m := next(t, sub); string(m.Data) != "found" {
		t.Errorf("got %q; want found", m.Data)
	}
}

// The name is looked up at each attempt: a hub that moves is found.
func TestLeafHubMoves(t *testing.T) {
	h := startHub(t)
	url, hosts, lookup := hubByName(t, h)
	hosts("127.0.0.2 hub.test\n")
	s := start(t, func(o *Options) { o.Leafs, o.Lookup = []Remote{{URL: url}}, lookup })
	waitFor(t, "the failed attempt", func() bool { return s.Stats().Leafs[0].LastError != "" })
	if st := s.Stats().Leafs[0]; st.Connected || !strings.Contains(st.LastError, "127.0.0.2") || !strings.Contains(st.LastError, "refused") {
		t.Errorf("stats %+v; want the refusal at 127.0.0.2", st)
	}
	hosts("127.0.0.1 hub.test\n")
	waitLinked(t, s)
}

// A name that cannot be looked up is reported as any failure to connect.
func TestLeafLookupFails(t *testing.T) {
	h := startHub(t)
	url, _, _ := hubByName(t, h)
	lookup := func(_ context.Context, host string) ([]netip.Addr, error) {
		return nil, fmt.Errorf("lookup %s: %w", host, resolve.ErrNotFound)
	}
	s := start(t, func(o *Options) { o.Leafs, o.Lookup = []Remote{{URL: url}}, lookup })
	waitFor(t, "the failed lookup", func() bool { return s.Stats().Leafs[0].LastError != "" })
	want := fmt.Sprintf("connect to nats://%s:xxxxx@hub.test:%d: lookup hub.test: no such host", hubLeafUser, h.leafPort)
	if st := s.Stats().Leafs[0]; st.Connected || st.LastError != want {
		t.Errorf("stats %+v; want LastError %q", st, want)
	}
}

func TestParseLeafURL(t *testing.T) {
	for raw, want := range map[string]string{
		"nats://u:p@hub.internal:7422": "hub.internal:7422",
		"nats-leaf://hub.internal.":    "hub.internal.:7422",
		"10.0.0.1:4000":                "10.0.0.1:4000",
		"nats://[::ffff:10.0.0.1]":     "10.0.0.1:7422",
		"nats://[fd00::1]:7422":        "fd00::1:7422",
		"nats://localhost:7422":        "localhost:7422",
		"nats://t0ken@my_hub:7422":     "my_hub:7422",
	} {
		lu, err := parseLeafURL(raw)
		if got := lu.host + ":" + strconv.Itoa(lu.port); err != nil || got != want {
			t.Errorf("parseLeafURL(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for raw, want := range map[string]string{
		"nats://u:p@hub!x:7422":         "the host must be an IP address or a host name",
		"nats://u:p@-hub.internal:7422": "the host must be an IP address or a host name",
		"nats://u:p@hub..internal":      "the host must be an IP address or a host name",
		"nats://u:p@:7422":              "a host is required",
		"nats://[fe80::1%25eth0]:7422":  "zone",
		"nats://hub:0":                  "the port must be",
		"tls://hub:7422":                "TLS",
	} {
		if _, err := parseLeafURL(raw); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseLeafURL(%q): err %v; want %q", raw, err, want)
		} else if strings.Contains(err.Error(), ":p@") {
			t.Errorf("parseLeafURL(%q): the password shows: %v", raw, err)
		}
	}
}

// TestLeafLocalSubjects: subjects under Options.Local never cross a link:
// their interest is not announced, messages on them are not forwarded,
// and a hub's messages on them are dropped, while every other subject
// still crosses.
func TestLeafLocalSubjects(t *testing.T) {
	h := startHub(t)
	local := func(o *Options) {
		o.Leafs = []Remote{{URL: h.leafURL()}}
		o.Local = []string{"mine."}
	}
	a, b := start(t, local), start(t, local)
	waitLinked(t, a)
	waitLinked(t, b)

	onB := connect(t, b)
	mineB, _ := onB.SubscribeSync("mine.x")
	allB, _ := onB.SubscribeSync(">")
	onB.Flush()
	onHub := h.connect()
	mineHub, _ := onHub.SubscribeSync("mine.x")
	onHub.Flush()
	waitRemote(t, a, "shared.x", 1) // B's ">" reached A through the hub
	if _, r := a.Interest("mine.x"); r != 0 {
		t.Errorf("A counts %d remote subscriptions to a local subject", r)
	}

	onA := connect(t, a)
	mineA, _ := onA.SubscribeSync("mine.x")
	onA.Flush()
	onA.Publish("mine.x", []byte("stays on A"))
	onA.Publish("shared.x", []byte("crosses"))
	onA.Flush()
	onHub.Publish("mine.x", []byte("from the hub"))
	onHub.Flush()
	if got := next(t, mineA); string(got.Data) != "stays on A" {
		t.Errorf("A's own local subscriber got %q", got.Data)
	}
	if got := next(t, allB); string(got.Data) != "crosses" {
		t.Errorf("B got %q first; want only the shared message", got.Data)
	}
	if got := next(t, mineHub); string(got.Data) != "from the hub" {
		t.Errorf("the hub's own subscriber got %q", got.Data)
	}
	// Ordering closes the window: anything A sent went before "crosses",
	// and the hub's message before this round trip.
	onB.Flush()
	for name, sub := range map[string]*nats.Subscription{"B mine.x": mineB, "B >": allB, "A mine.x": mineA} {
		if n, _, _ := sub.Pending(); n != 0 {
			m, _ := sub.NextMsg(0)
			t.Errorf("%s got %q: a local subject crossed a link", name, m.Data)
		}
	}
}
