package monit

import (
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
)

// TestColumnsFit: at each width the layout keeps (52 and up: restarts and
// uptime; 72 and up: the bars too), every column is whole: nothing on a
// row with a short name is cut to "…".
func TestColumnsFit(t *testing.T) {
	f := newFake("web*2")
	for i := range f.apps[0].Instances {
		// The widest usual uptime and restart count.
		f.apps[0].Instances[i].Started = time.Now().Add(-(23*time.Hour + 59*time.Minute))
		f.apps[0].Instances[i].Restarts = 999
	}
	dr := newDriver(t, f)
	for _, w := range []int{52, 57, 71, 72, 77, 99, 100, 140} {
		dr.send(tea.WindowSizeMsg{Width: w, Height: 20})
		for _, l := range screen(t, dr.m) {
			if strings.Contains(l, "web") && strings.Contains(l, "…") {
				t.Errorf("width %d: a row is cut: %q", w, l)
			}
		}
	}
}
