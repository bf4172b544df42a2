// Package terminfo stands in for github.com/xo/terminfo in tend's build
// (a replace directive in tend's go.mod). The terminal libraries behind
// `tend monit` use that package to read the terminfo database, and it
// finds the user's home directory with os/user, which links cgo: every
// default build of tend would become a dynamically linked binary, and
// every command about 1.7 ms slower (docs/layout.md).
//
// This stand-in finds no database. The libraries then decide colours from
// the environment ($COLORTERM, $TERM, NO_COLOR) and read keys with their
// built-in tables, which cover the terminals in use today.
package terminfo

import "errors"

// ErrNotRead is what Load returns: tend reads no terminfo database.
var ErrNotRead = errors.New("terminfo: not read by tend")

// Terminfo is an empty terminal description.
type Terminfo struct{}

// Load finds no database.
func Load(name string) (*Terminfo, error) { return nil, ErrNotRead }

// ExtBoolCapsShort returns no capability.
func (ti *Terminfo) ExtBoolCapsShort() map[string]bool { return nil }

// StringCapsShort returns no capability.
func (ti *Terminfo) StringCapsShort() map[string][]byte { return nil }

// ExtStringCapsShort returns no capability.
func (ti *Terminfo) ExtStringCapsShort() map[string][]byte { return nil }
