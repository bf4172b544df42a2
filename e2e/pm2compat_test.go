package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/client"
	"github.com/tend-pm/tend/internal/testproc"
)

// jlistEntry is what scripts written for `pm2 jlist` read.
type jlistEntry struct {
	PMID      int    `json:"pm_id"`
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	PID       int    `json:"pid"`
	Monit     struct {
		Memory uint64  `json:"memory"`
		CPU    float64 `json:"cpu"`
	} `json:"monit"`
	PM2Env struct {
		PMID             int               `json:"pm_id"`
		Status           string            `json:"status"`
		PMUptime         int64             `json:"pm_uptime"`
		RestartTime      int               `json:"restart_time"`
		UnstableRestarts int               `json:"unstable_restarts"`
		ExecMode         string            `json:"exec_mode"`
		Instances        int               `json:"instances"`
		NodeAppInstance  *int              `json:"NODE_APP_INSTANCE"`
		PMExecPath       string            `json:"pm_exec_path"`
		PMCwd            string            `json:"pm_cwd"`
		Args             []string          `json:"args"`
		Env              map[string]string `json:"env"`
	} `json:"pm2_env"`
}

// TestJList: `tend jlist` prints pm2's shape, one entry per instance,
// with the same pids as `tend ls --json`, which keeps tend's own shape
// and shows no zero next_restart.
func TestJList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	before := time.Now()
	_, errs, code := e.run("start", testproc.Command()[0], "--name", "web", "-i", "2", "--env-var", "MODE=test", "--", "sleep", "forever")
	if code != 0 {
		t.Fatalf("start -i 2: exit %d: %s", code, errs)
	}
	if strings.Contains(errs, "warning") {
		t.Errorf("start -i 2 without --port: stderr %q; want no warning (workers run that way)", errs)
	}
	web := e.waitStatus("web", api.StatusOnline)
	e.startApp("idle", "sleep", "forever")
	e.ok("stop", "idle")

	var got []jlistEntry
	out := e.ok("jlist")
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("jlist: %v\n%s", err, out)
	}
	if len(got) != 3 {
		t.Fatalf("jlist has %d entries; want 3 (web's two instances, idle):\n%s", len(got), out)
	}
	for i, p := range got[:2] {
		env := p.PM2Env
		if p.PMID != i || env.PMID != i || p.Name != "web" || p.Namespace != "default" || p.PID != web.Instances[i].PID ||
			env.Status != api.StatusOnline || env.ExecMode != "cluster_mode" || env.Instances != 2 ||
			env.NodeAppInstance == nil || *env.NodeAppInstance != i || env.RestartTime != 0 || env.UnstableRestarts != 0 {
			t.Errorf("jlist entry %d = %+v; want pm_id %d, web, default, pid %d, online, cluster_mode, 2 instances, NODE_APP_INSTANCE %d",
				i, p, i, web.Instances[i].PID, i)
		}
		if env.PMUptime < before.UnixMilli() || env.PMUptime > time.Now().UnixMilli() {
			t.Errorf("jlist entry %d: pm_uptime %d is not the start in ms since the epoch (started after %d)", i, env.PMUptime, before.UnixMilli())
		}
		if env.PMExecPath != testproc.Command()[0] || env.PMCwd != e.dir || !slices.Equal(env.Args, []string{"sleep", "forever"}) {
			t.Errorf("jlist entry %d: pm_exec_path %q, pm_cwd %q, args %q", i, env.PMExecPath, env.PMCwd, env.Args)
		}
		if env.Env["MODE"] != "test" || env.Env["PATH"] != "" {
			t.Errorf("jlist entry %d: env %v; want the app's own MODE=test and nothing inherited (PATH)", i, env.Env)
		}
	}
	if idle := got[2]; idle.PMID != 2 || idle.Name != "idle" || idle.PID != 0 || idle.PM2Env.Status != api.StatusStopped || idle.Monit.Memory != 0 {
		t.Errorf("jlist entry 2 = %+v; want idle, pm_id 2, pid 0, stopped, no memory", idle)
	}

	ls := e.ok("ls", "--json")
	if strings.Contains(ls, "next_restart") || strings.Contains(ls, "0001-01-01") {
		t.Errorf("ls --json shows a zero time (no restart is pending):\n%s", ls)
	}
	var apps []api.AppInfo
	if err := json.Unmarshal([]byte(ls), &apps); err != nil || len(apps) != 2 || len(apps[0].Instances) != 2 {
		t.Errorf("ls --json = %v (%v); want tend's shape: 2 apps, web with 2 instances", ls, err)
	}
}

// TestStartAcceptsPM2Flags: pm2's --watch, --cron and --cron-restart are
// accepted with a warning, as their fields are in a file, and the app
// starts.
func TestStartAcceptsPM2Flags(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tt := range []struct {
		name  string
		flags []string
		warn  string
	}{
		{"watched", []string{"--watch"}, `tend: warning: --watch: "watch" is not supported yet; ignored`},
		{"cron", []string{"--cron", "0 3 * * *"}, `tend: warning: --cron-restart: "cron_restart" is not supported yet; ignored`},
		{"cronrestart", []string{"--cron-restart=0 3 * * *"}, `tend: warning: --cron-restart: "cron_restart" is not supported yet; ignored`},
	} {
		args := append([]string{"start", testproc.Command()[0], "--name", tt.name}, tt.flags...)
		_, errs, code := e.run(append(args, "--", "sleep", "forever")...)
		if code != 0 || !strings.Contains(errs, tt.warn) {
			t.Errorf("tend start %s: exit %d, stderr %q; want 0 and %q", strings.Join(tt.flags, " "), code, errs, tt.warn)
			continue
		}
		e.waitStatus(tt.name, api.StatusOnline)
	}
	if out := e.ok("describe", "cron", "--json"); strings.Contains(out, "cron_restart") {
		t.Errorf("describe shows a cron_restart that is ignored:\n%s", out)
	}
}

// TestMetricsErroredAnd405: /metrics tells an instance that gave up from
// a stopped one, and answers another method than GET with 405.
func TestMetricsErroredAnd405(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("start", testproc.Command()[0], "--name", "crash", "--max-restarts", "0", "--min-uptime", "1m", "--", "exit", "1")
	e.waitStatus("crash", api.StatusErrored)
	e.startApp("idle", "sleep", "forever")
	e.ok("stop", "idle")

	sock := filepath.Join(e.home, "tend.sock")
	b, err := client.New(sock).Metrics(context.Background())
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	fams := parseMetrics(t, b)
	for _, tt := range []struct {
		name, app string
		want      float64
	}{
		{"tend_instance_up", "crash", 0}, {"tend_instance_up", "idle", 0},
		{"tend_instance_errored", "crash", 1}, {"tend_instance_errored", "idle", 0},
	} {
		if got, ok := value(fams, tt.name, tt.app); !ok || got != tt.want {
			t.Errorf("%s{app=%q} = %v (found %v); want %v", tt.name, tt.app, got, ok, tt.want)
		}
	}
	if f := fams["tend_build_info"]; f == nil || len(f.Metric) != 1 || f.Metric[0].Gauge.GetValue() != 1 {
		t.Errorf("tend_build_info = %v; want one sample of 1", f)
	}

	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Post("http://tend/metrics", "text/plain", strings.NewReader(""))
	if err != nil {
		t.Fatalf("POST /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" || strings.Contains(string(body), "tend_instance_up") {
		t.Errorf("POST /metrics on the control socket: %d, Allow %q, %s; want 405 with Allow: GET", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
}
