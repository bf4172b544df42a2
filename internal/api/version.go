package api

import (
	"runtime/debug"
	"sync"
)

// release is the version of this source tree.
const release = "0.1.0"

// Version returns tend's version: the release, followed by the commit it
// was built from when the build recorded one, so two builds of different
// sources are told apart.
var Version = sync.OnceValue(func() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return release
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return release
	}
	return release + "+" + rev + modified
})
