package daemon

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/bus"
	"github.com/tend-pm/tend/internal/natsd"
)

// busWanted reports whether the bus must run from the start: links to
// other machines are configured, or this TEND_HOME has used the bus
// before (its File exists), so clients that were connected to the last
// daemon — instances, a `nats` CLI given `tend bus url` — find it again at
// the same port with the same secret and reconnect on their own.
func busWanted(cfg Config, home string) bool {
	if len(cfg.Bus.Leafnodes) > 0 {
		return true
	}
	_, err := os.Stat(filepath.Join(home, bus.File))
	return err == nil
}

func (d *daemon) BusStatus(start bool) (api.BusStatus, error) { return d.bus.Status(start) }

func (d *daemon) BusPublish(req api.BusPublish) error {
	return d.bus.PublishStarted(req.Subject, []byte(req.Data))
}

// subscribeBuffer bounds what waits for a slow `tend bus sub`: beyond it
// messages are dropped for that subscriber, never queued without end.
const subscribeBuffer = 4096

// BusSubscribe calls emit with every message on subject until ctx ends or
// emit fails. emit runs in the caller's goroutine.
func (d *daemon) BusSubscribe(ctx context.Context, subject string, ready func() error, emit func(api.BusMessage) error) error {
	ch := make(chan api.BusMessage, subscribeBuffer)
	unsubscribe, err := d.bus.Subscribe(subject, func(m natsd.Msg) {
		select {
		case ch <- busMessage(m):
		default:
		}
	})
	if err != nil {
		return err
	}
	defer unsubscribe()
	if err := ready(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-ch:
			if err := emit(m); err != nil {
				return err
			}
		}
	}
}

func busMessage(m natsd.Msg) api.BusMessage {
	out := api.BusMessage{Subject: m.Subject, Reply: m.Reply, Time: time.Now()}
	if utf8.Valid(m.Data) {
		out.Data = string(m.Data)
	} else {
		out.Data, out.Base64 = base64.StdEncoding.EncodeToString(m.Data), true
	}
	return out
}

func (d *daemon) Send(req api.SendRequest) (api.SendResult, error) { return d.sup.Send(req) }

func (d *daemon) Trigger(ctx context.Context, req api.TriggerRequest) ([]api.TriggerResult, error) {
	return d.sup.Trigger(ctx, req)
}
