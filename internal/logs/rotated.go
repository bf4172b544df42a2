package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// rotatedStamp is the time in a rotated file's name. It is UTC, so that
// names sort in the order the files were made even across a DST change,
// and has no ':' so the names work on every file system.
const rotatedStamp = "2006-01-02T15-04-05.000"

// rotatedName returns a free name for the live file at path rotated at t:
// "dir/web-out__2026-11-24T10-00-00.123.log", or with "_<seq>" after the
// milliseconds for the seq-th rotation within one millisecond. It returns
// the seq it used, which is at least seq.
func rotatedName(path string, t time.Time, seq int) (string, int, error) {
	dir, stem, ext := splitLogPath(path)
	base := stem + "__" + t.UTC().Format(rotatedStamp)
	for limit := seq + 10000; seq < limit; seq++ {
		name := base
		if seq > 0 {
			name += "_" + strconv.Itoa(seq)
		}
		name = filepath.Join(dir, name+ext)
		if !exists(name) && !exists(name+".gz") {
			return name, seq, nil
		}
	}
	return "", 0, errors.New("no free rotated file name")
}

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

// splitLogPath splits "/d/web-out.log" into "/d", "web-out", ".log".
func splitLogPath(path string) (dir, stem, ext string) {
	dir, base := filepath.Split(path)
	ext = filepath.Ext(base)
	return filepath.Clean(dir), strings.TrimSuffix(base, ext), ext
}

// rotatedFile is one rotated file of a live file.
type rotatedFile struct {
	name  string // uncompressed name, the key
	stamp string // the rotatedStamp part
	seq   int
	gz    bool // only the .gz exists
	plain bool // the uncompressed file exists
}

// listRotated returns the rotated files of the live file at path, oldest
// first.
func listRotated(path string) ([]rotatedFile, error) {
	dir, stem, ext := splitLogPath(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list rotated logs of %q: %w", path, err)
	}
	prefix := stem + "__"
	byName := map[string]*rotatedFile{}
	var out []*rotatedFile
	for _, e := range entries {
		n := e.Name()
		gz := strings.HasSuffix(n, ".gz")
		key := strings.TrimSuffix(n, ".gz")
		if !strings.HasPrefix(key, prefix) || !strings.HasSuffix(key, ext) || len(key) < len(prefix)+len(ext) {
			continue
		}
		mid := key[len(prefix) : len(key)-len(ext)]
		stamp, seq, ok := parseRotatedMid(mid)
		if !ok {
			continue
		}
		rf := byName[key]
		if rf == nil {
			rf = &rotatedFile{name: filepath.Join(dir, key), stamp: stamp, seq: seq}
			byName[key] = rf
			out = append(out, rf)
		}
		if gz {
			rf.gz = true
		} else {
			rf.plain = true
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].stamp != out[j].stamp {
			return out[i].stamp < out[j].stamp
		}
		return out[i].seq < out[j].seq
	})
	res := make([]rotatedFile, len(out))
	for i, rf := range out {
		res[i] = *rf
	}
	return res, nil
}

// parseRotatedMid reads "2026-11-24T10-00-00.123" or "..._3".
func parseRotatedMid(mid string) (stamp string, seq int, ok bool) {
	if len(mid) < len(rotatedStamp) {
		return "", 0, false
	}
	stamp, rest := mid[:len(rotatedStamp)], mid[len(rotatedStamp):]
	if _, err := time.Parse(rotatedStamp, stamp); err != nil {
		return "", 0, false
	}
	if rest == "" {
		return stamp, 0, true
	}
	if rest[0] != '_' {
		return "", 0, false
	}
	n, err := strconv.Atoi(rest[1:])
	if err != nil || n <= 0 {
		return "", 0, false
	}
	return stamp, n, true
}

// Rotated returns the rotated files of the live log file at path, oldest
// first: "<stem>__<time>.log" or, once compressed, "<stem>__<time>.log.gz".
func Rotated(path string) ([]string, error) {
	rfs, err := listRotated(path)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(rfs))
	for i, rf := range rfs {
		names[i] = rf.name
		if !rf.plain {
			names[i] += ".gz"
		}
	}
	return names, nil
}

// pruneRotated removes the oldest rotated files of path beyond retain
// (negative: keep all).
func pruneRotated(path string, retain int) error {
	if retain < 0 {
		return nil
	}
	rfs, err := listRotated(path)
	if err != nil {
		return err
	}
	var errs []error
	for i := 0; i < len(rfs)-retain; i++ {
		for _, n := range []string{rfs[i].name, rfs[i].name + ".gz"} {
			if err := os.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("prune rotated log: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
