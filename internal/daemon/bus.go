package daemon

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"sync"
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

func (d *daemon) BusStatus(start, credentials bool) (api.BusStatus, error) {
	return d.bus.Status(start, credentials)
}

func (d *daemon) BusPublish(req api.BusPublish) error {
	return d.bus.PublishStarted(req.Subject, []byte(req.Data))
}

// subscribeBuffer bounds, in bytes, what waits for a `tend bus sub` that
// does not keep up: beyond it messages are dropped for that subscriber,
// and counted in the next one it gets, never queued without end.
const subscribeBuffer = 16 << 20

// BusSubscribe calls emit with every message on subject until ctx ends or
// emit fails. emit runs in the caller's goroutine.
func (d *daemon) BusSubscribe(ctx context.Context, subject string, ready func() error, emit func(api.BusMessage) error) error {
	var (
		mu      sync.Mutex
		queue   []api.BusMessage
		size    int
		dropped uint64
		wake    = make(chan struct{}, 1)
	)
	sub, err := d.bus.Subscribe(subject, func(m natsd.Msg) {
		bm := busMessage(m)
		mu.Lock()
		if n := len(bm.Data); size+n > subscribeBuffer {
			dropped++
		} else {
			queue, size = append(queue, bm), size+n
		}
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	if err := ready(); err != nil {
		return err
	}
	var upstream uint64 // what the bus dropped before handing it over
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
		mu.Lock()
		batch, lost := queue, dropped
		queue, size, dropped = nil, 0, 0
		mu.Unlock()
		if n := sub.Dropped(); n > upstream {
			lost, upstream = lost+n-upstream, n
		}
		for i, m := range batch {
			if i == 0 {
				m.Dropped = lost
			}
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
