// Package state stores the daemon's desired state — every app, its spec,
// whether it should run — and the pids of the processes running for it,
// so a daemon that is killed can be replaced by one that finds every app
// as it was and no process twice. The same format holds the list that
// `tend save` writes for `tend resurrect`.
//
// Files are written atomically (temporary file, fsync, rename, fsync of the
// directory) with mode 0600, since specs hold environments and so secrets:
// a crash leaves the old file or the new one, never half of one.
package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tend-pm/tend/internal/api"
)

// formatVersion is written in every file; a file from a newer tend is
// refused rather than misread.
const formatVersion = 1

// File is the content of a state or dump file.
type File struct {
	Version int   `json:"version"`
	NextID  int   `json:"next_id"`
	Apps    []App `json:"apps"`
}

// App is one app as stored.
type App struct {
	ID      int         `json:"id"`
	Created time.Time   `json:"created"`
	Running bool        `json:"running"` // desired: should run, or was stopped by the user
	Spec    api.AppSpec `json:"spec"`
	// Instances are the app's slots when the file was written: the pid of
	// a running process, the restart count, which a new daemon carries on,
	// and whether the slot had given up. (It finds
	// the processes themselves by their environment, not by these pids,
	// which the kernel may have given to others since.)
	Instances []Instance `json:"instances,omitempty"`
}

// Instance is a process as recorded in the state.
type Instance struct {
	Slot int `json:"slot"`
	PID  int `json:"pid"`
	// StartTicks tells the recorded process apart from a later one that
	// got the same pid.
	StartTicks uint64 `json:"start_ticks"`
	Restarts   int    `json:"restarts"`
	// Errored is why the instance gave up (too many unstable restarts, a
	// program that cannot start), if it did: a new daemon shows it errored
	// rather than starting it again, as `tend start` or `restart` would.
	Errored string `json:"errored,omitempty"`
}

// Load reads the file at path. A missing file is an empty state; a file
// that cannot be read or parsed is an error that names it, and nothing is
// changed on disk.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &File{Version: formatVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(b, se.Offset)
			return nil, fmt.Errorf("%s:%d:%d: malformed state: %w", path, line, col, err)
		}
		return nil, fmt.Errorf("%s: malformed state: %w", path, err)
	}
	if f.Version > formatVersion {
		return nil, fmt.Errorf("%s: written by a newer tend (format %d, this one reads %d)", path, f.Version, formatVersion)
	}
	for i, a := range f.Apps {
		if err := a.Spec.Validate(); err != nil {
			return nil, fmt.Errorf("%s: app %d: %w", path, i, err)
		}
		for _, in := range a.Instances {
			if in.Slot < 0 || in.Slot >= a.Spec.Instances || in.PID < 0 || in.Restarts < 0 {
				return nil, fmt.Errorf("%s: app %q: instance %+v is out of range", path, a.Spec.Name, in)
			}
		}
	}
	return &f, nil
}

func position(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// WriteFile writes data to path atomically with mode 0600.
func WriteFile(path string, data []byte) error {
	if err := writeFile(path, data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Encode renders f as the bytes Store writes.
func Encode(f *File) ([]byte, error) {
	f.Version = formatVersion
	return json.MarshalIndent(f, "", "  ")
}

// Store writes successive versions of one file, dropping a version when a
// newer one has already been written (writers race from several
// goroutines; the newest snapshot must win).
type Store struct {
	path    string
	mu      sync.Mutex
	written uint64
}

// NewStore returns a Store for path.
func NewStore(path string) *Store { return &Store{path: path} }

// Path returns the file the Store writes.
func (s *Store) Path() string { return s.path }

// Write stores f, taken as snapshot number gen, unless a later snapshot
// was written already.
func (s *Store) Write(gen uint64, f *File) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen < s.written {
		return nil
	}
	b, err := Encode(f)
	if err != nil {
		return err
	}
	if err := WriteFile(s.path, b); err != nil {
		return err
	}
	s.written = gen
	return nil
}
