package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/clock/clocktest"
)

func TestReadLine(t *testing.T) {
	long := strings.Repeat("x", maxIPCLine+10)
	in := "\"a\"\r\n" + long + "\n{\"b\":1}\n\"tail\""
	r := bufio.NewReaderSize(strings.NewReader(in), 4096)
	var got []string
	for {
		line, err := readLine(r)
		got = append(got, string(line))
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
	want := []string{`"a"`, "", `{"b":1}`, `"tail"`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q; want %q (the long one skipped whole)", got, want)
	}
}

// TestParseIPC: messages are read as pm2 reads them.
func TestParseIPC(t *testing.T) {
	for _, tc := range []struct{ in, typ, data, topic string }{
		{`"ready"`, "process:msg", `"ready"`, ""},
		{`42`, "process:msg", `42`, ""},
		{`{"type":"process:msg","topic":"t","data":{"x":1}}`, "process:msg", `{"x":1}`, `"t"`},
		{`{"type":"custom:event","data":[1]}`, "custom:event", `[1]`, ""},
		// Without both type and data, pm2 emits the whole value.
		{`{"type":"only"}`, "process:msg", `{"type":"only"}`, ""},
		{`{"data":1}`, "process:msg", `{"data":1}`, ""},
	} {
		_, p, ok := parseIPC([]byte(tc.in))
		if !ok || p.Type != tc.typ || string(p.Data) != tc.data || string(p.Topic) != tc.topic {
			t.Errorf("%s: %+v (ok %v); want type %s data %s topic %s", tc.in, p, ok, tc.typ, tc.data, tc.topic)
		}
	}
	if _, _, ok := parseIPC([]byte(`{not json`)); ok {
		t.Error("a line that is not JSON was taken")
	}
}

// TestIPCSendWhole: an app that does not read its channel gets messages
// refused once the queue is full, never half a message: when it reads
// again, every line it gets is a whole JSON value, in order.
func TestIPCSendWhole(t *testing.T) {
	parent, child, err := socketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer child.Close()
	c := newIPCChannel(parent)
	defer func() { close(c.done); parent.Close() }()

	msg, _ := json.Marshal(strings.Repeat("m", 100<<10))
	sent := 0
	for ; sent < 1000; sent++ {
		if err := c.send(msg); err != nil {
			if !errors.Is(err, errIPCFull) {
				t.Fatalf("send %d: %v", sent, err)
			}
			break
		}
	}
	if sent == 1000 || sent == 0 {
		t.Fatalf("%d messages of 100 KiB went to an app that does not read; want the queue to fill", sent)
	}
	if err := c.send(make([]byte, maxIPCLine+1)); err == nil {
		t.Error("a message above the limit was queued")
	}
	r := bufio.NewReader(child)
	for i := range sent {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if !bytes.Equal(bytes.TrimSuffix(line, []byte("\n")), msg) {
			t.Fatalf("line %d is not the message whole (%d bytes)", i, len(line))
		}
	}
	if err := c.send([]byte(`"after"`)); err != nil {
		t.Fatalf("after the app read: %v", err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "\"after\"\n" {
		t.Errorf("then %q, %v", line, err)
	}
}

// TestReplyAfterTimeout: the late answer of a trigger that gave up is not
// handed to the next trigger of the same action; after staleReply it
// would be.
func TestReplyAfterTimeout(t *testing.T) {
	clk := clocktest.New(time.Unix(1e9, 0))
	s := New(Deps{Clock: clk})
	c := &ipcChannel{waiters: map[string][]chan ipcAnswer{}, stale: map[string][]time.Time{}, dropped: map[string]int{}, unsure: map[string][]time.Time{}}
	s.mu.Lock()
	defer s.mu.Unlock()

	first := make(chan ipcAnswer, 1)
	c.waiters["a"] = []chan ipcAnswer{first}
	s.replyLocked(c, "a", json.RawMessage(`1`))
	if got := string((<-first).ret); got != "1" {
		t.Fatalf("first answer %q", got)
	}

	// A trigger gave up; its answer comes after the next trigger asked.
	c.stale["a"] = []time.Time{clk.Now().Add(staleReply)}
	next := make(chan ipcAnswer, 1)
	c.waiters["a"] = []chan ipcAnswer{next}
	s.replyLocked(c, "a", json.RawMessage(`"late"`))
	s.replyLocked(c, "a", json.RawMessage(`"mine"`))
	if got := string((<-next).ret); got != `"mine"` {
		t.Errorf("the next trigger got %s; want its own answer", got)
	}

	// A trigger whose answer never came claims nothing after staleReply.
	c.stale["a"] = []time.Time{clk.Now().Add(staleReply)}
	clk.Advance(staleReply + time.Second)
	last := make(chan ipcAnswer, 1)
	c.waiters["a"] = []chan ipcAnswer{last}
	s.replyLocked(c, "a", nil)
	if got := string((<-last).ret); got != "null" {
		t.Errorf("after the stale window: %s; want null (an answer with no return)", got)
	}
}

func TestPM2MetricName(t *testing.T) {
	for in, want := range map[string]string{
		"Heap Size":              "heap_size",
		"req/sec":                "req_sec",
		"Event Loop Latency p95": "event_loop_latency_p95",
		"  --Jobs done!! ":       "jobs_done",
		"95th percentile":        "_95th_percentile",
		"€€€":                    "",
		strings.Repeat("a", 70):  strings.Repeat("a", maxMetricNameLen),
	} {
		if got := pm2MetricName(in); got != want || (got != "" && !validMetricName(got)) {
			t.Errorf("pm2MetricName(%q) = %q; want %q, a valid name", in, got, want)
		}
	}
	got := parsePM2Metrics(json.RawMessage(`{"B": {"value": "1.5"}, "A": {"value": 2}, "C": {"value": "n/a"}, "D": {}}`))
	if len(got) != 2 || got[0] != (pm2Metric{"a", 2}) || got[1] != (pm2Metric{"b", 1.5}) {
		t.Errorf("parsePM2Metrics = %+v; want a=2, b=1.5", got)
	}
}

// TestTriggerWithoutRequestIDs walks pm2's protocol, which names no
// request, through the cases it cannot tell apart: a trigger that gave up
// claims its late answer; one that gave up after such an answer was
// dropped claims nothing, so an action that once never answered costs at
// most one more failed trigger, and the next answer is marked unsure, as
// it may be the late one of the trigger before (a handler slower than the
// timeout); after that, answers are certain again.
func TestTriggerWithoutRequestIDs(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	go func() { _, _ = io.Copy(io.Discard, r) }() // the app's end: requests are read and ignored
	s := New(Deps{Clock: clocktest.New(time.Unix(1e9, 0))})
	c := newIPCChannel(w)
	req := api.TriggerRequest{Action: "a"}
	// trigger runs one trigger; answer, if not nil, is what the app sends
	// while it waits. It returns what the trigger reports.
	trigger := func(timeout time.Duration, answer func()) api.TriggerReply {
		s.mu.Lock()
		wait := make(chan ipcAnswer, 1)
		c.waiters["a"] = append(c.waiters["a"], wait)
		dropped := c.dropped["a"]
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		var rep api.TriggerReply
		done := make(chan struct{})
		go func() { s.triggerIPC(ctx, c, wait, dropped, req, &rep); close(done) }()
		if answer != nil {
			answer()
		}
		<-done
		return rep
	}
	reply := func(v string) func() {
		return func() { s.mu.Lock(); s.replyLocked(c, "a", json.RawMessage(v)); s.mu.Unlock() }
	}

	if rep := trigger(10*time.Millisecond, nil); rep.Outcome != api.TriggerTimeout {
		t.Fatalf("T1 (never answered): %+v; want a timeout", rep)
	}
	// T2's answer comes, and is dropped as T1's late one.
	if rep := trigger(50*time.Millisecond, reply(`"2"`)); rep.Outcome != api.TriggerTimeout {
		t.Fatalf("T2: %+v; want a timeout, its answer taken for T1's", rep)
	}
	// T3 gets an answer: its own, or T2's late one; it cannot tell.
	if rep := trigger(5*time.Second, reply(`"3"`)); rep.Outcome != api.TriggerOK || rep.Reply != `"3"` || !rep.Unsure {
		t.Fatalf("T3: %+v; want the answer, marked unsure", rep)
	}
	if rep := trigger(5*time.Second, reply(`"4"`)); rep.Outcome != api.TriggerOK || rep.Reply != `"4"` || rep.Unsure {
		t.Fatalf("T4: %+v; want the answer, certain", rep)
	}
}
