package supervisor

import (
	"errors"
	"strings"
	"testing"

	"github.com/tend-pm/tend/internal/api"
)

// TestMetricNamesServedOnce: a report that /metrics would serve under
// the name of another metric of the instance, or of one of tend's own
// families, is refused with the reason, and changes nothing; the
// instance's other metrics keep working.
func TestMetricNamesServedOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		first, bad string
		why        string
	}{
		{"counter X after X_total", "jobs_total 1 counter", "jobs 1 counter", "as jobs_total already is"},
		{"counter X after gauge X_total", "jobs_total 1", "jobs 1 counter", "tend_app_jobs_total, as jobs_total already is"},
		{"X_total after counter X", "jobs 1 counter", "jobs_total 1 counter", "as jobs (a counter) already is"},
		{"gauge X_total after counter X", "jobs 1 counter", "jobs_total 4", "tend_app_jobs_total, as jobs (a counter) already is"},
		{"tend's own family", "", "memory_limit_bytes 5", "tend_app_memory_limit_bytes is one of tend's own metrics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &instance{app: &app{spec: api.AppSpec{Name: "web"}}, slot: 2}
			if tc.first != "" {
				if err := in.metricLocked(tc.first); err != nil {
					t.Fatalf("METRIC=%s: %v", tc.first, err)
				}
			}
			err := in.metricLocked(tc.bad)
			var me *MetricError
			if !errors.Is(err, api.ErrInvalid) || !errors.As(err, &me) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("METRIC=%s = %v; want an invalid MetricError that says %q", tc.bad, err, tc.why)
			}
			if me.App != "web" || me.Slot != 2 {
				t.Errorf("MetricError names %s[%d]; want web[2]", me.App, me.Slot)
			}
			if want := min(len(tc.first), 1); len(in.metrics) != want {
				t.Errorf("metrics after the refusal: %v; want %d", in.metrics, want)
			}
			if tc.first != "" {
				if err := in.metricLocked(tc.first); err != nil {
					t.Errorf("METRIC=%s again: %v", tc.first, err)
				}
			}
		})
	}
	// What does not collide is taken: a gauge X beside a counter X_total
	// (served as tend_app_X and tend_app_X_total), and a counter
	// memory_limit_bytes (tend_app_memory_limit_bytes_total).
	in := &instance{}
	for _, v := range []string{"jobs_total 1 counter", "jobs 3", "memory_limit_bytes 1 counter"} {
		if err := in.metricLocked(v); err != nil {
			t.Errorf("METRIC=%s: %v", v, err)
		}
	}
}
