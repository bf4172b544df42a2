package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/cli"
	"github.com/tend-pm/tend/internal/testproc"
)

func TestLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.startApp("web", "print", "hello", "sleep", "forever")
	pid := first.Instances[0].PID

	e.ok("stop", "web")
	if a := e.app("web"); a.Status != api.StatusStopped || alive(pid) {
		t.Fatalf("after stop: %s, pid %d alive=%v", a.Status, pid, alive(pid))
	}
	e.ok("start", "web")
	second := e.waitStatus("web", api.StatusOnline)
	e.ok("restart", "web")
	third := e.waitStatus("web", api.StatusOnline)
	if third.Instances[0].PID == second.Instances[0].PID || third.Instances[0].Restarts != 1 {
		t.Errorf("restart: pid %d -> %d, restarts %d; want a new pid and 1 restart", second.Instances[0].PID, third.Instances[0].PID, third.Instances[0].Restarts)
	}
	e.ok("reset", "web")
	if r := e.app("web").Instances[0].Restarts; r != 0 {
		t.Errorf("after reset: %d restarts; want 0", r)
	}
	out := e.ok("describe", "web")
	for _, want := range []string{"web (id 0): online", "web-out.log", "instance 0: online"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	e.ok("del", "web")
	if apps := e.list(); len(apps) != 0 {
		t.Errorf("after delete: %+v", apps)
	}
}

// TestListForms checks `tend ls` piped, as JSON, and on a terminal (with
// and without colour).
func TestListForms(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.startApp("api", "sleep", "forever")
	pid := strconv.Itoa(a.Instances[0].PID)

	piped := e.ok("ls")
	fields := strings.Split(strings.TrimSuffix(piped, "\n"), "\t")
	if len(fields) != 10 || (fields[9] != "true" && fields[9] != "false") || fields[0] != "0" || fields[1] != "api" || fields[2] != "0" || fields[3] != pid || fields[4] != "online" {
		t.Errorf("piped ls = %q; want id, name, instance, pid, status... tab-separated", piped)
	}

	var apps []map[string]any
	if err := json.Unmarshal([]byte(e.ok("ls", "--json")), &apps); err != nil || len(apps) != 1 || apps[0]["name"] != "api" || apps[0]["status"] != "online" {
		t.Errorf("ls --json = %v (%v); want one app named api, online", apps, err)
	}

	for _, color := range []bool{false, true} {
		var out, errb bytes.Buffer
		io := &cli.IO{
			In: strings.NewReader(""), Out: &out, Err: &errb, OutTTY: true, Color: color,
			Environ: e.environ(), Cwd: e.dir, Now: time.Now, Exe: tendBin,
		}
		if code := cli.Main(context.Background(), []string{"ls"}, io); code != 0 {
			t.Fatalf("ls on a terminal: exit %d: %s", code, errb.String())
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		plain := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(out.String(), "")
		if len(lines) != 2 || !regexp.MustCompile(`^id\s+name\s+pid\s+status\s+↺\s+uptime\s+cpu\s+memory\n0\s+api\s+`+pid+`\s+online\s+0\s+\d+s\s+\d+\.\d%\s+[\d.]+ [KM]iB\n$`).MatchString(plain) {
			t.Errorf("ls on a terminal (colour %v):\n%s", color, out.String())
		}
		if hasEsc := strings.Contains(out.String(), "\x1b["); hasEsc != color {
			t.Errorf("colour %v: escapes present = %v", color, hasEsc)
		}
	}
}

// TestBadInputChangesNothing gives tend each kind of bad input a user
// meets; each gets one clear line, a non-zero exit code, and the list of
// apps is unchanged.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startApp("keep", "sleep", "forever")
	writeFile(t, filepath.Join(e.dir, "good.sh"), "#!/bin/sh\nsleep 1000\n", 0o755)
	writeFile(t, filepath.Join(e.dir, "bad.yaml"), "apps:\n  - name: good\n    script: ./good.sh\n  - name: typo\n    script: ./good.sh\n    instaces: 2\n", 0o644)
	writeFile(t, filepath.Join(e.dir, "bad.json"), `{"apps": [{"name": "x", "script": "./good.sh", "instances": "four"}]}`, 0o644)
	if err := os.Mkdir(filepath.Join(e.dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"start", "missing.js"}, cli.ExitInvalid, `"missing.js" not found`},
		{[]string{"start", "adir"}, cli.ExitInvalid, "is a directory"},
		{[]string{"start", "bad.yaml"}, cli.ExitInvalid, `bad.yaml:6:5: unknown field "instaces" (did you mean "instances"?)`},
		{[]string{"start", "bad.json"}, cli.ExitInvalid, "bad.json:1:"},
		{[]string{"stop", "nope"}, cli.ExitFailed, `app "nope": not found`},
		{[]string{"restart", "keep", "nope"}, cli.ExitFailed, `app "nope": not found`},
		{[]string{"start", testproc.Command()[0], "--name", "keep", "--", "sleep", "1h"}, cli.ExitFailed, `app "keep" already exists`},
		{[]string{"start", "good.sh", "--kill-timeout", "soon"}, cli.ExitInvalid, "--kill-timeout"},
		{[]string{"start", "good.sh", "--name", "all"}, cli.ExitInvalid, "reserved"},
		{[]string{"sendSignal", "SIGNOPE", "keep"}, cli.ExitInvalid, "unknown signal"},
		{[]string{"frobnicate"}, cli.ExitInvalid, "unknown command"},
		{[]string{"start"}, cli.ExitInvalid, "start needs at least 1 argument"},
	}
	before := e.ok("ls")
	for _, tt := range tests {
		out, errs, code := e.run(tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) || !strings.HasPrefix(errs, "tend: ") {
			t.Errorf("tend %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), code, errs, tt.code, tt.want)
		}
		if out != "" {
			t.Errorf("tend %s printed %q on stdout", strings.Join(tt.args, " "), out)
		}
	}
	if after := e.ok("ls"); fieldsOf(after, 1, 4) != fieldsOf(before, 1, 4) {
		t.Errorf("the list changed after refused commands:\nbefore %s\nafter  %s", before, after)
	}
}

func fieldsOf(ls string, cols ...int) string {
	var b strings.Builder
	for _, line := range strings.Split(ls, "\n") {
		f := strings.Split(line, "\t")
		for _, c := range cols {
			if c < len(f) {
				b.WriteString(f[c] + " ")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestHomeTooLong: a TEND_HOME that cannot hold a socket path is refused
// with the fix in the message.
func TestHomeTooLong(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	long := filepath.Join(e.dir, strings.Repeat("x", 120))
	_, errs, code := e.runEnv([]string{"TEND_HOME=" + long}, "ls")
	if code != cli.ExitNoDaemon || !strings.Contains(errs, "set TEND_HOME to a shorter directory") || strings.Count(errs, "\n") != 1 {
		t.Errorf("ls with a long TEND_HOME: exit %d, %q; want exit %d and one line saying what to do", code, errs, cli.ExitNoDaemon)
	}
	if _, err := os.Stat(long); !os.IsNotExist(err) {
		t.Errorf("the too-long TEND_HOME was created: %v", err)
	}
}

// TestEcosystemFiles starts pm2-format files (written from pm2's
// documented format) of each kind through the CLI.
func TestEcosystemFiles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bin := testproc.Command()[0]
	files := map[string]string{
		"ecosystem.config.js": `module.exports = {
  apps: [{
    name: "js-app",
    script: "` + bin + `",
    args: ["env", "` + e.dir + `/js.env", "sleep", "forever"],
    env: { GREETING: "hello" },
    env_production: { GREETING: "prod" },
  }],
};
`,
		"apps.json": `{
  // pm2 reads .json files as JS: comments and trailing commas are fine
  "apps": [{"name": "json-app", "script": "` + bin + `", "args": "sleep forever", "max_restarts": 3,},],
}
`,
		"apps.yaml": "apps:\n  - name: yaml-app\n    script: " + bin + "\n    args: [sleep, forever]\n    kill_timeout: 3000\n",
	}
	for name, content := range files {
		writeFile(t, filepath.Join(e.dir, name), content, 0o644)
	}
	e.ok("start", "ecosystem.config.js", "--env", "production", "--env-var", "EXTRA=from-cli")
	e.ok("start", "apps.json")
	e.ok("start", "apps.yaml")
	for _, name := range []string{"js-app", "json-app", "yaml-app"} {
		e.waitStatus(name, api.StatusOnline)
	}
	var env string
	waitFor(t, "js-app's environment", func() bool {
		b, err := os.ReadFile(filepath.Join(e.dir, "js.env"))
		env = string(b)
		return err == nil && strings.HasSuffix(env, "\n")
	})
	if !strings.Contains(env, "GREETING=prod\n") || !strings.Contains(env, "EXTRA=from-cli\n") {
		t.Errorf("--env production --env-var EXTRA=from-cli: js-app's environment lacks GREETING=prod or EXTRA:\n%s", env)
	}
	var apps []api.AppDetail
	if err := json.Unmarshal([]byte(e.ok("describe", "yaml-app", "--json")), &apps); err != nil || apps[0].Spec.KillTimeout != api.Duration(3*time.Second) {
		t.Errorf("yaml-app kill_timeout: %+v %v; want 3s", apps, err)
	}
	// A config file is a target too.
	e.ok("stop", "apps.yaml")
	if st := e.app("yaml-app").Status; st != api.StatusStopped {
		t.Errorf("stop apps.yaml: yaml-app is %s", st)
	}
}

func TestSaveResurrect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startApp("one", "sleep", "forever")
	e.startApp("two", "sleep", "forever")
	e.ok("stop", "two")
	if out := e.ok("save"); !strings.Contains(out, "saved 2 apps") {
		t.Errorf("save: %q", out)
	}
	e.ok("delete", "all")
	if _, errs, code := e.run("save"); code == 0 || !strings.Contains(errs, "--force") {
		t.Errorf("save of an empty list: exit %d %q; want refused, naming --force", code, errs)
	}
	e.ok("resurrect")
	e.waitStatus("one", api.StatusOnline)
	if st := e.app("two").Status; st != api.StatusStopped {
		t.Errorf("resurrected two is %s; it was saved stopped", st)
	}
}

// TestUpdateEnv: restart keeps the environment an app started with;
// --update-env gives it the current one.
func TestUpdateEnv(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	envFile := filepath.Join(e.dir, "env")
	readEnv := func() string {
		var s string
		waitFor(t, "the environment file", func() bool {
			b, err := os.ReadFile(envFile)
			s = string(b)
			return err == nil && strings.HasSuffix(s, "\n")
		})
		os.Remove(envFile)
		return s
	}
	args := []string{"start", testproc.Command()[0], "--name", "envy", "--", "env", envFile, "sleep", "forever"}
	if _, errs, code := e.runEnv([]string{"COLOUR=red"}, args...); code != 0 {
		t.Fatal(errs)
	}
	if env := readEnv(); !strings.Contains(env, "COLOUR=red\n") {
		t.Fatalf("started with COLOUR=red; environment:\n%s", env)
	}
	e.runEnv([]string{"COLOUR=blue"}, "restart", "envy")
	if env := readEnv(); !strings.Contains(env, "COLOUR=red\n") {
		t.Errorf("restart without --update-env changed the environment:\n%s", env)
	}
	e.runEnv([]string{"COLOUR=blue"}, "restart", "envy", "--update-env")
	if env := readEnv(); !strings.Contains(env, "COLOUR=blue\n") {
		t.Errorf("restart --update-env did not take COLOUR=blue:\n%s", env)
	}
	out := e.ok("env", "envy")
	if !strings.Contains(out, "COLOUR=blue\n") || !strings.Contains(out, "TEND_APP=envy\n") {
		t.Errorf("tend env envy:\n%s", out)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// TestHelpAndUnknownCommands: with only the named command prepared for a
// run, the help of the whole tool still lists every command, a command's
// help is its own, and an unknown command is refused with exit 2.
func TestHelpAndUnknownCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out := e.ok("--help")
	for _, name := range []string{"start", "trigger", "bus", "monit", "logs"} {
		if !strings.Contains(out, "   "+name) {
			t.Errorf("tend --help does not list %s:\n%s", name, out)
		}
	}
	if out := e.ok("trigger", "--help"); !strings.Contains(out, "tend trigger") || strings.Contains(out, "tend start") {
		t.Errorf("tend trigger --help:\n%s", out)
	}
	if out := e.ok("bus", "sub", "--help"); !strings.Contains(out, "tend bus sub") {
		t.Errorf("tend bus sub --help:\n%s", out)
	}
	if _, errs, code := e.run("lss"); code != 2 || !strings.Contains(errs, `unknown command "lss"`) {
		t.Errorf("tend lss: exit %d: %s", code, errs)
	}
}
