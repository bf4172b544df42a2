//go:build !linux

package rawnet

import "os"

// Queue is only known on Linux.
func Queue(l *os.File) (n, limit int, ok bool) { return 0, 0, false }
