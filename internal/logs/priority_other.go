//go:build !linux

package logs

// lowerPriority does nothing where priorities are per process.
func lowerPriority() {}
