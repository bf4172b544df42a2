package proc

import "golang.org/x/sys/unix"

// BecomeSubreaper makes this process the reaper of its orphaned
// descendants (prctl PR_SET_CHILD_SUBREAPER), so that a grandchild whose
// parent exits is re-parented here and can still be found and stopped.
func BecomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}
