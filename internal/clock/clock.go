// Package clock lets time be injected: the supervisor's restart delays,
// backoff windows and uptimes all go through a Clock, so tests can drive
// them with clocktest.Clock instead of sleeping.
package clock

import "time"

// Clock is the part of package time that tend's timing logic uses.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not run yet and reports whether it
	// did so.
	Stop() bool
}

// Real is the Clock of the wall.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
