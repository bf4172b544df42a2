package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tend-pm/tend/internal/api"
)

// Bus is the daemon's pub/sub bus as the supervisor uses it (package bus
// implements it).
type Bus interface {
	// Env starts the bus if needed and returns the variables an instance
	// connects with.
	Env() (map[string]string, error)
	// Running reports whether the bus is up: events and messages are only
	// built when someone could receive them.
	Running() bool
	// Publish sends data on subject if the bus runs. It never blocks.
	Publish(subject string, data []byte)
	// Deliver publishes data on subject if the bus runs and something
	// subscribes to it, and returns how many subscriptions received it.
	Deliver(subject string, data []byte) (int, error)
	// Request publishes data on subject and returns the first answer; it
	// fails at once, with api.ErrNoSubscriber, when nothing subscribes
	// to subject.
	Request(ctx context.Context, subject string, data []byte) ([]byte, error)
}

// eventLocked publishes a lifecycle event of in (or of the whole app when
// in is nil), with fill adding what is particular to it.
func (s *Supervisor) eventLocked(a *app, in *instance, kind string, fill func(*api.Event)) {
	b := s.deps.Bus
	if b == nil || !b.Running() {
		return
	}
	e := api.Event{Event: kind, App: a.spec.Name, ID: a.id, Time: s.deps.Clock.Now(), Host: s.deps.Host, Instance: -1}
	if in != nil {
		e.Instance, e.PID, e.Restarts = in.slot, in.pid, in.restarts
	}
	if fill != nil {
		fill(&e)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return
	}
	b.Publish(api.EventSubject(a.spec.Name, kind), data)
}

// instanceFor resolves target and slot to one instance: slot -1 means the
// app's only one.
func (s *Supervisor) instanceFor(target string, slot int) (*app, *instance, error) {
	apps, err := s.resolve([]string{target})
	if name, n := slotOf(target); err != nil && slot == -1 && n >= 0 {
		// "web:1": instance 1 of web.
		if apps2, err2 := s.resolve([]string{name}); err2 == nil {
			apps, err, slot = apps2, nil, n
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if len(apps) != 1 {
		return nil, nil, fmt.Errorf("%q names %d apps; name one: %w", target, len(apps), api.ErrInvalid)
	}
	a := apps[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(a.insts)
	switch {
	case slot == -1 && n == 1:
		slot = 0
	case slot == -1:
		return nil, nil, fmt.Errorf("app %q has %d instances; say which one: %s:0 (or --instance 0): %w", a.spec.Name, n, a.spec.Name, api.ErrInvalid)
	case slot < 0 || slot >= n:
		return nil, nil, fmt.Errorf("app %q has no instance %d (it has %d): %w", a.spec.Name, slot, n, api.ErrNotFound)
	}
	return a, a.insts[slot], nil
}

// Send gives data, a JSON value, to one instance (pm2's
// sendDataToProcessId): to what subscribes to the instance's inbox subject
// on the bus, if anything does; otherwise on its Node.js IPC channel,
// where process.on('message') receives it as it was sent.
func (s *Supervisor) Send(req api.SendRequest) (api.SendResult, error) {
	if !json.Valid(req.Data) {
		return api.SendResult{}, fmt.Errorf("the message is not valid JSON: %w", api.ErrInvalid)
	}
	slot := -1
	if req.Instance != nil {
		if slot = *req.Instance; slot < 0 {
			return api.SendResult{}, fmt.Errorf("instance %d: give a slot number (0, 1, ...): %w", slot, api.ErrInvalid)
		}
	}
	a, in, err := s.instanceFor(req.Target, slot)
	if err != nil {
		return api.SendResult{}, err
	}
	s.mu.Lock()
	res := api.SendResult{App: a.spec.Name, Instance: in.slot, PID: in.pid}
	c := in.ipc
	s.mu.Unlock()
	if res.PID == 0 {
		return res, fmt.Errorf("app %q, instance %d is not running: %w", a.spec.Name, in.slot, api.ErrConflict)
	}
	data := compactJSON(req.Data)
	subject := api.InboxSubject(a.spec.Name, in.slot)
	if s.deps.Bus != nil {
		n, err := s.deps.Bus.Deliver(subject, data)
		if err != nil {
			return res, fmt.Errorf("app %q, instance %d: %w", a.spec.Name, in.slot, err)
		}
		if res.Subscribers = n; n > 0 {
			return res, nil
		}
	}
	if c == nil {
		return res, fmt.Errorf("app %q, instance %d has no IPC channel (it is not run by node) and nothing of it subscribes to %s: %w",
			a.spec.Name, in.slot, subject, api.ErrConflict)
	}
	if err := c.send(data); err != nil {
		if errors.Is(err, api.ErrInvalid) {
			return res, err
		}
		return res, fmt.Errorf("app %q, instance %d: %w: %w", a.spec.Name, in.slot, err, api.ErrFailed)
	}
	res.IPC = true
	return res, nil
}

// compactJSON drops the insignificant spaces and newlines of a valid JSON
// value: one message is one line on an IPC channel.
func compactJSON(v []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return v
	}
	return b.Bytes()
}

// DefaultTriggerTimeout is how long a trigger waits for each instance.
const DefaultTriggerTimeout = 5 * time.Second

// ValidAction checks an action name: one subject token.
func ValidAction(name string) error {
	if name == "" || len(name) > 128 || strings.ContainsAny(name, ".*> \t\r\n") {
		return fmt.Errorf("action name %q must be one word of at most 128 bytes without '.', '*', '>' or spaces: %w", name, api.ErrInvalid)
	}
	return nil
}

// Trigger asks every instance of the apps target names to run an action
// and collects one answer per instance, waiting at most req.Timeout for
// each. An instance that registered the action on its Node.js IPC channel
// (@pm2/io's io.action) is asked there, as pm2 does; any other on the bus,
// on its action subject. An instance that answers nothing is reported as
// such, never left out.
func (s *Supervisor) Trigger(ctx context.Context, req api.TriggerRequest) ([]api.TriggerResult, error) {
	if err := ValidAction(req.Action); err != nil {
		return nil, err
	}
	timeout := req.Timeout.Std()
	switch {
	case timeout == 0:
		timeout = DefaultTriggerTimeout
	case timeout < 0 || timeout > 10*time.Minute:
		return nil, fmt.Errorf("timeout %s is out of range (0 to 10m): %w", timeout, api.ErrInvalid)
	}
	apps, err := s.resolve([]string{req.Target})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type job struct {
		app   *app
		reply *api.TriggerReply
		c     *ipcChannel
		wait  chan ipcAnswer
		// dropped: late replies c had dropped for this action when
		// this trigger began to wait (see staleReply).
		dropped int
		// ipcActions: what a Node.js instance without this action
		// registered with @pm2/io (nil: no IPC channel), for the hint.
		ipcActions []string
	}
	out := make([]api.TriggerResult, len(apps))
	var jobs []job
	s.mu.Lock()
	for i, a := range apps {
		out[i] = api.TriggerResult{App: a.spec.Name, Action: req.Action, Replies: make([]api.TriggerReply, len(a.insts))}
		for slot, in := range a.insts {
			r := &out[i].Replies[slot]
			*r = api.TriggerReply{Instance: slot, PID: in.pid, Outcome: api.TriggerNotRunning}
			if in.pid == 0 {
				continue
			}
			j := job{app: a, reply: r}
			if c := in.ipc; c != nil && c.actions[req.Action] {
				j.c, j.wait, j.dropped = c, make(chan ipcAnswer, 1), c.dropped[req.Action]
				c.waiters[req.Action] = append(c.waiters[req.Action], j.wait)
			} else if c != nil {
				j.ipcActions = slices.Sorted(maps.Keys(c.actions))
				if j.ipcActions == nil {
					j.ipcActions = []string{}
				}
			}
			jobs = append(jobs, j)
		}
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() {
			if j.c != nil {
				s.triggerIPC(ctx, j.c, j.wait, j.dropped, req, j.reply)
				return
			}
			j.reply.Outcome = api.TriggerNoHandler
			defer func() {
				// Most likely why nothing answers: say so with the answer.
				switch {
				case j.reply.Outcome != api.TriggerNoHandler:
				case len(j.ipcActions) > 0:
					j.reply.Reply = "its @pm2/io actions are " + strings.Join(j.ipcActions, ", ")
				case j.ipcActions != nil && !j.app.spec.Bus:
					j.reply.Reply = "it registered no @pm2/io action, and the app has no bus (--bus)"
				case !j.app.spec.Bus:
					j.reply.Reply = "the app has no bus: start it with --bus (bus: true), or register the action with @pm2/io in Node.js"
				}
			}()
			if s.deps.Bus == nil {
				return
			}
			ans, err := s.deps.Bus.Request(ctx, api.ActionSubject(j.app.spec.Name, j.reply.Instance, req.Action), []byte(req.Params))
			switch {
			case err == nil:
				j.reply.Outcome, j.reply.Reply = api.TriggerOK, string(ans)
			case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
				j.reply.Outcome = api.TriggerTimeout
			case !errors.Is(err, api.ErrNoSubscriber):
				j.reply.Outcome, j.reply.Reply = api.TriggerFailed, err.Error()
			}
		})
	}
	wg.Wait()
	return out, nil
}

// triggerIPC asks one Node.js instance for an action the pm2 way: the
// bare action name, or {msg, opts} with the parameters as given.
// dropped is c.dropped[req.Action] when the trigger began to wait.
func (s *Supervisor) triggerIPC(ctx context.Context, c *ipcChannel, wait chan ipcAnswer, dropped int, req api.TriggerRequest, r *api.TriggerReply) {
	answered := false
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !answered {
			// The answer may have come with the timeout.
			select {
			case ans, ok := <-wait:
				if ok {
					answered = true
					r.Outcome, r.Reply, r.Unsure = api.TriggerOK, string(ans.ret), ans.unsure
				}
			default:
			}
		}
		ws := c.waiters[req.Action]
		for i, w := range ws {
			if w == wait {
				c.waiters[req.Action] = append(ws[:i:i], ws[i+1:]...)
				now := s.deps.Clock.Now()
				switch {
				case answered:
				case c.dropped[req.Action] == dropped:
					// Its answer may still come: it is not the next
					// trigger's.
					c.stale[req.Action] = append(c.stale[req.Action], now.Add(staleReply))
				default:
					// A reply was dropped while it waited, which may have
					// been its own: it claims nothing, and the next
					// answer may be its (see staleReply).
					c.unsure[req.Action] = append(c.unsure[req.Action], now.Add(staleReply))
				}
				break
			}
		}
	}()
	var msg []byte
	if req.Params == "" {
		msg, _ = json.Marshal(req.Action)
	} else {
		msg, _ = json.Marshal(struct {
			Msg  string `json:"msg"`
			Opts string `json:"opts"`
		}{req.Action, req.Params})
	}
	if err := c.send(msg); err != nil {
		answered = true // nothing was asked
		r.Outcome, r.Reply = api.TriggerFailed, err.Error()
		return
	}
	select {
	case ans, ok := <-wait:
		answered = true
		if !ok {
			r.Outcome, r.Reply = api.TriggerNotRunning, "it exited before it answered"
			return
		}
		r.Outcome, r.Reply, r.Unsure = api.TriggerOK, string(ans.ret), ans.unsure
	case <-ctx.Done():
		r.Outcome = api.TriggerTimeout
	}
}

// slotOf reads "app:N" as app and slot N; anything else is the target as
// it is with slot -1.
func slotOf(target string) (string, int) {
	i := strings.LastIndexByte(target, ':')
	if i <= 0 {
		return target, -1
	}
	n, err := strconv.Atoi(target[i+1:])
	if err != nil || n < 0 {
		return target, -1
	}
	return target[:i], n
}
