package natsd

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestPubSubWildcards(t *testing.T) {
	s := start(t)
	pub := connect(t, s)
	subc := connect(t, s)
	exact, _ := subc.SubscribeSync("a.b.c")
	star, _ := subc.SubscribeSync("a.*.c")
	full, _ := subc.SubscribeSync("a.>")
	other, _ := subc.SubscribeSync("b.>")
	if err := subc.Flush(); err != nil {
		t.Fatal(err)
	}
	pub.Publish("a.b.c", []byte("hello"))
	pub.Publish("a.x", []byte("only full"))
	pub.Flush()
	for _, sub := range []*nats.Subscription{exact, star, full} {
		if m := next(t, sub); string(m.Data) != "hello" || m.Subject != "a.b.c" {
			t.Errorf("%s got %q on %q; want hello on a.b.c", sub.Subject, m.Data, m.Subject)
		}
	}
	if m := next(t, full); string(m.Data) != "only full" {
		t.Errorf("a.> got %q; want only full", m.Data)
	}
	// A round trip through the subscribing connection: anything for b.>
	// would have arrived before the PONG.
	subc.Flush()
	if n, _, _ := other.Pending(); n != 0 {
		t.Errorf("b.> got %d messages; want 0", n)
	}
	if n, _, _ := exact.Pending(); n != 0 {
		t.Errorf("a.b.c got %d more messages; want 0", n)
	}
}

func TestQueueGroups(t *testing.T) {
	s := start(t)
	const total = 600
	var mu sync.Mutex
	seen := map[string]map[string]int{} // group -> payload -> deliveries
	perMember := map[string]int{}
	var got atomic.Int64
	for _, group := range []string{"workers", "auditors"} {
		seen[group] = map[string]int{}
		for i := range 3 {
			nc := connect(t, s)
			member := fmt.Sprintf("%s-%d", group, i)
			nc.QueueSubscribe("jobs.*", group, func(m *nats.Msg) {
				mu.Lock()
				seen[group][string(m.Data)]++
				perMember[member]++
				mu.Unlock()
				got.Add(1)
			})
			nc.Flush()
		}
	}
	plainc := connect(t, s)
	var plain atomic.Int64
	plainc.Subscribe("jobs.>", func(*nats.Msg) { plain.Add(1) })
	plainc.Flush()

	pub := connect(t, s)
	for i := range total {
		pub.Publish("jobs.run", []byte(strconv.Itoa(i)))
	}
	pub.Flush()
	waitFor(t, "every message in both groups", func() bool { return got.Load() == 2*total && plain.Load() == total })
	mu.Lock()
	defer mu.Unlock()
	for group, payloads := range seen {
		if len(payloads) != total {
			t.Errorf("group %s saw %d distinct messages; want %d", group, len(payloads), total)
		}
		for p, n := range payloads {
			if n != 1 {
				t.Errorf("group %s got message %s %d times; want once", group, p, n)
			}
		}
	}
	for member, n := range perMember {
		if n == 0 || n == total {
			t.Errorf("member %s got %d of %d messages; want them spread", member, n, total)
		}
	}
}

func TestRequestReply(t *testing.T) {
	s := start(t)
	svc := connect(t, s)
	svc.Subscribe("svc.echo", func(m *nats.Msg) { m.Respond(append([]byte("echo: "), m.Data...)) })
	svc.Flush()
	nc := connect(t, s)
	for i := range 10 {
		m, err := nc.Request("svc.echo", []byte(strconv.Itoa(i)), 5*time.Second)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if want := "echo: " + strconv.Itoa(i); string(m.Data) != want {
			t.Errorf("reply %q; want %q", m.Data, want)
		}
	}
}

func TestNoResponders(t *testing.T) {
	s := start(t)
	nc := connect(t, s)
	t0 := time.Now()
	_, err := nc.Request("nobody.home", []byte("hi"), 5*time.Second)
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("Request = %v; want nats.ErrNoResponders", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("no responders took %v; want at once", d)
	}
	// The old style of request (a subscription per request) too.
	old := connect(t, s, nats.UseOldRequestStyle())
	if _, err := old.Request("nobody.home", nil, 5*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("old-style Request = %v; want nats.ErrNoResponders", err)
	}
}

func TestHeaders(t *testing.T) {
	s := start(t)
	subc := connect(t, s)
	sub, _ := subc.SubscribeSync("h")
	subc.Flush()
	pub := connect(t, s)
	m := nats.NewMsg("h")
	m.Header.Set("Trace-Id", "abc")
	m.Header.Add("Multi", "1")
	m.Header.Add("Multi", "2")
	m.Data = []byte("body")
	if err := pub.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	got := next(t, sub)
	if string(got.Data) != "body" || got.Header.Get("Trace-Id") != "abc" || len(got.Header.Values("Multi")) != 2 {
		t.Errorf("got data %q header %v; want body with Trace-Id and two Multi", got.Data, got.Header)
	}
}

// A client that did not declare headers gets MSG with the data only.
func TestHeadersStripped(t *testing.T) {
	s := start(t)
	r := dialRaw(t, s)
	r.login(`"headers":false`)
	r.send("SUB h 7\r\nPING\r\n")
	r.expect("PONG")
	pub := connect(t, s)
	m := nats.NewMsg("h")
	m.Header.Set("K", "v")
	m.Data = []byte("payload")
	pub.PublishMsg(m)
	pub.Flush()
	r.expect("MSG h 7 7")
	r.expect("payload")

	// And one that did gets HMSG, header block first.
	h := dialRaw(t, s)
	h.login(`"headers":true`)
	h.send("SUB h 1\r\nPING\r\n")
	h.expect("PONG")
	pub.PublishMsg(m)
	pub.Flush()
	h.expect("HMSG h 1 18 25")
	h.expect("NATS/1.0")
	h.expect("K: v")
	h.expect("")
	h.expect("payload")
}

func TestEchoFalse(t *testing.T) {
	s := start(t)
	self := connect(t, s, nats.NoEcho())
	own, _ := self.SubscribeSync("e")
	self.Flush()
	other := connect(t, s)
	theirs, _ := other.SubscribeSync("e")
	other.Flush()
	self.Publish("e", []byte("mine"))
	self.Flush()
	if m := next(t, theirs); string(m.Data) != "mine" {
		t.Fatalf("other got %q", m.Data)
	}
	other.Publish("e", []byte("theirs"))
	other.Flush()
	if m := next(t, own); string(m.Data) != "theirs" {
		t.Errorf("publisher's own subscription got %q; want only the other's message", m.Data)
	}
}

// UNSUB with a maximum is enforced by the server (a raw client, since
// nats.go also counts on its side).
func TestUnsubMax(t *testing.T) {
	s := start(t)
	r := dialRaw(t, s)
	r.login("")
	r.send("SUB m 1\r\nUNSUB 1 2\r\nPING\r\n")
	r.expect("PONG")
	pub := connect(t, s)
	for i := range 5 {
		pub.Publish("m", []byte(strconv.Itoa(i)))
	}
	pub.Flush()
	r.expect("MSG m 1 1")
	r.expect("0")
	r.expect("MSG m 1 1")
	r.expect("1")
	r.send("PING\r\n")
	r.expect("PONG")
	waitFor(t, "the subscription to go", func() bool { l, _ := s.Interest("m"); return l == 0 })

	// A maximum already reached removes the subscription at once.
	r.send("SUB n 2\r\nPING\r\n")
	r.expect("PONG")
	pub.Publish("n", []byte("x"))
	pub.Flush()
	r.expect("MSG n 2 1")
	r.expect("x")
	r.send("UNSUB 2 1\r\nPING\r\n")
	r.expect("PONG")
	if l, _ := s.Interest("n"); l != 0 {
		t.Errorf("interest in n after UNSUB 2 1 = %d; want 0", l)
	}
}

func TestVerbose(t *testing.T) {
	s := start(t)
	r := dialRaw(t, s)
	r.send(`CONNECT {"verbose":true,"user":"` + testUser + `","pass":"` + testPass + "\"}\r\n")
	r.expect("+OK")
	r.send("SUB v 1\r\n")
	r.expect("+OK")
	r.send("PUB v 2\r\nhi\r\n")
	// The message and the acknowledgement, in either order.
	got := map[string]bool{}
	for range 3 {
		got[r.line()] = true
	}
	for _, want := range []string{"+OK", "MSG v 1 2", "hi"} {
		if !got[want] {
			t.Errorf("missing %q in %v", want, got)
		}
	}
	r.send("UNSUB 1\r\n")
	r.expect("+OK")
	r.send("PING\r\n")
	r.expect("PONG")
}

func TestInvalidSubject(t *testing.T) {
	s := start(t)
	r := dialRaw(t, s)
	r.login("")
	for _, subj := range []string{"a..b", "a.>.b", ".a", "a.", ">a"} {
		if subj == ">a" {
			continue // a literal token: valid
		}
		r.send("SUB " + subj + " 1\r\n")
		r.expect("-ERR 'Invalid Subject'")
	}
	r.send("PUB a.* 1\r\nx\r\n")
	r.expect("-ERR 'Invalid Publish Subject'")
	r.send("PING\r\n")
	r.expect("PONG")
}

func TestProtocolErrors(t *testing.T) {
	s := start(t, func(o *Options) { o.MaxPayload = 1024 })
	t.Run("unknown", func(t *testing.T) {
		r := dialRaw(t, s)
		r.login("")
		r.send("FOO bar\r\n")
		r.expect("-ERR 'Unknown Protocol Operation'")
		r.expectClosed()
	})
	t.Run("max payload", func(t *testing.T) {
		r := dialRaw(t, s)
		r.login("")
		r.send("PUB big 2000\r\n")
		r.expect("-ERR 'Maximum Payload Violation'")
		r.expectClosed()
	})
	t.Run("control line", func(t *testing.T) {
		r := dialRaw(t, s)
		r.login("")
		long := make([]byte, 5000)
		for i := range long {
			long[i] = 'a'
		}
		r.send("PUB " + string(long))
		r.expect("-ERR 'Maximum Control Line Exceeded'")
		r.expectClosed()
	})
	t.Run("max payload nats.go", func(t *testing.T) {
		nc := connect(t, s)
		if got := nc.MaxPayload(); got != 1024 {
			t.Errorf("MaxPayload = %d; want 1024 from INFO", got)
		}
		if err := nc.Publish("big", make([]byte, 2000)); !errors.Is(err, nats.ErrMaxPayload) {
			t.Errorf("Publish = %v; want nats.ErrMaxPayload", err)
		}
	})
}

func TestInProcess(t *testing.T) {
	s := start(t)
	nc := connect(t, s)

	// Client to in-process.
	got := make(chan Msg, 10)
	sub, err := s.Subscribe("evt.>", "", func(m Msg) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	hm := nats.NewMsg("evt.app.start")
	hm.Header.Set("App", "web")
	hm.Data = []byte("started")
	hm.Reply = "inbox.1"
	nc.PublishMsg(hm)
	nc.Flush()
	m := <-got
	if m.Subject != "evt.app.start" || m.Reply != "inbox.1" || string(m.Data) != "started" || string(m.Header) != "NATS/1.0\r\nApp: web\r\n\r\n" {
		t.Errorf("in-process got %+v", m)
	}
	sub.Unsubscribe()
	if l, _ := s.Interest("evt.x"); l != 0 {
		t.Errorf("interest after Unsubscribe = %d; want 0", l)
	}

	// In-process to client, with a header and a reply subject.
	csub, _ := nc.SubscribeSync("cmd.>")
	nc.Flush()
	if err := s.Publish("cmd.stop", "reply.here", []byte("NATS/1.0\r\nWho: daemon\r\n\r\n"), []byte("now")); err != nil {
		t.Fatal(err)
	}
	cm := next(t, csub)
	if cm.Subject != "cmd.stop" || cm.Reply != "reply.here" || string(cm.Data) != "now" || cm.Header.Get("Who") != "daemon" {
		t.Errorf("client got %q %q %q %v", cm.Subject, cm.Reply, cm.Data, cm.Header)
	}

	// Requests both ways.
	nc.Subscribe("svc.add", func(m *nats.Msg) { m.Respond([]byte("added " + string(m.Data))) })
	nc.Flush()
	ctx := t.Context()
	rep, err := s.Request(ctx, "svc.add", nil, []byte("1"))
	if err != nil || string(rep.Data) != "added 1" {
		t.Errorf("Request = %q, %v; want added 1", rep.Data, err)
	}
	if _, err := s.Request(ctx, "svc.none", nil, nil); !errors.Is(err, ErrNoResponders) {
		t.Errorf("Request to nobody = %v; want ErrNoResponders", err)
	}
	s.Subscribe("daemon.ping", "", func(m Msg) { s.Publish(m.Reply, "", nil, []byte("pong")) })
	rm, err := nc.Request("daemon.ping", nil, 5*time.Second)
	if err != nil || string(rm.Data) != "pong" {
		t.Errorf("client Request to in-process = %v, %v; want pong", rm, err)
	}

	// Bad input.
	if err := s.Publish("a.*", "", nil, nil); !errors.Is(err, ErrInvalidSubject) {
		t.Errorf("Publish(a.*) = %v; want ErrInvalidSubject", err)
	}
	if _, err := s.Subscribe("a..b", "", func(Msg) {}); !errors.Is(err, ErrInvalidSubject) {
		t.Errorf("Subscribe(a..b) = %v; want ErrInvalidSubject", err)
	}
	if err := s.Publish("a", "", []byte("Key: v\r\n\r\n"), nil); err == nil {
		t.Errorf("Publish with a header without NATS/1.0 = nil; want an error")
	}
}

// An in-process subscriber that does not keep up loses messages, and
// the publisher does not wait for it.
func TestInProcessDrops(t *testing.T) {
	s := start(t)
	started, release := make(chan struct{}), make(chan struct{})
	var n atomic.Int64
	sub, _ := s.Subscribe("flood", "", func(Msg) {
		if n.Add(1) == 1 {
			close(started)
		}
		<-release
	})
	s.Publish("flood", "", nil, []byte("first"))
	<-started
	const extra = 100
	for range subQueueMsgs + extra {
		if err := s.Publish("flood", "", nil, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	// One message was taken by the blocked callback, the queue holds
	// subQueueMsgs, the rest were dropped.
	waitFor(t, "the queue to drain", func() bool { return n.Load() == subQueueMsgs+1 })
	if d := sub.Dropped(); d != extra {
		t.Errorf("Dropped = %d; want %d", d, extra)
	}
	if d := s.Stats().Dropped; d != extra {
		t.Errorf("Stats().Dropped = %d; want %d", d, extra)
	}
}

func TestInterest(t *testing.T) {
	s := start(t)
	if l, r := s.Interest("svc.a"); l != 0 || r != 0 {
		t.Fatalf("Interest with nothing = %d, %d", l, r)
	}
	nc := connect(t, s)
	s1, _ := nc.Subscribe("svc.*", func(*nats.Msg) {})
	nc.QueueSubscribe("svc.a", "g", func(*nats.Msg) {})
	nc.QueueSubscribe("svc.a", "g", func(*nats.Msg) {})
	nc.Flush()
	is, _ := s.Subscribe("svc.>", "", func(Msg) {})
	if l, _ := s.Interest("svc.a"); l != 4 {
		t.Errorf("Interest(svc.a) = %d; want 4", l)
	}
	if l, _ := s.Interest("svc.b"); l != 2 {
		t.Errorf("Interest(svc.b) = %d; want 2", l)
	}
	if l, _ := s.Interest("svc.b.c"); l != 1 {
		t.Errorf("Interest(svc.b.c) = %d; want 1", l)
	}
	s1.Unsubscribe()
	is.Unsubscribe()
	nc.Flush()
	if l, _ := s.Interest("svc.b"); l != 0 {
		t.Errorf("Interest(svc.b) after unsubscribing = %d; want 0", l)
	}
	if st := s.Stats(); st.Subs != 2 || st.Conns != 1 {
		t.Errorf("Stats: %d subs, %d conns; want 2, 1", st.Subs, st.Conns)
	}
	nc.Close()
	waitFor(t, "the client's subscriptions to go", func() bool { l, _ := s.Interest("svc.a"); return l == 0 })
}

// TestReserved: a client's PUB on a reserved prefix is refused with
// nats-server's permissions error and reaches no one; the connection
// stays usable, subscribing there is allowed, and the owner publishes.
func TestReserved(t *testing.T) {
	s := start(t, func(o *Options) { o.Reserved = []string{"tend.events."} })
	watcher := connect(t, s)
	sub, err := watcher.SubscribeSync("tend.events.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, s)
	r.login("")
	r.send("PUB tend.events.web.start 2\r\n{}\r\n")
	r.expect(`-ERR 'Permissions Violation for Publish to "tend.events.web.start"'`)
	r.send("PUB tend.eventsx 1\r\nx\r\nPUB tend.events 1\r\nx\r\nPING\r\n")
	r.expect("PONG")
	if err := s.Publish("tend.events.web.exit", "", nil, []byte("real")); err != nil {
		t.Fatal(err)
	}
	if m := next(t, sub); m.Subject != "tend.events.web.exit" || string(m.Data) != "real" {
		t.Errorf("the watcher got %s %q first; want the owner's tend.events.web.exit", m.Subject, m.Data)
	}
}
