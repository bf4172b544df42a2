// Package nodeshim carries the Node.js preload script that lets an
// unmodified Node app run as several instances on one port.
//
// The daemon binds an app's listening sockets itself and passes them to
// every instance as inherited descriptors (from 3, as systemd does). A Node
// app knows nothing of that: it calls `server.listen(3000)`, which would
// bind a second socket and fail with EADDRINUSE in every instance but one.
// So the daemon starts node with NODE_OPTIONS="--require <preload>" and
// TEND_NODE_LISTEN naming which descriptor stands for which port or path;
// the preload (preload.cjs, embedded here) makes listen use the inherited
// socket, reports readiness (POST /v1/notify "READY=1" on the control
// socket under TEND_HOME), and stops such a server gracefully on SIGINT
// or SIGTERM: no new connections, `Connection: close` on every answer not
// yet started, idle keep-alive connections ended only after a grace period.
// Node marks inherited descriptors close-on-exec, so a node process that
// does not use the sockets (an `npm start` wrapper) hands them on to the
// processes it spawns, and the app behind the wrapper still gets them.
//
// The script is written to a file (Install) because node can only preload
// a file; its name carries a hash of its content, so instances started by
// an older daemon keep the script they were started with.
package nodeshim

import (
	"bytes"
	"crypto/sha256"
	_ "embed" // for the preload script
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/state"
)

//go:embed preload.cjs
var script []byte

// ListenVar is the environment variable that maps the app's ports and
// socket paths to inherited descriptors; ListenEnv builds its value.
const ListenVar = "TEND_NODE_LISTEN"

// fileName is the name Install gives the script: "preload-" and the first
// 12 hex digits of its SHA-256. A new tend writes a new file next to the
// old one rather than changing the file running apps have loaded.
func fileName() string {
	sum := sha256.Sum256(script)
	return "preload-" + hex.EncodeToString(sum[:])[:12] + ".cjs"
}

// Install writes the preload script into dir, an existing directory the
// caller made (and keeps private), and returns the file's path. The file
// is written atomically with mode 0600 (temporary file in dir, fsync,
// rename, fsync of dir), so a node starting meanwhile sees the whole
// script or none; if it is already there with the right content, nothing
// is written.
func Install(dir string) (string, error) {
	path := filepath.Join(dir, fileName())
	if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, script) {
		return path, nil
	}
	if err := state.WriteFile(path, script); err != nil {
		return "", fmt.Errorf("install node preload: %w", err)
	}
	return path, nil
}

// NodeOptions returns the NODE_OPTIONS for an app: the app's own options
// (existing) with `--require "<preloadPath>"` appended. Node splits
// NODE_OPTIONS at spaces and reads a double-quoted value with backslash
// escapes, so the path is quoted that way and may hold spaces or quotes.
// Options that already load this preload are returned unchanged, so an
// environment passed through twice does not load it twice.
func NodeOptions(existing, preloadPath string) string {
	req := "--require " + quote(preloadPath)
	if existing == "" {
		return req
	}
	if strings.Contains(" "+existing+" ", " "+req+" ") {
		return existing
	}
	return existing + " " + req
}

// quote writes s as node reads a double-quoted NODE_OPTIONS value: inside
// the quotes a backslash makes the next character literal.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r == '"' || r == '\\' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// Entry is one inherited listening socket: Key is the TCP port ("3000") or
// the absolute unix socket path the app listens on, FD the descriptor
// number the socket has in the app's process.
type Entry struct {
	Key string
	FD  int
}

// Validate reports why e cannot be passed to the preload, which refuses a
// TEND_NODE_LISTEN holding a malformed entry and then does nothing at all.
// A port is decimal without leading zeros, 1 to 65535; a path is absolute
// and holds no ',' (the entry separator) or NUL; FD is at least 3, since
// 0 to 2 are stdio.
func (e Entry) Validate() error {
	if e.FD < 3 {
		return fmt.Errorf("node listen %q: descriptor %d: %w (want 3 or more)", e.Key, e.FD, api.ErrInvalid)
	}
	if strings.HasPrefix(e.Key, "/") {
		if strings.ContainsAny(e.Key, ",\x00") {
			return fmt.Errorf("node listen %q: a socket path with ',' or NUL: %w", e.Key, api.ErrInvalid)
		}
		return nil
	}
	n, err := strconv.Atoi(e.Key)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != e.Key {
		return fmt.Errorf("node listen %q: %w: want a port from 1 to 65535 or an absolute socket path", e.Key, api.ErrInvalid)
	}
	return nil
}

// ListenEnv returns the value of TEND_NODE_LISTEN for entries:
// "<key>=<fd>" joined with commas. The entries must pass Validate (the
// preload ignores the whole variable otherwise).
func ListenEnv(entries []Entry) string {
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = e.Key + "=" + strconv.Itoa(e.FD)
	}
	return strings.Join(parts, ",")
}

// ValidateAll checks every entry and that no key or descriptor repeats,
// which the preload also refuses.
func ValidateAll(entries []Entry) error {
	keys := make(map[string]bool, len(entries))
	fds := make(map[int]bool, len(entries))
	var errs []error
	for _, e := range entries {
		if err := e.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if keys[filepath.Clean(e.Key)] || fds[e.FD] {
			errs = append(errs, fmt.Errorf("node listen %q=%d: %w: key or descriptor given twice", e.Key, e.FD, api.ErrInvalid))
		}
		keys[filepath.Clean(e.Key)] = true
		fds[e.FD] = true
	}
	return errors.Join(errs...)
}
