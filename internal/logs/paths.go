package logs

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tend-pm/tend/internal/api"
)

// Paths returns the files the instance in slot writes to, with pm2's
// names and rules: out_file and error_file default to
// <logDir>/<name>-out.log and <name>-error.log; disable_logs sends both to
// DevNull; an empty combined means no log_file. Without merge_logs each
// slot gets its own files, "-<slot>" before the extension
// (web-out-0.log), as pm2 does with the process id.
func Paths(logDir string, spec *api.AppSpec, slot int) (out, errPath, combined string) {
	if spec.DisableLogs {
		return DevNull, DevNull, ""
	}
	out, errPath, combined = spec.OutFile, spec.ErrorFile, spec.LogFile
	if out == "" {
		out = filepath.Join(logDir, spec.Name+"-out.log")
	}
	if errPath == "" {
		errPath = filepath.Join(logDir, spec.Name+"-error.log")
	}
	if !spec.MergeLogs {
		out, errPath, combined = perSlot(out, slot), perSlot(errPath, slot), perSlot(combined, slot)
	}
	return out, errPath, combined
}

func perSlot(path string, slot int) string {
	if path == "" || path == DevNull {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + strconv.Itoa(slot) + ext
}
