package cli

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tend-pm/tend/internal/api"
)

// TestPM2List checks `tend jlist` against the fields scripts written for
// `pm2 jlist` read: one object per instance, numbered in list order, with
// pm2's names, units and words, and only the app's own environment.
func TestPM2List(t *testing.T) {
	t.Parallel()
	created := time.UnixMilli(1_700_000_000_000)
	started := created.Add(time.Minute)
	api1 := api.NewSpec()
	api1.Name, api1.Script, api1.Cwd = "api", "/srv/api/server.js", "/srv/api"
	api1.Interpreter, api1.InterpreterArgs = "/usr/bin/node", []string{"--max-old-space-size=128"}
	api1.Args = []string{"--verbose"}
	api1.Instances, api1.ExecMode, api1.Port = 2, "cluster", 3000
	api1.Env = map[string]string{"NODE_ENV": "production"}
	api1.BaseEnv = map[string]string{"AWS_SECRET_ACCESS_KEY": "from the shell"}
	api1.MaxMemoryRestart = 200 << 20
	job := api.NewSpec()
	job.Name, job.Namespace, job.Script, job.Cwd = "job", "batch", "/srv/job/run", "/srv/job"
	job.InstanceVar = "WORKER"
	apps := []api.AppDetail{
		{
			AppInfo: api.AppInfo{ID: 0, Name: "api", Created: created, Instances: []api.InstanceInfo{
				{Slot: 0, PID: 41, Status: api.StatusOnline, Started: started, Restarts: 2, Unstable: 1, CPU: 12.345, Memory: 50 << 20},
				{Slot: 1, PID: 42, Status: api.StatusOnline, Started: started, CPU: 0.04, Memory: 40 << 20},
			}},
			Spec: api1,
			Logs: api.LogPaths{Out: []string{"/l/api-out-0.log", "/l/api-out-1.log"}, Err: []string{"/l/api-error-0.log", "/l/api-error-1.log"}},
		},
		{
			AppInfo: api.AppInfo{ID: 3, Name: "job", Namespace: "batch", Created: created, Instances: []api.InstanceInfo{
				{Slot: 0, Status: api.StatusErrored, Started: started, Restarts: 16, Unstable: 17, CPU: 3, Memory: 9,
					LastExit: &api.ExitInfo{Code: 3}},
			}},
			Spec: job,
			Logs: api.LogPaths{Out: []string{"/l/job-out.log"}},
		},
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, pm2List(apps)); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("jlist is not JSON: %v\n%s", err, buf.Bytes())
	}
	if len(got) != 3 {
		t.Fatalf("jlist has %d entries; want one per instance, 3:\n%s", len(got), buf.Bytes())
	}
	env0 := got[0]["pm2_env"].(map[string]any)
	want0 := map[string]any{
		"pm_id": 0.0, "name": "api", "namespace": "default", "pid": 41.0,
		"monit": map[string]any{"memory": float64(50 << 20), "cpu": 12.3},
	}
	for k, v := range want0 {
		if diff := cmp.Diff(v, got[0][k]); diff != "" {
			t.Errorf("entry 0: %s (-want +got):\n%s", k, diff)
		}
	}
	wantEnv0 := map[string]any{
		"pm_id": 0.0, "name": "api", "namespace": "default", "status": "online",
		"pm_uptime": float64(started.UnixMilli()), "created_at": float64(created.UnixMilli()),
		"restart_time": 2.0, "unstable_restarts": 1.0, "exec_mode": "cluster_mode", "instances": 2.0,
		"instance_var": "NODE_APP_INSTANCE", "NODE_APP_INSTANCE": 0.0,
		"pm_exec_path": "/srv/api/server.js", "pm_cwd": "/srv/api", "exec_interpreter": "node",
		"node_args": []any{"--max-old-space-size=128"}, "args": []any{"--verbose"},
		"pm_out_log_path": "/l/api-out-0.log", "pm_err_log_path": "/l/api-error-0.log",
		"autorestart": true, "max_restarts": 16.0, "min_uptime": 1000.0, "kill_timeout": 1600.0,
		"restart_delay": 0.0, "max_memory_restart": float64(200 << 20), "watch": false,
		"env": map[string]any{
			"NODE_ENV": "production", "PORT": "3000", "TEND_APP": "api", "TEND_INSTANCE": "0", "NODE_APP_INSTANCE": "0",
		},
	}
	if diff := cmp.Diff(wantEnv0, env0); diff != "" {
		t.Errorf("entry 0: pm2_env (-want +got):\n%s", diff)
	}

	env1 := got[1]["pm2_env"].(map[string]any)
	if got[1]["pm_id"] != 1.0 || env1["NODE_APP_INSTANCE"] != 1.0 || env1["pm_out_log_path"] != "/l/api-out-1.log" {
		t.Errorf("entry 1: pm_id %v, NODE_APP_INSTANCE %v, pm_out_log_path %v; want 1, 1, /l/api-out-1.log",
			got[1]["pm_id"], env1["NODE_APP_INSTANCE"], env1["pm_out_log_path"])
	}

	// An app's id is not its pm_id: the third instance listed is 2.
	env2 := got[2]["pm2_env"].(map[string]any)
	want2 := map[string]any{
		"pm_id": 2.0, "namespace": "batch", "status": "errored", "exit_code": 3.0, "WORKER": 0.0,
		"exec_mode": "fork_mode", "exec_interpreter": "none", "node_args": []any{}, "args": []any{},
		"pm_out_log_path": "/l/job-out.log", "pm_err_log_path": "/dev/null",
	}
	for k, v := range want2 {
		if diff := cmp.Diff(v, env2[k]); diff != "" {
			t.Errorf("entry 2: pm2_env.%s (-want +got):\n%s", k, diff)
		}
	}
	if _, ok := env2["NODE_APP_INSTANCE"]; ok {
		t.Errorf("entry 2 has NODE_APP_INSTANCE; its instance_var is WORKER")
	}
	if got[2]["pid"] != 0.0 || !cmp.Equal(got[2]["monit"], map[string]any{"memory": 0.0, "cpu": 0.0}) {
		t.Errorf("entry 2 (no process): pid %v, monit %v; want 0 and zeros", got[2]["pid"], got[2]["monit"])
	}
	if bytes.Contains(buf.Bytes(), []byte("AWS_SECRET_ACCESS_KEY")) {
		t.Errorf("jlist shows a variable inherited from the shell:\n%s", buf.Bytes())
	}
}

// TestPM2ListEmpty: no apps is an empty array, as pm2 prints, not null.
func TestPM2ListEmpty(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := writeJSON(&buf, pm2List(nil)); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "[]\n" {
		t.Errorf("jlist with no apps = %q; want []", got)
	}
}
