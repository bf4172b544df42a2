// Package client is the typed client of the daemon's /v1 API over its unix
// socket. The CLI uses it; so will the terminal monitor.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync/atomic"
	"syscall"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/socket"
	"github.com/tend-pm/tend/internal/uhttp"
)

// ErrNoDaemon means nothing answers on the socket: no daemon is running.
var ErrNoDaemon = errors.New("no daemon is running")

// Client talks to one daemon. It may be used from several goroutines at
// once; set its fields before the first request.
type Client struct {
	socketPath string
	// OnVersion, if set, is called with the daemon's version when it
	// differs from this program's, once per Client.
	OnVersion func(daemonVersion string)
	warned    atomic.Bool
	// StartDaemon, if set, is called when no daemon answers, to start one; the
	// request is then sent again, once. A request that could not be
	// delivered was not acted on, so sending it again is safe. This saves
	// every command a round trip to check the daemon first.
	StartDaemon func(context.Context) error
	started     atomic.Bool
}

// New returns a Client for the socket at socketPath.
func New(socketPath string) *Client {
	return &Client{socketPath: socketPath}
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.send(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("read daemon's answer to %s: %w", path, err)
	}
	return nil
}

// send performs the request and turns an error envelope into an error.
func (c *Client) send(ctx context.Context, method, path string, in any) (*uhttp.ClientResponse, error) {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return nil, err
		}
	}
	resp, err := c.sendOnce(ctx, method, path, body)
	if err != nil && c.StartDaemon != nil && errors.Is(err, ErrNoDaemon) && c.started.CompareAndSwap(false, true) {
		if err := c.StartDaemon(ctx); err != nil {
			return nil, err
		}
		resp, err = c.sendOnce(ctx, method, path, body)
	}
	if err != nil {
		return nil, err
	}
	if v := resp.Header.Get(api.HeaderVersion); v != "" && v != api.Version() && c.OnVersion != nil && c.warned.CompareAndSwap(false, true) {
		c.OnVersion(v)
	}
	if resp.Status >= 300 {
		defer resp.Body.Close()
		var eb api.ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &eb) != nil || eb.Error.Message == "" {
			return nil, fmt.Errorf("daemon answered %d to %s %s: %s", resp.Status, method, path, bytes.TrimSpace(b))
		}
		return nil, &api.Error{Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return resp, nil
}

// sendOnce sends one request on a new connection: a CLI makes one request,
// and reading the answer in the calling goroutine is the cheapest way.
func (c *Client) sendOnce(ctx context.Context, method, path string, body []byte) (*uhttp.ClientResponse, error) {
	conn, err := socket.Dial(ctx, c.socketPath)
	if err != nil {
		if isNoDaemon(err) {
			return nil, fmt.Errorf("%s: %w", c.socketPath, ErrNoDaemon)
		}
		return nil, fmt.Errorf("connect to the daemon: %w", err)
	}
	h := uhttp.Header{}
	h.Set(api.HeaderVersion, api.Version())
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	resp, err := uhttp.Do(ctx, conn, method, path, h, body)
	if err != nil {
		if method == "GET" && isDropped(err) {
			return nil, fmt.Errorf("%s: %w: %w", c.socketPath, ErrNoDaemon, err)
		}
		return nil, fmt.Errorf("daemon request %s %s: %w", method, path, err)
	}
	return resp, nil
}

// isDropped reports whether err is a connection the daemon dropped, as a
// daemon on its way out (after `tend kill`, or killed) may do: as good as
// no daemon for a request that changes nothing.
func isDropped(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

func isNoDaemon(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

// Ping asks the daemon who it is.
func (c *Client) Ping(ctx context.Context) (api.Ping, error) {
	var p api.Ping
	err := c.do(ctx, "GET", api.PathPing, nil, &p)
	return p, err
}

// List returns every app.
func (c *Client) List(ctx context.Context) ([]api.AppInfo, error) {
	var apps []api.AppInfo
	err := c.do(ctx, "GET", api.PathApps, nil, &apps)
	return apps, err
}

// Describe returns the apps target names, with their specs.
func (c *Client) Describe(ctx context.Context, target string) ([]api.AppDetail, error) {
	var apps []api.AppDetail
	err := c.do(ctx, "GET", api.PathApp+url.PathEscape(target), nil, &apps)
	return apps, err
}

// Start creates apps from specs and starts them.
func (c *Client) Start(ctx context.Context, req api.StartRequest) (api.ActionResult, error) {
	var res api.ActionResult
	err := c.do(ctx, "POST", api.PathApps, req, &res)
	return res, err
}

// Act runs one of the api.Action* actions on the apps req names.
func (c *Client) Act(ctx context.Context, action string, req api.ActionRequest) (api.ActionResult, error) {
	var res api.ActionResult
	err := c.do(ctx, "POST", api.PathAction+action, req, &res)
	return res, err
}

// Save writes the process list for resurrect.
func (c *Client) Save(ctx context.Context, force bool) (api.SaveResult, error) {
	var res api.SaveResult
	err := c.do(ctx, "POST", api.PathSave+"?force="+strconv.FormatBool(force), nil, &res)
	return res, err
}

// Resurrect starts the saved apps that are not running.
func (c *Client) Resurrect(ctx context.Context) (api.ActionResult, error) {
	var res api.ActionResult
	err := c.do(ctx, "POST", api.PathResurrect, nil, &res)
	return res, err
}

// ReopenLogs makes the daemon reopen every log file.
func (c *Client) ReopenLogs(ctx context.Context) error {
	return c.do(ctx, "POST", api.PathLogReopen, nil, nil)
}

// Kill stops every app and the daemon. With keepState the daemon keeps its
// app list, so the next daemon starts them again (used by `tend update`).
func (c *Client) Kill(ctx context.Context, keepState bool) error {
	return c.do(ctx, "POST", api.PathKill+"?keep_state="+strconv.FormatBool(keepState), nil, nil)
}

// LogQuery selects lines for Logs.
type LogQuery struct {
	Target   string // app name, id or "all"
	Instance int    // -1 for every instance
	Stream   string // "out", "err" or "" for both
	Lines    int    // how many past lines per file
	Follow   bool
}

// Logs calls fn for each line the daemon sends, until the stream ends, ctx
// is done, or fn returns an error.
func (c *Client) Logs(ctx context.Context, q LogQuery, fn func(api.LogLine) error) error {
	v := url.Values{}
	v.Set("target", q.Target)
	v.Set("instance", strconv.Itoa(q.Instance))
	v.Set("stream", q.Stream)
	v.Set("lines", strconv.Itoa(q.Lines))
	v.Set("follow", strconv.FormatBool(q.Follow))
	resp, err := c.send(ctx, "GET", api.PathLogs+"?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var l api.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("read log stream: %w", err)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read log stream: %w", err)
	}
	return nil
}

// Monitor returns the apps with their latest figures and the host's; with
// history set, also the last points samples of each instance of that app.
func (c *Client) Monitor(ctx context.Context, history string, points int) (api.Monitor, error) {
	v := url.Values{}
	if history != "" {
		v.Set("history", history)
		v.Set("points", strconv.Itoa(points))
	}
	path := api.PathMonitor
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var m api.Monitor
	err := c.do(ctx, "GET", path, nil, &m)
	return m, err
}

// Metrics returns the daemon's figures in Prometheus' text format.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	resp, err := c.send(ctx, "GET", api.PathMetrics, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
