// Package apiserver serves the daemon's /v1 control API: HTTP and JSON
// over the unix socket. Handlers return errors; one function turns them
// into the error envelope with the status of their kind.
//
// Two checks come before any handler: the peer's uid must be the daemon's
// (SO_PEERCRED), and a request that carries a browser's Origin or Referer
// header is refused, so a web page cannot reach the socket through a
// local proxy and drive the daemon.
package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/promtext"
	"github.com/tend-pm/tend/internal/socket"
	"github.com/tend-pm/tend/internal/uhttp"
)

// Backend is what the API exposes: the daemon implements it.
type Backend interface {
	Ping() api.Ping
	List() []api.AppInfo
	Describe(target string) ([]api.AppDetail, error)
	Create(ctx context.Context, specs []api.AppSpec) ([]api.AppInfo, error)
	Act(ctx context.Context, action string, req api.ActionRequest) ([]api.AppInfo, error)
	Save(force bool) (api.SaveResult, error)
	Resurrect(ctx context.Context) ([]api.AppInfo, error)
	ReopenLogs() error
	// Kill stops every app (deleting them unless keepState) and returns;
	// the daemon exits once the answer is sent.
	Kill(keepState bool)
	// Logs sends past and, if q.Follow, live lines to emit until ctx ends.
	Logs(ctx context.Context, q LogQuery, emit func(api.LogLine) error) error
	// Notify takes an sd_notify message (READY=1...) from process pid.
	Notify(pid int, msg string) error

	// BusStatus describes the pub/sub bus, starting it first if start,
	// with its password only if credentials.
	BusStatus(start, credentials bool) (api.BusStatus, error)
	BusPublish(req api.BusPublish) error
	// BusSubscribe subscribes to subject, calls ready once the
	// subscription is in place, then emit with each message until ctx
	// ends or emit fails.
	BusSubscribe(ctx context.Context, subject string, ready func() error, emit func(api.BusMessage) error) error
	Send(req api.SendRequest) (api.SendResult, error)
	Trigger(ctx context.Context, req api.TriggerRequest) ([]api.TriggerResult, error)
	// Monitor returns the figures `tend monit` shows, with the history of
	// one app if history names one.
	Monitor(history string, points int) (api.Monitor, error)
	// Metrics returns the figures in Prometheus' text format.
	Metrics() []byte
}

// LogQuery is the parsed query of GET /v1/logs.
type LogQuery struct {
	Target   string
	Instance int // -1: all
	Stream   string
	Lines    int
	Follow   bool
}

// maxBody bounds request bodies; a spec list is a few kilobytes.
const maxBody = 16 << 20

// New returns the API handler. uid is the only user allowed in (root is
// allowed too, as it can read the socket anyway).
func New(b Backend, uid int, log *slog.Logger) uhttp.Handler {
	s := &server{b: b, log: log}
	return func(w *uhttp.Response, r *uhttp.Request) {
		w.Header().Set(api.HeaderVersion, api.Version())
		if peer, err := socket.PeerUID(r.Conn); err != nil || (peer != uid && peer != 0) {
			writeStatus(w, 403, api.CodeInvalid, fmt.Sprintf("uid %d may not use this daemon, which belongs to uid %d", peer, uid))
			return
		}
		if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
			writeStatus(w, 403, api.CodeInvalid, "requests from browsers are refused on the control socket")
			return
		}
		s.route(w, r)
	}
}

// route dispatches by method and path.
func (s *server) route(w *uhttp.Response, r *uhttp.Request) {
	p, get, post := r.Path, r.Method == "GET", r.Method == "POST"
	switch {
	case p == api.PathPing && get:
		writeJSON(w, s.b.Ping())
	case p == api.PathApps && get:
		writeJSON(w, s.b.List())
	case p == api.PathApps && post:
		s.create(w, r)
	case strings.HasPrefix(p, api.PathApp) && len(p) > len(api.PathApp) && get:
		s.describe(w, p[len(api.PathApp):])
	case strings.HasPrefix(p, api.PathAction) && len(p) > len(api.PathAction) && post:
		s.act(w, r, p[len(api.PathAction):])
	case p == api.PathLogs && get:
		s.logs(w, r)
	case p == api.PathLogReopen && post:
		s.reopen(w)
	case p == api.PathSave && post:
		s.save(w, r)
	case p == api.PathResurrect && post:
		s.resurrect(w, r)
	case p == api.PathNotify && post:
		s.notify(w, r)
	case p == api.PathBus && (get || post):
		s.busStatus(w, post, r.Query.Get("credentials") == "true")
	case p == api.PathBusPublish && post:
		s.busPublish(w, r)
	case p == api.PathBusSubscribe && get:
		s.busSubscribe(w, r)
	case p == api.PathSend && post:
		s.send(w, r)
	case p == api.PathTrigger && post:
		s.trigger(w, r)
	case p == api.PathMonitor && get:
		s.monitor(w, r)
	case p == api.PathMetrics && get:
		w.Header().Set("Content-Type", promtext.ContentType)
		_, _ = w.Write(s.b.Metrics())
	case p == api.PathMetrics:
		// A scraper or proxy that sends another method learns which one
		// to use, rather than that the endpoint does not exist.
		w.Header().Set("Allow", "GET")
		writeStatus(w, 405, api.CodeInvalid, fmt.Sprintf("%s %s: only GET is allowed", r.Method, p))
	case p == api.PathKill && post:
		s.b.Kill(r.Query.Get("keep_state") == "true")
		writeJSON(w, struct{}{})
	default:
		writeError(w, fmt.Errorf("no such endpoint: %s %s: %w", r.Method, r.Path, api.ErrNotFound))
	}
}

type server struct {
	b   Backend
	log *slog.Logger
}

func (s *server) describe(w *uhttp.Response, target string) {
	apps, err := s.b.Describe(target)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, apps)
}

func (s *server) create(w *uhttp.Response, r *uhttp.Request) {
	var req api.StartRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	apps, err := s.b.Create(r.Context(), req.Apps)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, api.ActionResult{Apps: apps})
}

func (s *server) act(w *uhttp.Response, r *uhttp.Request, action string) {
	var req api.ActionRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	apps, err := s.b.Act(r.Context(), action, req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, api.ActionResult{Apps: apps})
}

// maxNotify bounds the body of POST /v1/notify.
const maxNotify = 4096

// notify is NOTIFY_SOCKET for programs that cannot send a unix datagram
// (Node.js): the body is an sd_notify message, the sender is the peer
// process the kernel names.
func (s *server) notify(w *uhttp.Response, r *uhttp.Request) {
	_, pid, err := socket.PeerCred(r.Conn)
	if err != nil || pid == 0 {
		writeError(w, fmt.Errorf("cannot tell which process sent this: %w", api.ErrInvalid))
		return
	}
	// One byte more than allowed tells a message that is too long from
	// one that is just long enough: cut, its last line could still
	// parse, as another value (METRIC=x 1234.5 cut to METRIC=x 12).
	body, err := io.ReadAll(io.LimitReader(r.Body, maxNotify+1))
	if err != nil {
		writeError(w, fmt.Errorf("read body: %w", api.ErrInvalid))
		return
	}
	if len(body) > maxNotify {
		writeStatus(w, 413, api.CodeInvalid, fmt.Sprintf("a notify message is at most %d bytes; send the lines in several", maxNotify))
		return
	}
	if err := s.b.Notify(pid, string(body)); err != nil {
		writeError(w, err)
		return
	}
	// No body: a shell's `curl` in the app would print it into the app's log.
	w.WriteHeader(204)
}

func (s *server) monitor(w *uhttp.Response, r *uhttp.Request) {
	points := 0
	if v := r.Query.Get("points"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, fmt.Errorf("points must be a number ≥ 0, got %q: %w", v, api.ErrInvalid))
			return
		}
		points = n
	}
	m, err := s.b.Monitor(r.Query.Get("history"), points)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, m)
}

func (s *server) reopen(w *uhttp.Response) {
	if err := s.b.ReopenLogs(); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (s *server) save(w *uhttp.Response, r *uhttp.Request) {
	res, err := s.b.Save(r.Query.Get("force") == "true")
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, res)
}

func (s *server) resurrect(w *uhttp.Response, r *uhttp.Request) {
	apps, err := s.b.Resurrect(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, api.ActionResult{Apps: apps})
}

func (s *server) logs(w *uhttp.Response, r *uhttp.Request) {
	q, err := parseLogQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	started := false
	// Past lines are flushed in one go; live lines as they come.
	err = s.b.Logs(r.Context(), q, func(l api.LogLine) error {
		started = true
		if err := enc.Encode(l); err != nil {
			return err
		}
		if q.Follow {
			return w.Flush()
		}
		return nil
	})
	if err != nil && !started {
		writeError(w, err)
		return
	}
	if err != nil && r.Context().Err() == nil {
		s.log.Debug("log stream ended", "err", err)
	}
}

func parseLogQuery(r *uhttp.Request) (LogQuery, error) {
	v := r.Query
	q := LogQuery{Target: v.Get("target"), Stream: v.Get("stream"), Instance: -1, Lines: 15}
	if q.Target == "" {
		q.Target = "all"
	}
	switch q.Stream {
	case "", "out", "err":
	default:
		return q, fmt.Errorf("stream must be \"out\" or \"err\", got %q: %w", q.Stream, api.ErrInvalid)
	}
	var err error
	if s := v.Get("instance"); s != "" {
		if q.Instance, err = strconv.Atoi(s); err != nil || q.Instance < -1 {
			return q, fmt.Errorf("instance must be a slot number, got %q: %w", s, api.ErrInvalid)
		}
	}
	if s := v.Get("lines"); s != "" {
		if q.Lines, err = strconv.Atoi(s); err != nil || q.Lines < 0 {
			return q, fmt.Errorf("lines must be a number ≥ 0, got %q: %w", s, api.ErrInvalid)
		}
	}
	q.Follow = v.Get("follow") == "true"
	return q, nil
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// errors, so a malformed request changes nothing.
func decode(r *uhttp.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed request body: %w: %w", err, api.ErrInvalid)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("malformed request body: data after the JSON value: %w", api.ErrInvalid)
	}
	return nil
}

func writeJSON(w *uhttp.Response, v any) {
	w.Header().Set("Content-Type", "application/json")
	// An error here means the client went away: there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}

// writeError is the one place errors become responses.
func writeError(w *uhttp.Response, err error) {
	code, status := api.Classify(err)
	writeStatus(w, status, code, api.Text(err))
}

func writeStatus(w *uhttp.Response, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
}

// Serve runs the API on ln until ctx is done, then closes it, ending log
// streams and giving running requests (such as a kill) a moment to finish.
func Serve(ctx context.Context, ln uhttp.Listener, h uhttp.Handler, log *slog.Logger) error {
	srv := &uhttp.Server{
		Handler:       h,
		MaxBody:       maxBody,
		HeaderTimeout: 10 * time.Second,
		OnError:       func(err error) { log.Debug("bad request", "err", err) },
	}
	return srv.Serve(ctx, ln)
}
