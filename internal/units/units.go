// Package units writes sizes and durations for people, the one way every
// view of tend (`tend ls`, `describe`, `monit`) shows them, so the same
// figure reads the same wherever it appears.
package units

import (
	"fmt"
	"time"
)

// Bytes writes b in binary units with one decimal: "44.2 MiB".
func Bytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// Duration writes an uptime in its largest whole unit, as pm2's list does:
// "45s", "12m", "5h", "3D".
func Duration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dD", int(d.Hours()/24))
}
