//go:build !linux

package daemon

import (
	"log/slog"
	"os"
)

// closeInherited relies on /proc; elsewhere inherited descriptors stay.
func closeInherited(keep *os.File) {}

// resetIgnoredSignals: see process_linux.go.
func resetIgnoredSignals() {}

// sweep relies on /proc; elsewhere the process groups are all there is.
func sweep(log *slog.Logger) {}
