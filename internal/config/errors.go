package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/tend-pm/tend/internal/api"
)

// maxErrors caps the problems reported for one input: past a few dozen, the
// rest are usually echoes of the first ones.
const maxErrors = 20

// Error is one problem in what the user wrote, with where it is: a file
// and a position in it, or the command-line flag it came from.
type Error struct {
	Path string // the file as the user named it, or a flag such as "--kill-timeout"
	Line int    // 1-based; 0 when the position is not known
	Col  int    // 1-based; 0 when only the line is known
	Msg  string

	err error // an underlying cause (such as fs.ErrNotExist), for errors.Is
}

func (e *Error) Error() string {
	switch {
	case e.Path == "":
		return e.Msg
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.Path, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return e.Path + ": " + e.Msg
}

// Is reports whether target is api.ErrInvalid: every problem found here is
// in the user's input, which the CLI maps to its "invalid input" exit code.
func (e *Error) Is(target error) bool { return target == api.ErrInvalid }

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.err }

// ErrorList is every problem found in one input, in the order of the input.
// Load and FromCommandLine return it (never empty) for invalid input, so the
// user can fix a file in one pass.
type ErrorList []*Error

// Error returns one problem per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Is reports whether target is api.ErrInvalid.
func (l ErrorList) Is(target error) bool { return target == api.ErrInvalid }

// Unwrap returns the problems, so errors.As finds an *Error in the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// where locates a value for error messages. A value from a YAML or JSON
// file has a position; a value from a JS file has only a path (apps[1].port)
// and the key it was written under, which is looked up in the JS source; a
// value from the command line has the flag it came from.
type where struct {
	line, col int
	path      string // e.g. "apps[1].instances"; the flag for command-line values
	key       string // the map key the value sits under, if any
}

// reporter collects the errors and warnings of one input.
type reporter struct {
	file  string // the file as the user named it; "" for the command line
	js    []byte // the JS source, when positions must be found by key
	errs  ErrorList
	warns ErrorList // warnings: Errors that do not fail the input
	more  bool      // errors were dropped past maxErrors
	count int       // errors reported, including repeats and dropped ones
}

// locate turns w into an Error without a message.
func (r *reporter) locate(w where) *Error {
	switch {
	case r.file == "":
		return &Error{Path: w.path}
	case r.js != nil:
		if line, col, ok := findKey(r.js, w.key); ok {
			return &Error{Path: r.file, Line: line, Col: col}
		}
		return &Error{Path: r.file}
	}
	return &Error{Path: r.file, Line: w.line, Col: w.col}
}

// message prefixes msg with the value's path when the position alone does
// not say which value is meant.
func (r *reporter) message(e *Error, w where, msg string) string {
	if r.file != "" && e.Line == 0 && w.path != "" {
		return w.path + ": " + msg
	}
	return msg
}

func (r *reporter) errorf(w where, format string, args ...any) {
	e := r.locate(w)
	e.Msg = r.message(e, w, fmt.Sprintf(format, args...))
	r.add(e)
}

// add records e, once: a YAML alias repeats the values of its anchor, and
// their problems are reported at the anchor only once.
func (r *reporter) add(e *Error) {
	r.count++
	for _, o := range r.errs {
		if *o == *e {
			return
		}
	}
	if len(r.errs) >= maxErrors {
		r.more = true
		return
	}
	r.errs = append(r.errs, e)
}

// warnf records something the user asked for that tend will not do. In a
// file it is a warning, with "; ignored" added, and the rest of the file
// applies; on the command line, where the user has just typed it, it is an
// error.
func (r *reporter) warnf(w where, format string, args ...any) {
	if r.file == "" {
		r.errorf(w, format, args...)
		return
	}
	r.warn(w, fmt.Sprintf(format, args...)+"; ignored")
}

// unsupported records a pm2 field that tend accepts without acting on it
// yet (watch, cron_restart...). It is a warning in a file and on the
// command line alike: a pm2 command line, like a pm2 ecosystem file, still
// starts the app.
func (r *reporter) unsupported(w where, key string) {
	r.warn(w, fmt.Sprintf("%q is not supported yet; ignored", key))
}

// warn records a warning, once, located as an error would be.
func (r *reporter) warn(w where, msg string) {
	e := r.locate(w)
	e.Msg = r.message(e, w, msg)
	if !slices.ContainsFunc(r.warns, func(o *Error) bool { return *o == *e }) {
		r.warns = append(r.warns, e)
	}
}

// warnings returns the warnings as lines, sorted as errors are.
func (r *reporter) warnings() []string {
	if len(r.warns) == 0 {
		return nil
	}
	sorted := slices.Clone(r.warns)
	sortErrors(sorted)
	lines := make([]string, len(sorted))
	for i, e := range sorted {
		lines[i] = e.Error()
	}
	return lines
}

// err returns the collected errors, sorted by position (errors without one
// last), or nil.
func (r *reporter) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	errs := slices.Clone(r.errs)
	sortErrors(errs)
	if r.more {
		errs = append(errs, &Error{Path: r.file, Msg: fmt.Sprintf("too many errors; only the first %d are shown", maxErrors)})
	}
	return errs
}

// failed reports whether any error was recorded.
func (r *reporter) failed() bool { return len(r.errs) > 0 }

// sortErrors sorts l by position, problems without one last.
func sortErrors(l ErrorList) {
	slices.SortStableFunc(l, func(a, b *Error) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}
