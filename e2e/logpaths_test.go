package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/testproc"
)

// TestLogFilesAfterScale: with a file per instance (merge_logs: false),
// an app scaled up names its new instance's files in describe and
// jlist, and flush empties them too.
func TestLogFilesAfterScale(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := filepath.Join(e.dir, "m.json")
	spec := map[string]any{"apps": []map[string]any{{
		"name": "m", "script": testproc.Command()[0], "args": []string{"lines", "3", "line", "sleep", "forever"},
		"instances": 2, "merge_logs": false, "exec_mode": "fork",
	}}}
	b, _ := json.Marshal(spec)
	writeFile(t, cfg, string(b), 0o600)
	e.ok("start", cfg)
	e.waitStatus("m", api.StatusOnline)
	e.ok("scale", "m", "3")
	e.waitStatus("m", api.StatusOnline)

	var apps []api.AppDetail
	if err := json.Unmarshal([]byte(e.ok("describe", "m", "--json")), &apps); err != nil {
		t.Fatal(err)
	}
	third := filepath.Join(e.home, "logs", "m-out-2.log")
	if len(apps) != 1 || len(apps[0].Logs.Out) != 3 || apps[0].Logs.Out[2] != third {
		t.Fatalf("describe's out files after scale to 3: %+v; want 3, the last %s", apps, third)
	}
	var list []struct {
		PM2Env struct {
			Out string `json:"pm_out_log_path"`
		} `json:"pm2_env"`
	}
	if err := json.Unmarshal([]byte(e.ok("jlist")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[2].PM2Env.Out != third {
		t.Errorf("jlist's out file of instance 2: %+v; want %s", list, third)
	}

	// Every instance has written all it writes before the flush.
	waitFor(t, "every instance's three lines", func() bool {
		for slot := range 3 {
			b, _ := os.ReadFile(filepath.Join(e.home, "logs", "m-out-"+strconv.Itoa(slot)+".log"))
			if string(b) != "line 0\nline 1\nline 2\n" {
				return false
			}
		}
		return true
	})
	e.ok("flush", "m")
	for slot := range 3 {
		p := filepath.Join(e.home, "logs", "m-out-"+strconv.Itoa(slot)+".log")
		if fi, err := os.Stat(p); err != nil || fi.Size() != 0 {
			b, _ := os.ReadFile(p)
			t.Errorf("%s after flush: %v, %q; want empty", p, err, b)
		}
	}
}
