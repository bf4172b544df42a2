package supervisor

import (
	"syscall"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/proc"
)

func TestDecide(t *testing.T) {
	exit := func(code int) proc.Exit { return proc.Exit{Status: syscall.WaitStatus(code << 8)} }
	spec := api.NewSpec()
	spec.Name = "x"
	spec.MaxRestarts = 2
	backoff := spec
	backoff.ExpBackoffRestartDelay = api.Duration(time.Second)
	tests := []struct {
		name         string
		spec         api.AppSpec
		uptime       time.Duration
		unstable     int
		backoff      time.Duration
		wantStatus   string
		wantDelay    time.Duration
		wantUnstable int
	}{
		{"short run counts", spec, 10 * time.Millisecond, 0, 0, api.StatusWaitingRestart, 0, 1},
		{"stable run resets", spec, 5 * time.Second, 2, 0, api.StatusWaitingRestart, 0, 0},
		{"max_restarts reached", spec, 0, 2, 0, api.StatusErrored, 0, 3},
		{"first backoff", backoff, 0, 0, 0, api.StatusWaitingRestart, time.Second, 1},
		{"backoff grows 1.5x", backoff, 0, 1, time.Second, api.StatusWaitingRestart, 1500 * time.Millisecond, 2},
		{"backoff is capped", backoff, 2 * time.Second, 0, 14 * time.Second, api.StatusWaitingRestart, 15 * time.Second, 0},
		{"backoff resets after 30s", backoff, 31 * time.Second, 0, 14 * time.Second, api.StatusWaitingRestart, time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decide(&tt.spec, exit(1), "exited", tt.uptime, tt.unstable, tt.backoff)
			if d.status != tt.wantStatus || d.delay != tt.wantDelay || d.unstable != tt.wantUnstable {
				t.Errorf("decide(uptime %v, unstable %d, backoff %v) = %s/%v/%d; want %s/%v/%d",
					tt.uptime, tt.unstable, tt.backoff, d.status, d.delay, d.unstable, tt.wantStatus, tt.wantDelay, tt.wantUnstable)
			}
		})
	}
}
