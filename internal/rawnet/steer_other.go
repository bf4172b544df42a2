//go:build !linux

package rawnet

import (
	"errors"
	"os"
)

var errNoSteer = errors.New("steering connections within a SO_REUSEPORT group needs Linux")

// Steer is Linux-only; elsewhere scaling down a reuseport app may reset
// the connections queued on the removed slot.
func Steer(l *os.File, indexes []int) error { return errNoSteer }

// Unsteer is Linux-only.
func Unsteer(l *os.File) error { return nil }
