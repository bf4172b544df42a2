package logs

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
)

// Registry hands out one File per path. Several writers often share a
// path: the instances of an app with merge_logs, stdout and stderr in a
// combined log_file, two apps pointed at one file. Two Files on one path
// would each rotate it and each count its size; one shared File keeps
// rotation exact and writes whole.
type Registry struct {
	mu    sync.Mutex
	files map[string]*regEntry
}

type regEntry struct {
	file *File
	refs int
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry {
	return &Registry{files: map[string]*regEntry{}}
}

// Acquire returns the File for path, opening it on first use with opts;
// later callers share it and their opts are ignored (the first spec to
// open a file sets its rotation). Each Acquire needs one Release. The
// DevNull path gives a File that drops everything.
func (r *Registry) Acquire(path string, opts FileOptions) (*File, error) {
	if path == "" {
		return nil, errors.New("acquire log: empty path")
	}
	if path != DevNull {
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("acquire log %q: %w", path, err)
		}
		path = abs
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.files[path]; ok {
		e.refs++
		return e.file, nil
	}
	f, err := OpenFile(path, opts)
	if err != nil {
		return nil, err
	}
	r.files[path] = &regEntry{file: f, refs: 1}
	return f, nil
}

// Release gives back a File from Acquire, closing it (and waiting for its
// compression) when the last user releases it. A nil f is ignored.
func (r *Registry) Release(f *File) error {
	if f == nil {
		return nil
	}
	r.mu.Lock()
	e, ok := r.files[f.path]
	if !ok || e.file != f {
		r.mu.Unlock()
		return fmt.Errorf("release log %q: not acquired", f.path)
	}
	e.refs--
	if e.refs > 0 {
		r.mu.Unlock()
		return nil
	}
	delete(r.files, f.path)
	r.mu.Unlock()
	// Close outside the lock: it waits for compression, which must not
	// hold up other apps acquiring their files.
	return f.Close()
}

// ReopenAll reopens every open File by path, after an external logrotate
// moved them (SIGUSR2 / `tend reloadLogs`).
func (r *Registry) ReopenAll() error {
	var errs []error
	for _, f := range r.snapshot() {
		if err := f.Reopen(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// snapshot returns the open Files, in no particular order.
func (r *Registry) snapshot() []*File {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*File, 0, len(r.files))
	for _, e := range r.files {
		out = append(out, e.file)
	}
	return out
}
