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
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/socket"
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

type peerKey struct{}

// ConnContext records the peer's uid on each connection; give it to
// http.Server.ConnContext.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	uid, err := socket.PeerUID(c)
	if err != nil {
		uid = -1
	}
	return context.WithValue(ctx, peerKey{}, uid)
}

// New returns the API handler. uid is the only user allowed in (root is
// allowed too, as it can read the socket anyway).
func New(b Backend, uid int, log *slog.Logger) http.Handler {
	s := &server{b: b, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathPing, s.ping)
	mux.HandleFunc("GET "+api.PathApps, s.list)
	mux.HandleFunc("POST "+api.PathApps, s.create)
	mux.HandleFunc("GET "+api.PathApp+"{target}", s.describe)
	mux.HandleFunc("POST "+api.PathAction+"{action}", s.act)
	mux.HandleFunc("GET "+api.PathLogs, s.logs)
	mux.HandleFunc("POST "+api.PathLogReopen, s.reopen)
	mux.HandleFunc("POST "+api.PathSave, s.save)
	mux.HandleFunc("POST "+api.PathResurrect, s.resurrect)
	mux.HandleFunc("POST "+api.PathKill, s.kill)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, fmt.Errorf("no such endpoint: %s %s: %w", r.Method, r.URL.Path, api.ErrNotFound))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(api.HeaderVersion, api.Version())
		if peer, _ := r.Context().Value(peerKey{}).(int); peer != uid && peer != 0 {
			writeStatus(w, http.StatusForbidden, api.CodeInvalid, fmt.Sprintf("uid %d may not use this daemon, which belongs to uid %d", peer, uid))
			return
		}
		if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
			writeStatus(w, http.StatusForbidden, api.CodeInvalid, "requests from browsers are refused on the control socket")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		mux.ServeHTTP(w, r)
	})
}

type server struct {
	b   Backend
	log *slog.Logger
}

func (s *server) ping(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.b.Ping()) }

func (s *server) list(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.b.List()) }

func (s *server) describe(w http.ResponseWriter, r *http.Request) {
	apps, err := s.b.Describe(r.PathValue("target"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, apps)
}

func (s *server) create(w http.ResponseWriter, r *http.Request) {
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

func (s *server) act(w http.ResponseWriter, r *http.Request) {
	var req api.ActionRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	apps, err := s.b.Act(r.Context(), r.PathValue("action"), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, api.ActionResult{Apps: apps})
}

func (s *server) reopen(w http.ResponseWriter, r *http.Request) {
	if err := s.b.ReopenLogs(); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (s *server) save(w http.ResponseWriter, r *http.Request) {
	res, err := s.b.Save(r.URL.Query().Get("force") == "true")
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, res)
}

func (s *server) resurrect(w http.ResponseWriter, r *http.Request) {
	apps, err := s.b.Resurrect(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, api.ActionResult{Apps: apps})
}

func (s *server) kill(w http.ResponseWriter, r *http.Request) {
	s.b.Kill(r.URL.Query().Get("keep_state") == "true")
	writeJSON(w, struct{}{})
}

func (s *server) logs(w http.ResponseWriter, r *http.Request) {
	q, err := parseLogQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	started := false
	// Past lines are flushed in one go; live lines as they come.
	err = s.b.Logs(r.Context(), q, func(l api.LogLine) error {
		started = true
		if err := enc.Encode(l); err != nil {
			return err
		}
		if q.Follow {
			return rc.Flush()
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

func parseLogQuery(r *http.Request) (LogQuery, error) {
	v := r.URL.Query()
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
func decode(r *http.Request, v any) error {
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

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	// An error here means the client went away: there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}

// writeError is the one place errors become responses.
func writeError(w http.ResponseWriter, err error) {
	code, status := api.Classify(err)
	writeStatus(w, status, code, err.Error())
}

func writeStatus(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.ErrorDetail{Code: code, Message: msg}})
}

// Serve runs the API on ln until ctx is done, then closes it, giving
// running requests (such as a kill in progress) a moment to finish and
// ending log streams.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ConnContext:       ConnContext,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
