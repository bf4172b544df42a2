package supervisor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tend-pm/tend/internal/api"
)

// Node.js instances get Node's own IPC channel (NODE_CHANNEL_FD, "json"
// serialization: one JSON value a line), as under pm2, so the code pm2
// users wrote keeps working: process.send('ready') is readiness with
// wait_ready, process.send({type: 'process:msg', topic, data}) reaches the
// bus, process.on('message') gets what `tend send` sends and 'shutdown'
// with shutdown_with_message, and actions registered the @pm2/io way
// (axm:action, axm:reply) answer `tend trigger`.

// maxIPCLine bounds one message from an app; a longer one is skipped.
// Messages to an app are held to the same size.
const maxIPCLine = 1 << 20

// maxIPCQueue bounds what waits for an app that does not read its
// channel: beyond it, messages are refused, never half written.
const maxIPCQueue = 4 << 20

// staleReply is how long a trigger that gave up on an app keeps claiming
// the late axm:reply it may still get: pm2's protocol names no request,
// so without this the next trigger of the same action would print the
// earlier one's answer as its own. A trigger that gave up after a reply
// was dropped for an earlier one claims nothing: the dropped reply may
// have been its own (the earlier one never answered), and claiming again
// would drop every answer after it. Its late answer may then come to the
// next trigger, which says so (ipcAnswer.unsure) rather than pass it off
// as certainly its own.
const staleReply = 30 * time.Second

// ipcAnswer is an axm:reply handed to a waiting trigger; unsure: it may
// be the late answer of an earlier trigger that gave up without a claim.
type ipcAnswer struct {
	ret    []byte
	unsure bool
}

// ipcChannel is the daemon's end of one process's IPC channel. One writer
// goroutine writes whole messages in order; a message is either queued
// whole or refused, so an app that stops reading never gets half of one
// (Node would fail to parse what follows and crash the app).
type ipcChannel struct {
	f      *os.File
	out    chan []byte
	queued atomic.Int64 // bytes waiting in out
	done   chan struct{}

	// Guarded by Supervisor.mu.
	actions map[string]bool             // registered with axm:action
	waiters map[string][]chan ipcAnswer // triggers waiting for axm:reply, by action
	stale   map[string][]time.Time      // until when a late reply belongs to a trigger that gave up
	dropped map[string]int              // replies dropped as late, by action
	// unsure: until when a trigger that gave up without a claim may
	// still be answered, making the next answer's owner unsure.
	unsure map[string][]time.Time
}

func newIPCChannel(f *os.File) *ipcChannel {
	c := &ipcChannel{
		f: f, out: make(chan []byte, 256), done: make(chan struct{}),
		actions: map[string]bool{}, waiters: map[string][]chan ipcAnswer{}, stale: map[string][]time.Time{},
		dropped: map[string]int{}, unsure: map[string][]time.Time{},
	}
	go c.write()
	return c
}

// write sends the queued messages, in order, until the channel closes.
func (c *ipcChannel) write() {
	for {
		select {
		case <-c.done:
			return
		case line := <-c.out:
			_, err := c.f.Write(line)
			c.queued.Add(-int64(len(line)))
			if err != nil {
				return // the process is gone; readIPC sees it too and cleans up
			}
		}
	}
}

// errIPCFull refuses a message to an app that does not read its channel.
var errIPCFull = errors.New("its IPC channel is full: the app does not read it")

// send queues one JSON value (and the newline that ends it).
func (c *ipcChannel) send(msg []byte) error {
	if len(msg) > maxIPCLine {
		return fmt.Errorf("the message is %d bytes; an IPC message is at most %d: %w", len(msg), maxIPCLine, api.ErrInvalid)
	}
	line := make([]byte, 0, len(msg)+1)
	line = append(append(line, msg...), '\n')
	n := int64(len(line))
	if c.queued.Add(n) > maxIPCQueue {
		c.queued.Add(-n)
		return errIPCFull
	}
	select {
	case <-c.done:
		c.queued.Add(-n)
		return errors.New("its IPC channel is closed: the process is ending")
	case c.out <- line:
		return nil
	default:
		c.queued.Add(-n)
		return errIPCFull
	}
}

// readIPC reads what a Node.js instance sends on its IPC channel until
// the channel closes (the process is gone), then releases the channel and
// tells the triggers still waiting on it.
func (s *Supervisor) readIPC(in *instance, run uint64, c *ipcChannel) {
	defer func() {
		close(c.done)
		c.f.Close()
		s.mu.Lock()
		if in.ipc == c {
			in.ipc = nil
		}
		for _, ws := range c.waiters {
			for _, w := range ws {
				close(w)
			}
		}
		c.waiters = nil
		s.mu.Unlock()
	}()
	r := bufio.NewReaderSize(c.f, 64<<10)
	for {
		line, err := readLine(r)
		if len(line) > 0 {
			s.ipcMessage(in, run, c, line)
		}
		if err != nil {
			return
		}
	}
}

// readLine returns the next line without its newline; a line longer than
// maxIPCLine is skipped whole and returned empty.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	long := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !long {
			line = append(line, chunk...)
			if len(line) > maxIPCLine {
				line, long = nil, true
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

// ipcPacket is pm2's message shape: {type, topic, data}.
type ipcPacket struct {
	Type  string          `json:"type"`
	Topic json.RawMessage `json:"topic"`
	Data  json.RawMessage `json:"data"`
}

// parseIPC reads one message the way pm2 does: a {type, data} packet keeps
// its type; any other value is a "process:msg" whose data is the value.
// ok is false for a line that is not JSON.
func parseIPC(line []byte) (v any, p ipcPacket, ok bool) {
	if json.Unmarshal(line, &v) != nil {
		return nil, p, false
	}
	p = ipcPacket{Type: "process:msg", Data: line}
	if m, isObject := v.(map[string]any); isObject && m["type"] != nil && m["data"] != nil {
		var typed ipcPacket
		if json.Unmarshal(line, &typed) == nil && typed.Type != "" {
			p = typed
		}
	}
	return v, p, true
}

// ipcMessage handles one message from an instance. It is parsed before
// the supervisor's lock is taken and published after it is let go: a
// chatty app must not hold up the supervisor.
func (s *Supervisor) ipcMessage(in *instance, run uint64, c *ipcChannel, line []byte) {
	v, p, ok := parseIPC(line)
	if !ok {
		return
	}
	var action struct {
		Name   string          `json:"action_name"`
		Return json.RawMessage `json:"return"`
	}
	if p.Type == "axm:action" || p.Type == "axm:reply" {
		if json.Unmarshal(p.Data, &action) != nil || action.Name == "" {
			return
		}
	}
	var monitor []pm2Metric
	switch p.Type {
	case "axm:monitor":
		monitor = parsePM2Metrics(p.Data)
	case "axm:option:configuration":
		return // @pm2/io telling pm2 its options: nothing for tend, nor for the bus
	}

	s.mu.Lock()
	if in.run != run {
		s.mu.Unlock()
		return
	}
	switch {
	case v == "ready" && in.app.spec.WaitReady:
		s.markReadyLocked(in)
		s.mu.Unlock()
		return
	case p.Type == "axm:action":
		c.actions[action.Name] = true
		s.mu.Unlock()
		return
	case p.Type == "axm:reply":
		s.replyLocked(c, action.Name, action.Return)
		s.mu.Unlock()
		return
	case p.Type == "axm:monitor":
		// @pm2/io's metrics, about once a second: app metrics, as
		// METRIC= lines are (a name that clashes or goes beyond the
		// bounds is left out), not messages on the bus.
		for _, m := range monitor {
			_ = in.setMetricLocked("@pm2/io metric "+m.name, m.name, api.MetricGauge, m.value)
		}
		s.mu.Unlock()
		return
	}
	msg := api.IPCMessage{
		App: in.app.spec.Name, Host: s.deps.Host, Instance: in.slot, PID: in.pid,
		Type: p.Type, Topic: p.Topic, Data: p.Data, Time: s.deps.Clock.Now(),
	}
	s.mu.Unlock()
	if b := s.deps.Bus; b != nil && b.Running() {
		if data, err := json.Marshal(msg); err == nil {
			b.Publish(api.MsgSubject(msg.App, msg.Instance), data)
		}
	}
}

// pm2Metric is one value of an axm:monitor message.
type pm2Metric struct {
	name  string
	value float64
}

// parsePM2Metrics reads @pm2/io's axm:monitor data,
// {"Heap Size": {"value": "9.23", "unit": "MiB"}, "Jobs done": {"value": 2}},
// into metric names tend takes ("heap_size", "jobs_done"); values that are
// not finite numbers are left out.
func parsePM2Metrics(data json.RawMessage) []pm2Metric {
	var all map[string]struct {
		Value json.RawMessage `json:"value"`
	}
	if json.Unmarshal(data, &all) != nil {
		return nil
	}
	out := make([]pm2Metric, 0, len(all))
	for name, m := range all {
		raw := bytes.Trim(m.Value, `"`) // @pm2/io sends some values as strings ("9.23")
		v, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if n := pm2MetricName(name); n != "" {
			out = append(out, pm2Metric{n, v})
		}
	}
	slices.SortFunc(out, func(a, b pm2Metric) int { return strings.Compare(a.name, b.name) })
	return out
}

// pm2MetricName makes a metric name of @pm2/io's free text: lower case,
// runs of anything but letters and digits as one "_", at most
// maxMetricNameLen bytes, "_" first if it begins with a digit.
func pm2MetricName(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			b.WriteRune(c)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	n := strings.TrimSuffix(b.String(), "_")
	if n != "" && n[0] >= '0' && n[0] <= '9' {
		n = "_" + n
	}
	if len(n) > maxMetricNameLen {
		n = strings.TrimSuffix(n[:maxMetricNameLen], "_")
	}
	return n
}

// replyLocked hands an axm:reply to the oldest trigger waiting for it,
// unless a trigger that gave up on this action may still be owed it.
func (s *Supervisor) replyLocked(c *ipcChannel, action string, ret json.RawMessage) {
	now := s.deps.Clock.Now()
	st := c.stale[action]
	for len(st) > 0 && now.After(st[0]) {
		st = st[1:]
	}
	if len(st) > 0 {
		c.stale[action] = st[1:]
		c.dropped[action]++
		return // the late answer of a trigger that gave up
	}
	delete(c.stale, action)
	if ws := c.waiters[action]; len(ws) > 0 {
		if ret == nil {
			ret = json.RawMessage("null")
		}
		ans := ipcAnswer{ret: ret}
		un := c.unsure[action]
		for len(un) > 0 && now.After(un[0]) {
			un = un[1:]
		}
		if len(un) > 0 {
			ans.unsure, un = true, un[1:]
		}
		c.unsure[action] = un
		ws[0] <- ans // buffered: never blocks
		c.waiters[action] = ws[1:]
	}
}
