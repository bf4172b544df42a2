package suggest

import "testing"

func TestDidYouMean(t *testing.T) {
	keys := []string{"bus", "metrics", "host", "port", "leafnodes", "addr", "kill_timeout"}
	for _, tt := range []struct{ key, want string }{
		{"leafnode", ` (did you mean "leafnodes"?)`},
		{"killTimeout", ` (did you mean "kill_timeout"?)`}, // case and underscores first
		{"metircs", ` (did you mean "metrics"?)`},          // a swap is one step
		{"buss", ` (did you mean "bus"?)`},
		{"env-production", ` (did you mean "env_production"?)`},
		{"colour", ""}, // nothing close
		{"x", ""},
	} {
		if got := DidYouMean(tt.key, keys); got != tt.want {
			t.Errorf("DidYouMean(%q) = %q; want %q", tt.key, got, tt.want)
		}
	}
}
