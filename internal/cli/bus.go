package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/tend-pm/tend/internal/api"
)

// The pub/sub bus (docs/bus.md): `tend bus`, `tend send`, `tend trigger`.
// Every one goes through the daemon's API; the CLI itself speaks no NATS.

func newBus(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "bus",
		Usage: "Publish and subscribe on the pub/sub bus between instances",
		Description: `The bus is a NATS server inside the daemon, on 127.0.0.1, started the first
time something needs it. Instances of apps started with --bus (or bus: true)
get TEND_BUS_URL and connect with any NATS client.`,
		Commands: []*ucli.Command{newBusPub(env), newBusSub(env), newBusStatus(env), newBusURL(env)},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.NArg() > 0 {
				return usagef("unknown bus command %q (see `tend bus --help`)", c.Args().First())
			}
			return busStatus(ctx, env, false)
		},
	}
}

func newBusPub(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "pub",
		Aliases:   []string{"publish"},
		Usage:     "Publish a message on a subject",
		ArgsUsage: "<subject> <data>",
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 2, 2); err != nil {
				return err
			}
			if c.Args().Get(0) == "" {
				return usagef("give a subject to publish on, such as chat.room1")
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			return cl.BusPublish(ctx, api.BusPublish{Subject: c.Args().Get(0), Data: c.Args().Get(1)})
		},
	}
}

func newBusSub(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:      "sub",
		Aliases:   []string{"subscribe"},
		Usage:     "Print the messages on a subject (wildcards * and > allowed) until interrupted",
		ArgsUsage: "<subject>",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "json", Usage: "one JSON object per message"},
			&ucli.IntFlag{Name: "count", Usage: "exit after this many messages (0: never)"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 1, 1); err != nil {
				return err
			}
			if c.Args().First() == "" {
				return usagef("give a subject to subscribe to, such as chat.> or tend.events.>")
			}
			count := int(c.Int("count"))
			if count < 0 {
				return usagef("--count must be 0 or more")
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			subject := c.Args().First()
			asJSON := c.Bool("json")
			enc := json.NewEncoder(env.IO.Out)
			seen := 0
			err = cl.BusSubscribe(ctx, subject, func() {
				// On stderr, so scripts reading stdout see only messages,
				// and they can wait for this line before publishing.
				fmt.Fprintf(env.IO.Err, "listening on %s\n", subject)
			}, func(m api.BusMessage) error {
				if asJSON {
					if err := enc.Encode(m); err != nil {
						return err
					}
				} else {
					if m.Dropped > 0 {
						fmt.Fprintf(env.IO.Err, "tend: %d messages dropped: this subscriber did not keep up\n", m.Dropped)
					}
					if _, err := fmt.Fprintf(env.IO.Out, "%s %s\n", m.Subject, m.Data); err != nil {
						return err
					}
				}
				if seen++; count > 0 && seen >= count {
					return errEnough
				}
				return nil
			})
			if errors.Is(err, errEnough) {
				return nil
			}
			return err
		},
	}
}

func newBusStatus(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "status",
		Usage: "Say whether the bus runs, where, and its clients and links",
		Flags: []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "the daemon's answer as it is"}},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			if c.Bool("json") {
				cl, err := env.Client(ctx)
				if err != nil {
					return err
				}
				st, err := cl.BusStatus(ctx, false, false)
				if err != nil {
					return err
				}
				return json.NewEncoder(env.IO.Out).Encode(st)
			}
			return busStatus(ctx, env, false)
		},
	}
}

func busStatus(ctx context.Context, env *Env, start bool) error {
	cl, err := env.Client(ctx)
	if err != nil {
		return err
	}
	st, err := cl.BusStatus(ctx, start, false)
	if err != nil {
		return err
	}
	out := env.IO.Out
	if !st.Running {
		fmt.Fprintln(out, "the bus is not running; it starts with the first app started with --bus, or `tend bus url`")
		return nil
	}
	fmt.Fprintf(out, "bus: %s (user %s; `tend bus url` prints the URL with the password)\n", st.URL, st.User)
	fmt.Fprintf(out, "clients: %d, subscriptions: %d, messages in: %d, out: %d, slow consumers cut off: %d, dropped for the daemon's slow subscribers: %d\n",
		st.Clients, st.Subscriptions, st.InMsgs, st.OutMsgs, st.SlowConsumers, st.Dropped)
	for _, l := range st.Leafs {
		state := "connected"
		if !l.Connected {
			state = "not connected"
			if l.Error != "" {
				state += ": " + l.Error
			}
		} else if !l.Since.IsZero() {
			state += " since " + l.Since.Format(time.RFC3339)
		}
		fmt.Fprintf(out, "leaf link to %s: %s\n", l.URL, state)
	}
	return nil
}

func newBusURL(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:  "url",
		Usage: "Print the bus's URL with its credentials (starting the bus), for a NATS client outside tend",
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 0, 0); err != nil {
				return err
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			st, err := cl.BusStatus(ctx, true, true)
			if err != nil {
				return err
			}
			fmt.Fprintln(env.IO.Out, st.URL)
			return nil
		},
	}
}

func newSend(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:          "send",
		Usage:         "Send a JSON message to one instance (Node.js: process.on('message'); others: its inbox subject)",
		ArgsUsage:     "<app[:instance]|id> <json>",
		ShellComplete: completeApps(env),
		Flags:         []ucli.Flag{&ucli.IntFlag{Name: "instance", Value: -1, Usage: "the instance (slot); needed when the app has several"}},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 2, 2); err != nil {
				return err
			}
			data := c.Args().Get(1)
			if !json.Valid([]byte(data)) {
				return usagef("the message %q is not JSON; quote a string as '\"text\"'", data)
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			req := api.SendRequest{Target: c.Args().Get(0), Data: json.RawMessage(data)}
			if n := int(c.Int("instance")); n != -1 {
				req.Instance = &n
			}
			res, err := cl.Send(ctx, req)
			if err != nil {
				return err
			}
			via := "its IPC channel"
			if !res.IPC {
				via = fmt.Sprintf("%s (%d subscriber(s))", api.InboxSubject(res.App, res.Instance), res.Subscribers)
			}
			fmt.Fprintf(env.IO.Out, "sent to %s[%d] (pid %d) on %s\n", res.App, res.Instance, res.PID, via)
			return nil
		},
	}
}

// errEnough ends a subscription that has printed --count messages.
var errEnough = errors.New("enough messages")

// errNoAnswer makes trigger exit 1 when an instance did not answer; the
// replies are printed already.
var errNoAnswer = fmt.Errorf("not every instance answered: %w", api.ErrFailed)

func newTrigger(env *Env) *ucli.Command {
	return &ucli.Command{
		Name:          "trigger",
		Usage:         "Ask every instance of an app to run an action, and print each one's answer",
		ArgsUsage:     "<app|id|namespace|all> <action> [params]",
		ShellComplete: completeApps(env),
		Flags: []ucli.Flag{
			&ucli.DurationFlag{Name: "timeout", Value: 5 * time.Second, Usage: "how long to wait for the answers"},
			&ucli.BoolFlag{Name: "json", Usage: "the daemon's answer as it is"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := needArgs(c, 2, 3); err != nil {
				return err
			}
			timeout := c.Duration("timeout")
			if timeout <= 0 {
				return usagef("--timeout must be more than 0")
			}
			cl, err := env.Client(ctx)
			if err != nil {
				return err
			}
			res, err := cl.Trigger(ctx, api.TriggerRequest{
				Target: c.Args().Get(0), Action: c.Args().Get(1), Params: c.Args().Get(2), Timeout: api.Duration(timeout),
			})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if err := json.NewEncoder(env.IO.Out).Encode(res); err != nil {
					return err
				}
			}
			missing := 0
			for _, r := range res {
				for _, rep := range r.Replies {
					if rep.Outcome != api.TriggerOK {
						missing++
					}
					if !c.Bool("json") {
						fmt.Fprintln(env.IO.Out, triggerLine(r.App, rep, timeout, r.Action))
					}
				}
			}
			if missing > 0 {
				return errNoAnswer
			}
			return nil
		},
	}
}

// triggerLine is one instance's answer: "web[0] (pid 12): <reply>", or why
// there is none.
func triggerLine(app string, r api.TriggerReply, timeout time.Duration, action string) string {
	who := fmt.Sprintf("%s[%d]", app, r.Instance)
	if r.PID > 0 {
		who += fmt.Sprintf(" (pid %d)", r.PID)
	}
	switch r.Outcome {
	case api.TriggerOK:
		s := who + ": " + strings.TrimRight(r.Reply, "\n")
		if r.Unsure {
			s += " (this may be the late answer to an earlier trigger that gave up: pm2's protocol does not say)"
		}
		return s
	case api.TriggerTimeout:
		s := fmt.Sprintf("%s: no answer within %s", who, timeout)
		if r.Reply != "" {
			s += " (" + r.Reply + ")"
		}
		return s
	case api.TriggerNoHandler:
		s := fmt.Sprintf("%s: no handler for %q (nothing subscribes to %s)", who, action, api.ActionSubject(app, r.Instance, action))
		if r.Reply != "" {
			s += "; " + r.Reply
		}
		return s
	case api.TriggerFailed:
		return fmt.Sprintf("%s: not asked: %s", who, r.Reply)
	default:
		s := who + ": not running"
		if r.Reply != "" {
			s += " (" + r.Reply + ")"
		}
		return s
	}
}
