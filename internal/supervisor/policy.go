package supervisor

import (
	"fmt"
	"slices"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/proc"
)

// backoffReset is how long a run must last for exp_backoff_restart_delay
// to start again from its initial value (pm2 uses the same 30 s).
const backoffReset = 30 * time.Second

// decision is what the restart policy says to do after an unexpected exit.
type decision struct {
	restart  bool
	delay    time.Duration
	status   string // StatusWaitingRestart, StatusStopped or StatusErrored
	unstable int    // the new count of unstable runs in a row
	backoff  time.Duration
	reason   string
}

// decide applies the restart policy of spec to an exit after a run of
// uptime; what says what happened, for the reason shown to users.
// unstable and backoff are the instance's counters before this exit.
//
// A run shorter than min_uptime is unstable (a caller passes an uptime of
// 0 for a run that was never ready in time). An instance is restarted after
// at most max_restarts unstable runs in a row; the next one makes it
// errored, and it stays down until a user starts or restarts it. A stable
// run resets the count. (pm2 counts unstable restarts only in a window
// after the app was created, so an app that was fine for a minute can crash
// forever without ever being marked errored; counting runs in a row has
// no such hole.)
func decide(spec *api.AppSpec, exit proc.Exit, what string, uptime time.Duration, unstable int, backoff time.Duration) decision {
	if !spec.Autorestart {
		return decision{status: api.StatusStopped, reason: what + "; autorestart is off"}
	}
	if exit.Signal() == 0 && slices.Contains(spec.StopExitCodes, exit.Code()) {
		return decision{status: api.StatusStopped, reason: fmt.Sprintf("%s; code %d is in stop_exit_codes, so not restarted", what, exit.Code())}
	}
	d := decision{restart: true, status: api.StatusWaitingRestart, backoff: backoff}
	if uptime < spec.MinUptime.Std() {
		d.unstable = unstable + 1
	}
	if d.unstable > spec.MaxRestarts {
		return decision{
			status:   api.StatusErrored,
			unstable: d.unstable,
			reason: fmt.Sprintf("%s; %d runs in a row were unstable (shorter than min_uptime, %s, or not ready in time), more than max_restarts (%d) allows, so it is not restarted: fix it, then `tend restart %s`",
				what, d.unstable, spec.MinUptime, spec.MaxRestarts, spec.Name),
		}
	}
	switch {
	case spec.ExpBackoffRestartDelay > 0:
		if uptime >= backoffReset {
			d.backoff = 0
		}
		if d.backoff == 0 {
			d.backoff = spec.ExpBackoffRestartDelay.Std()
		} else {
			d.backoff = min(d.backoff*3/2, api.MaxBackoff.Std())
		}
		d.delay = d.backoff
	default:
		d.delay = spec.RestartDelay.Std()
	}
	d.reason = what + "; restarting"
	if d.delay > 0 {
		d.reason += " in " + d.delay.String()
	}
	if d.unstable > 0 {
		d.reason += fmt.Sprintf(" (unstable run %d of at most %d in a row)", d.unstable, spec.MaxRestarts)
	}
	return d
}

// roundDuration keeps durations in messages readable.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}
