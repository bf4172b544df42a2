//go:build !linux

package proc

// BecomeSubreaper does nothing where the system has no subreapers:
// orphaned grandchildren go to init there.
func BecomeSubreaper() error { return nil }
