package config

import (
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/suggest"
)

func TestFromCommandLine(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.needNode(t)
	app := f.write(t, "app.js", "")
	got, warnings, err := FromCommandLine("app.js", []string{"--verbose", "two words"}, []Field{
		{Key: "name", Value: "web", Flag: "--name"},
		{Key: "instances", Value: "max", Flag: "-i"},
		{Key: "kill_timeout", Value: "3000", Flag: "--kill-timeout"},
		{Key: "autorestart", Value: "false", Flag: "--no-autorestart"},
		{Key: "node_args", Value: "--inspect --max-old-space-size=64", Flag: "--node-args"},
		{Key: "env", Value: "A=1", Flag: "--env-var"},
		{Key: "env", Value: "B=x=y", Flag: "--env-var"},
		{Key: "filter_env", Value: "APP_,FO", Flag: "--filter-env"},
		{Key: "stop_exit_codes", Value: "0,2", Flag: "--stop-exit-codes"},
		{Key: "log", Value: "", Flag: "--log"},
		{Key: "kill_signal", Value: "term", Flag: "--kill-signal"},
		{Key: "max_memory_restart", Value: "1G", Flag: "--max-memory-restart"},
	}, f.opts)
	if err != nil {
		t.Fatalf("FromCommandLine error:\n%v", err)
	}
	want := spec(func(s *api.AppSpec) {
		s.Name, s.Script, s.Cwd = "web", app, f.dir
		s.Args = []string{"--verbose", "two words"}
		s.Interpreter, s.InterpreterArgs = f.node, []string{"--inspect", "--max-old-space-size=64"}
		s.Command = []string{f.node, "--inspect", "--max-old-space-size=64", app, "--verbose", "two words"}
		s.Instances = runtime.NumCPU()
		if s.Instances > 1 {
			s.ExecMode = "cluster" // -i implies cluster mode, as in pm2
		}
		s.KillTimeout = api.Duration(3 * time.Second)
		s.KillSignal = "SIGTERM"
		s.Autorestart = false
		s.Env = map[string]string{"A": "1", "B": "x=y"}
		s.FilterEnv = []string{"APP_", "FO"}
		s.BaseEnv = f.baseEnv("APP_SECRET", "FOO")
		s.StopExitCodes = []int{0, 2}
		s.LogFile = filepath.Join(f.tendHome, "logs", "web.log")
		s.MaxMemoryRestart = 1 << 30
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromCommandLine spec (-want +got):\n%s", diff)
	}
	var wantWarnings []string
	if want.Instances > 1 { // a Node.js app in cluster mode without a port
		wantWarnings = []string{"-i: " + clusterWarning("--port", "--listen")}
	}
	if diff := cmp.Diff(wantWarnings, warnings); diff != "" {
		t.Errorf("FromCommandLine warnings (-want +got):\n%s", diff)
	}
}

// clusterWarning is the warning about cluster mode without a port, with
// the names the port is given under.
func clusterWarning(port, listen string) string {
	return "cluster mode without a port: tend balances connections among the instances only on the port given with " +
		port + " (or " + listen + "); without one, the instances run side by side, each on its own, " +
		"and a program that listens on a fixed port fails with EADDRINUSE in all but one"
}

// TestFromCommandLineWarnings: pm2's flags that tend does not act on yet
// are accepted with a warning, as their fields are in a file, and so is
// cluster mode without a port.
func TestFromCommandLineWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		fields []Field
		want   []string
	}{
		{"watch", []Field{{Key: "watch", Value: "true", Flag: "--watch"}},
			[]string{`--watch: "watch" is not supported yet; ignored`}},
		{"ignore_watch", []Field{{Key: "ignore_watch", Value: "node_modules", Flag: "--ignore-watch"}},
			[]string{`--ignore-watch: "ignore_watch" is not supported yet; ignored`}},
		{"cron_restart", []Field{{Key: "cron_restart", Value: "0 3 * * *", Flag: "--cron-restart"}},
			[]string{`--cron-restart: "cron_restart" is not supported yet; ignored`}},
		{"cron_restart 0 means none, as in pm2", []Field{{Key: "cron_restart", Value: "0", Flag: "--cron-restart"}}, nil},
		{"instances without a port (workers)", []Field{{Key: "instances", Value: "2", Flag: "--instances"}}, nil},
		{"exec_mode cluster without a port", []Field{{Key: "exec_mode", Value: "cluster", Flag: "--exec-mode"}},
			[]string{"--exec-mode: " + clusterWarning("--port", "--listen")}},
		{"instances with a port", []Field{{Key: "instances", Value: "2", Flag: "-i"}, {Key: "port", Value: "3000", Flag: "--port"}}, nil},
		{"instances with listen", []Field{{Key: "instances", Value: "2", Flag: "-i"}, {Key: "listen", Value: "/tmp/x.sock", Flag: "--listen"}}, nil},
		{"instances in fork mode", []Field{{Key: "instances", Value: "2", Flag: "-i"}, {Key: "exec_mode", Value: "fork", Flag: "--exec-mode"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.write(t, "run.sh", "")
			got, warnings, err := FromCommandLine("run.sh", nil, tt.fields, f.opts)
			if err != nil {
				t.Fatalf("FromCommandLine error:\n%v", err)
			}
			if diff := cmp.Diff(tt.want, warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if got.CronRestart != "" {
				t.Errorf("CronRestart = %q; want it left out, as it is not acted on", got.CronRestart)
			}
		})
	}
}

func TestFromCommandLineShell(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	got, _, err := FromCommandLine("python3 -m http.server", []string{"8000", "$HOME"}, nil, f.opts)
	if err != nil {
		t.Fatalf("FromCommandLine error:\n%v", err)
	}
	want := spec(func(s *api.AppSpec) {
		s.Name, s.Script, s.Shell, s.Cwd = "python3", "python3 -m http.server", true, f.dir
		s.Args = []string{"8000", "$HOME"}
		s.Command = []string{"/bin/sh", "-c", "python3 -m http.server 8000 '$HOME'"}
		s.BaseEnv = f.baseEnv()
	})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FromCommandLine spec (-want +got):\n%s", diff)
	}
}

// TestFromCommandLineLongShellLine checks that a command line longer than
// a file name can be is still taken as a command line, not as a bad path.
func TestFromCommandLineLongShellLine(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	line := "echo " + strings.Repeat("x", 300)
	got, _, err := FromCommandLine(line, nil, nil, f.opts)
	if err != nil {
		t.Fatalf("FromCommandLine(%d-byte line) error:\n%v", len(line), err)
	}
	if !got.Shell || got.Name != "echo" {
		t.Errorf("Shell, Name = %v, %q; want true, \"echo\"", got.Shell, got.Name)
	}
}

func TestFromCommandLineErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script string
		fields []Field
		want   []string
	}{
		{"bad field value", "run.sh", []Field{{Key: "kill_timeout", Value: "soon", Flag: "--kill-timeout"}},
			[]string{`--kill-timeout: "kill_timeout": duration "soon": want milliseconds or a value like "5s", "200ms", "1m"`}},
		{"bad number", "run.sh", []Field{{Key: "instances", Value: "four", Flag: "-i"}},
			[]string{`-i: "instances" must be a number or "max", got "four"`}},
		{"bad bool and signal together", "run.sh", []Field{
			{Key: "autorestart", Value: "maybe", Flag: "--autorestart"},
			{Key: "kill_signal", Value: "SIGNOPE", Flag: "--kill-signal"},
		}, []string{
			`--autorestart: "autorestart" must be true or false, got "maybe"`,
			`--kill-signal: "kill_signal": unknown signal "SIGNOPE" (use a name like SIGTERM or a number)`,
		}},
		{"unknown field", "run.sh", []Field{{Key: "instaces", Value: "2", Flag: "--instaces"}},
			[]string{`--instaces: unknown field "instaces" (did you mean "instances"?)`}},
		{"bad cron", "run.sh", []Field{{Key: "cron_restart", Value: "every day", Flag: "--cron-restart"}},
			[]string{`--cron-restart: "cron_restart" must be a cron expression with 5 or 6 fields (or @hourly, @daily...), got "every day"`}},
		{"bad env var", "run.sh", []Field{{Key: "env", Value: "NOEQUALS", Flag: "--env-var"}},
			[]string{`--env-var: want KEY=VALUE, got "NOEQUALS"`}},
		{"script not found", "nope.js", nil,
			[]string{`script "nope.js" not found (looked in $DIR and PATH)`}},
		{"no script", "", nil, []string{`no script given`}},
		{"typescript", "main.ts", nil,
			[]string{`"main.ts" is TypeScript, which needs an interpreter: set --interpreter (for example "tsx", "bun" or "ts-node")`}},
		{"missing interpreter", "run.sh", []Field{{Key: "interpreter", Value: "python9", Flag: "--interpreter"}},
			[]string{`--interpreter: interpreter "python9" not found (looked in PATH)`}},
		{"bad name", "run.sh", []Field{{Key: "name", Value: "123", Flag: "--name"}},
			[]string{`--name: app name "123" is a number, which would read as an id`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.write(t, "run.sh", "")
			f.write(t, "main.ts", "")
			got, _, err := FromCommandLine(tt.script, nil, tt.fields, f.opts)
			if !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("FromCommandLine(%q) = %+v, %v; want an error matching api.ErrInvalid", tt.script, got, err)
			}
			want := strings.ReplaceAll(strings.Join(tt.want, "\n"), "$DIR", f.dir)
			if diff := cmp.Diff(want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIsConfigFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		want bool
	}{
		{"tend.yaml", true}, {"tend.yml", true}, {"apps.json", true}, {"dir/ecosystem.config.js", true},
		{"ecosystem.config.cjs", true}, {"pm2.config.mjs", true}, {"ecosystem.js", true},
		{"ecosystem-prod.cjs", true}, {"Procfile", true}, {"/srv/Procfile.dev", true},
		{"server.js", false}, {"app.mjs", false}, {"run.sh", false}, {"main.py", false},
		{"procfile", false}, {"config.js.bak", false}, {"bin/server", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			if got := IsConfigFile(tt.path); got != tt.want {
				t.Errorf("IsConfigFile(%q) = %v; want %v", tt.path, got, tt.want)
			}
		})
	}
}

func TestShellSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{"  a  b\tc ", []string{"a", "b", "c"}, ""},
		{`--name 'my app' --x="a b"`, []string{"--name", "my app", "--x=a b"}, ""},
		{`"say \"hi\"" 'it''s' a\ b`, []string{`say "hi"`, "its", "a b"}, ""},
		{`'' ""`, []string{"", ""}, ""},
		{`'open`, nil, "unclosed single quote"},
		{`"open`, nil, "unclosed double quote"},
		{`end\`, nil, "trailing backslash"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := shellSplit(tt.in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if !cmp.Equal(got, tt.want) || gotErr != tt.wantErr {
				t.Errorf("shellSplit(%q) = %q, %q; want %q, %q", tt.in, got, gotErr, tt.want, tt.wantErr)
			}
		})
	}
}

// TestShellQuote has the real /bin/sh read quoted words back.
func TestShellQuote(t *testing.T) {
	t.Parallel()
	words := []string{"plain", "", "two words", "it's", `"$HOME"`, "a\nb", "`id`", "*", "--x=1,2"}
	line := "printf '%s|'"
	for _, w := range words {
		line += " " + shellQuote(w)
	}
	out, err := exec.Command("/bin/sh", "-c", line).Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", line, err)
	}
	if got, want := string(out), strings.Join(words, "|")+"|"; got != want {
		t.Errorf("sh read %q back as %q; want %q", line, got, want)
	}
}

func TestDidYouMean(t *testing.T) {
	t.Parallel()
	tests := []struct{ key, want string }{
		{"instaces", ` (did you mean "instances"?)`},
		{"scrpit", ` (did you mean "script"?)`},
		{"Script", ` (did you mean "script"?)`},
		{"maxRestarts", ` (did you mean "max_restarts"?)`},
		{"env-production", ` (did you mean "env_production"?)`},
		{"nam", ` (did you mean "name"?)`},
		{"zzz", ``},
		{"databases", ``},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			if got := suggest.DidYouMean(tt.key, knownKeys()); got != tt.want {
				t.Errorf("suggest.DidYouMean(%q) = %q; want %q", tt.key, got, tt.want)
			}
		})
	}
}

// TestKnownKeysAreHandled keeps knownKeys, canonical, ignored and set in
// step: every name offered as a suggestion must be accepted.
func TestKnownKeysAreHandled(t *testing.T) {
	t.Parallel()
	for _, key := range knownKeys() {
		r := &reporter{}
		d := &decoder{r: r, cpus: 1}
		d.set(newDraft(where{}), &member{key: key, v: &val{kind: kindString, text: "x"}})
		for _, e := range r.errs {
			if strings.Contains(e.Msg, "unknown field") {
				t.Errorf("known key %q is reported as unknown: %v", key, e)
			}
		}
	}
}
