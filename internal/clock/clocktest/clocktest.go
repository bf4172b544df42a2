// Package clocktest provides a Clock whose time moves only when a test
// says so.
package clocktest

import (
	"sort"
	"sync"
	"time"

	"github.com/tend-pm/tend/internal/clock"
)

// Clock is a fake clock. Timers fire, in order of their due time, during
// Advance; each fires in its own goroutine, as time.AfterFunc does.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer
	changed chan struct{} // closed and replaced whenever a timer is added
}

var _ clock.Clock = (*Clock)(nil)

// New returns a Clock set to start.
func New(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

type timer struct {
	c    *Clock
	when time.Time
	f    func()
	done bool
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d.
func (c *Clock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, when: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	close(c.changed)
	c.changed = make(chan struct{})
	return t
}

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	return true
}

// Advance moves the time forward by d, firing the timers that fall due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	target := c.now.Add(d)
	for {
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].when.Before(c.timers[j].when) })
		var next *timer
		for _, t := range c.timers {
			if !t.done && !t.when.After(target) {
				next = t
				break
			}
		}
		if next == nil {
			break
		}
		next.done = true
		if next.when.After(c.now) {
			c.now = next.when
		}
		go next.f()
	}
	c.now = target
	live := c.timers[:0]
	for _, t := range c.timers {
		if !t.done {
			live = append(live, t)
		}
	}
	c.timers = live
	c.mu.Unlock()
}

// Pending returns the durations from now until each pending timer is due,
// in order. Tests use it to read a schedule (a backoff delay) without
// guessing.
func (c *Clock) Pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, t := range c.timers {
		if !t.done {
			out = append(out, t.when.Sub(c.now))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Changed returns a channel that is closed the next time a timer is
// scheduled, so a test can wait for the code under test to arm one.
func (c *Clock) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}
