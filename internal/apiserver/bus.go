package apiserver

import (
	"encoding/json"
	"fmt"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/uhttp"
)

func (s *server) busStatus(w *uhttp.Response, start, credentials bool) {
	st, err := s.b.BusStatus(start, credentials)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, st)
}

func (s *server) busPublish(w *uhttp.Response, r *uhttp.Request) {
	var req api.BusPublish
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.b.BusPublish(req); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

// busSubscribe streams the messages of a subject as NDJSON. The headers go
// out as soon as the subscription is in place, so a client knows from
// them that nothing published afterwards is missed.
func (s *server) busSubscribe(w *uhttp.Response, r *uhttp.Request) {
	subject := r.Query.Get("subject")
	if subject == "" {
		writeError(w, fmt.Errorf("give a subject (?subject=): %w", api.ErrInvalid))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	started := false
	err := s.b.BusSubscribe(r.Context(), subject, func() error {
		started = true
		return w.Flush()
	}, func(m api.BusMessage) error {
		if err := enc.Encode(m); err != nil {
			return err
		}
		return w.Flush()
	})
	if err != nil && !started {
		writeError(w, err)
	}
}

func (s *server) send(w *uhttp.Response, r *uhttp.Request) {
	var req api.SendRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.b.Send(req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, res)
}

func (s *server) trigger(w *uhttp.Response, r *uhttp.Request) {
	var req api.TriggerRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	res, err := s.b.Trigger(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, res)
}
