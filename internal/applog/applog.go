// Package applog connects apps to the log pipeline: it gives each app its
// files (with pm2's names) and streams, and answers `tend logs` with the
// last lines of those files followed by live lines.
package applog

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"sync"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/clock"
	"github.com/tend-pm/tend/internal/logs"
	"github.com/tend-pm/tend/internal/supervisor"
)

// Router owns the log files of every app and the hub of followers.
type Router struct {
	dir string
	clk clock.Clock
	log *slog.Logger
	reg *logs.Registry
	hub *logs.Hub
	// pipes bounds the streams that may enlarge their pipes at once.
	pipes *logs.PipeBudget
}

// bigPipes is how many streams may hold a 1 MiB pipe at once: 16 MiB of
// the 64 MiB the kernel lets one user's pipes hold before it shrinks all
// of them.
const bigPipes = 16

var _ supervisor.LogRouter = (*Router)(nil)

// NewRouter returns a Router writing default files into dir.
func NewRouter(dir string, clk clock.Clock, log *slog.Logger) *Router {
	return &Router{dir: dir, clk: clk, log: log, reg: logs.NewRegistry(), hub: logs.NewHub(), pipes: logs.NewPipeBudget(bigPipes)}
}

// Dir is the directory of default log files.
func (r *Router) Dir() string { return r.dir }

// ReopenAll reopens every file (after an external logrotate moved them).
func (r *Router) ReopenAll() error { return r.reg.ReopenAll() }

// slotFiles are the files of one slot.
type slotFiles struct {
	out, err, combined *logs.File
}

// appLogs is one app's destination.
type appLogs struct {
	r      *Router
	spec   api.AppSpec
	format logs.Format
	mu     sync.Mutex
	slots  []slotFiles // the files of each slot, held open until Close
}

// Open acquires the files of every slot of spec.
func (r *Router) Open(spec *api.AppSpec) (supervisor.AppLogs, error) {
	format, err := logs.FormatFor(spec)
	if err != nil {
		return nil, err
	}
	a := &appLogs{r: r, spec: *spec, format: format}
	a.mu.Lock()
	err = a.holdLocked(spec.Instances)
	a.mu.Unlock()
	if err != nil {
		_ = a.Close()
		return nil, err
	}
	return a, nil
}

// holdLocked acquires the files of slots up to n (an app scaled up has
// slots its Open did not know).
func (a *appLogs) holdLocked(n int) error {
	opts := logs.FileOptionsFor(&a.spec, a.r.clk)
	for slot := len(a.slots); slot < n; slot++ {
		outP, errP, combP := logs.Paths(a.r.dir, &a.spec, slot)
		var sf slotFiles
		var err error
		if sf.out, err = a.r.reg.Acquire(outP, opts); err == nil {
			sf.err, err = a.r.reg.Acquire(errP, opts)
		}
		if err == nil && combP != "" {
			sf.combined, err = a.r.reg.Acquire(combP, opts)
		}
		a.slots = append(a.slots, sf)
		if err != nil {
			return err
		}
	}
	return nil
}

func appendPath(list []string, p string) []string {
	if p == "" || p == logs.DevNull || slices.Contains(list, p) {
		return list
	}
	return append(list, p)
}

// Copy reads one pipe of the instance in slot until EOF. It holds its own
// references to its files, so a file is closed only after the last copy
// writing to it has finished, even if the app was deleted or re-specified
// in the meantime.
func (a *appLogs) Copy(slot int, stream string, pipe *os.File) {
	defer pipe.Close()
	opts := logs.FileOptionsFor(&a.spec, a.r.clk)
	outP, errP, combP := logs.Paths(a.r.dir, &a.spec, slot)
	path := outP
	if stream == "err" {
		path = errP
	}
	logErr := func(err error) {
		a.r.log.Error("write log", "app", a.spec.Name, "instance", slot, "stream", stream, "err", err)
	}
	var files []*logs.File
	for _, p := range []string{path, combP} {
		if p == "" {
			continue
		}
		f, err := a.r.reg.Acquire(p, opts)
		if err != nil {
			logErr(err)
			continue
		}
		defer func() {
			if err := a.r.reg.Release(f); err != nil {
				logErr(err)
			}
		}()
		files = append(files, f)
	}
	s := &logs.Stream{
		App: a.spec.Name, Slot: slot, Name: stream, Format: a.format,
		Files: files, Hub: a.r.hub, Clock: a.r.clk, OnError: logErr, Pipes: a.r.pipes,
	}
	if err := s.Copy(context.Background(), pipe); err != nil {
		logErr(err)
	}
}

// Paths names the files of the app's slots 0 to instances-1.
func (a *appLogs) Paths(instances int) api.LogPaths {
	var p api.LogPaths
	for slot := range max(instances, 1) {
		outP, errP, combP := logs.Paths(a.r.dir, &a.spec, slot)
		p.Out = appendPath(p.Out, outP)
		p.Err = appendPath(p.Err, errP)
		p.Combined = appendPath(p.Combined, combP)
	}
	return p
}

// Flush empties the live files of the app's slots 0 to instances-1.
func (a *appLogs) Flush(instances int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	if err := a.holdLocked(instances); err != nil {
		errs = append(errs, err)
	}
	for _, sf := range a.slots {
		for _, f := range []*logs.File{sf.out, sf.err, sf.combined} {
			if f != nil {
				errs = append(errs, f.Truncate())
			}
		}
	}
	return errors.Join(errs...)
}

// Close releases the app's files. Copy loops still running keep writing
// into the Files they hold until their pipes close; the Registry closes a
// file once the last holder lets go.
func (a *appLogs) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, sf := range a.slots {
		for _, f := range []*logs.File{sf.out, sf.err, sf.combined} {
			if f != nil {
				errs = append(errs, a.r.reg.Release(f))
			}
		}
	}
	a.slots = nil
	return errors.Join(errs...)
}

// Query selects what Stream sends.
type Query struct {
	Instance int    // -1: all
	Stream   string // "out", "err", "": both
	Lines    int    // past lines per file
	Follow   bool
}

// Stream sends the last q.Lines lines of each selected file of apps, then, with q.Follow,
// live lines until ctx ends. The follow subscription starts before the
// files are read, so no line falls between the two.
func (r *Router) Stream(ctx context.Context, apps []api.AppDetail, q Query, emit func(api.LogLine) error) error {
	var sub *logs.Subscription
	if q.Follow {
		f := logs.Filter{}
		for _, a := range apps {
			f.Apps = append(f.Apps, a.Name)
		}
		if q.Instance >= 0 {
			f.Slots = []int{q.Instance}
		}
		if q.Stream != "" {
			f.Streams = []string{q.Stream, logs.StreamTend}
		}
		sub = r.hub.Subscribe(f, 0)
		defer sub.Close()
	}
	for i := range apps {
		if err := r.history(&apps[i].Spec, q, emit); err != nil {
			return err
		}
	}
	if sub == nil {
		return nil
	}
	for {
		lines, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		for _, l := range lines {
			if err := emit(l); err != nil {
				return err
			}
		}
	}
}

// history sends the last lines of the files of spec that q selects. With
// merged files the instance that wrote a line is unknown (-1).
func (r *Router) history(spec *api.AppSpec, q Query, emit func(api.LogLine) error) error {
	slots := []int{-1}
	if !spec.MergeLogs {
		slots = nil
		for s := 0; s < spec.Instances; s++ {
			if q.Instance < 0 || q.Instance == s {
				slots = append(slots, s)
			}
		}
	}
	for _, stream := range []string{"out", "err"} {
		if q.Stream != "" && q.Stream != stream {
			continue
		}
		for _, slot := range slots {
			outP, errP, _ := logs.Paths(r.dir, spec, max(slot, 0))
			path := outP
			if stream == "err" {
				path = errP
			}
			if path == logs.DevNull {
				continue
			}
			lines, err := logs.Tail(path, q.Lines)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			for _, l := range lines {
				if err := emit(api.LogLine{App: spec.Name, Instance: slot, Stream: stream, Line: l}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
