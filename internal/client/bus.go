package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/tend-pm/tend/internal/api"
)

// BusStatus describes the bus; start starts it first; credentials adds
// its password (in URL and Password).
func (c *Client) BusStatus(ctx context.Context, start, credentials bool) (api.BusStatus, error) {
	method := "GET"
	if start {
		method = "POST"
	}
	path := api.PathBus
	if credentials {
		path += "?credentials=true"
	}
	var out api.BusStatus
	err := c.do(ctx, method, path, nil, &out)
	return out, err
}

// BusPublish publishes a message (starting the bus if needed).
func (c *Client) BusPublish(ctx context.Context, req api.BusPublish) error {
	return c.do(ctx, "POST", api.PathBusPublish, req, nil)
}

// BusSubscribe calls ready once the subscription is in place, then fn with
// each message, until ctx is done, the daemon goes, or fn fails.
func (c *Client) BusSubscribe(ctx context.Context, subject string, ready func(), fn func(api.BusMessage) error) error {
	resp, err := c.send(ctx, "GET", api.PathBusSubscribe+"?subject="+url.QueryEscape(subject), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ready != nil {
		ready()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m api.BusMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return fmt.Errorf("read bus stream: %w", err)
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read bus stream: %w", err)
	}
	return fmt.Errorf("the daemon ended the subscription (it stopped or restarted): %w", api.ErrFailed)
}

// Send gives a JSON message to one instance.
func (c *Client) Send(ctx context.Context, req api.SendRequest) (api.SendResult, error) {
	var out api.SendResult
	err := c.do(ctx, "POST", api.PathSend, req, &out)
	return out, err
}

// Trigger asks every instance of an app to run an action.
func (c *Client) Trigger(ctx context.Context, req api.TriggerRequest) ([]api.TriggerResult, error) {
	var out []api.TriggerResult
	err := c.do(ctx, "POST", api.PathTrigger, req, &out)
	return out, err
}
