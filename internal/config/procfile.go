package config

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// parseProcfile reads a Procfile (foreman's format): one "name: command"
// per line, with blank lines and # comments. Each process becomes an app
// that runs its command line with /bin/sh.
func parseProcfile(b []byte, r *reporter) []*draft {
	var apps []*draft
	for i, raw := range bytes.Split(b, []byte("\n")) {
		line := strings.TrimRight(string(raw), "\r")
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		indent := utf8.RuneCountInString(line[:strings.Index(line, t)])
		at := where{line: i + 1, col: indent + 1}
		name, cmd, ok := strings.Cut(t, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			r.errorf(at, "want \"name: command\", got %q", t)
			continue
		}
		rest := strings.TrimLeft(cmd, " \t")
		cmdAt := where{line: at.line, col: at.col + utf8.RuneCountInString(t[:len(t)-len(rest)])}
		cmd = strings.TrimSpace(rest)
		if cmd == "" {
			r.errorf(cmdAt, "process %q has no command", name)
			continue
		}
		a := newDraft(at)
		a.name, a.nameAt, a.hasName = name, at, true
		a.script, a.scriptAt, a.hasScript, a.shell = cmd, cmdAt, true, true
		apps = append(apps, a)
	}
	return apps
}
