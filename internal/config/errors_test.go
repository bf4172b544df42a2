package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tend-pm/tend/internal/api"
)

// TestLoadErrors checks each kind of problem and the exact position it is
// reported at. Every case also checks that no apps come back and that the
// error maps to api.ErrInvalid.
func TestLoadErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		file    string
		content string
		setup   func(t *testing.T, f *fixture)
		opts    func(o *Options)
		want    []string // the lines of the error
	}{
		{
			name: "unknown field with suggestion",
			file: "bad.yaml",
			content: `apps:
  - name: api
    script: run.sh
  - name: worker
    script: run.sh
    instaces: 4
`,
			want: []string{`bad.yaml:6:5: unknown field "instaces" (did you mean "instances"?)`},
		},
		{
			name:    "unknown field without a close name",
			file:    "far.yaml",
			content: "script: run.sh\nfrobnicate: 1\nkillTimeout: 5\n",
			want: []string{
				`far.yaml:2:1: unknown field "frobnicate"`,
				`far.yaml:3:1: unknown field "killTimeout" (did you mean "kill_timeout"?)`,
			},
		},
		{
			name:    "wrong type in json",
			file:    "bad2.json",
			content: `{"apps": [{"name": "api", "script": "run.sh", "instances": "four"}]}`,
			want:    []string{`bad2.json:1:60: "instances" must be a number or "max", got "four"`},
		},
		{
			name:    "wrong types",
			file:    "types.yaml",
			content: "script: run.sh\nautorestart: sometimes\nenv: [A=1]\nargs: {a: 1}\nport: 70000\nname: [x]\n",
			want: []string{
				`types.yaml:2:14: "autorestart" must be true or false, got "sometimes"`,
				`types.yaml:3:6: "env" must be a map of variables, got a list`,
				`types.yaml:4:7: "args" must be a string or a list of strings, got a map`,
				`types.yaml:5:7: "port" must be a port number (1 to 65535), got 70000`,
				`types.yaml:6:7: "name" must be a string, got a list`,
			},
		},
		{
			name:    "bad duration",
			file:    "dur.yaml",
			content: "script: run.sh\nkill_timeout: 5 seconds\nmin_uptime: -5\n",
			want: []string{
				`dur.yaml:2:15: "kill_timeout": duration "5 seconds": want milliseconds or a value like "5s", "200ms", "1m"`,
				`dur.yaml:3:13: "min_uptime" must not be negative, got -5`,
			},
		},
		{
			name:    "bad size",
			file:    "size.yaml",
			content: "script: run.sh\nmax_memory_restart: 10X\n",
			want:    []string{`size.yaml:2:21: "max_memory_restart": size "10X": want bytes or a value like "512K", "10M", "1G"`},
		},
		{
			name:    "bad signal",
			file:    "sig.yaml",
			content: "script: run.sh\nkill_signal: SIGFOO\n",
			want:    []string{`sig.yaml:2:14: "kill_signal": unknown signal "SIGFOO" (use a name like SIGTERM or a number)`},
		},
		{
			name:    "yaml syntax error",
			file:    "syntax.yaml",
			content: "apps:\n  - name: api\n    script: \"server.js\n    instances: 4\n",
			want:    []string{`syntax.yaml:3:13: could not find end character of double-quoted text`},
		},
		{
			name:    "json syntax error",
			file:    "syntax.json",
			content: "{\n  \"apps\": [\n    {\"name\": \"api\" \"script\": \"run.sh\"}\n  ]\n}\n",
			want:    []string{`syntax.json:3:20: invalid character '"' after object value (expecting ',' or '}')`},
		},
		{
			name:    "json error after comments is at its place in the original",
			file:    "comments.json",
			content: "// header\n{\"apps\": [ /* one */ {\"script\": \"run.sh\", \"port\": true,}, ], }\n",
			want:    []string{`comments.json:2:51: "port" must be a port number (1 to 65535), got true`},
		},
		{
			name:    "duplicate app names",
			file:    "dup.yaml",
			content: "apps:\n  - name: web\n    script: run.sh\n  - script: run.sh\n  - name: web\n    script: run.sh\n",
			want:    []string{`dup.yaml:5:11: app name "web" is used twice (first at line 2)`},
		},
		{
			name:    "duplicate default names",
			file:    "dup2.yaml",
			content: "- script: run.sh\n- script: ./run.sh\n",
			want:    []string{`dup2.yaml:2:3: app name "run" is used twice (first at line 1)`},
		},
		{
			name:    "duplicate key",
			file:    "key.yaml",
			content: "script: run.sh\nname: a\nname: b\n",
			want:    []string{`key.yaml:3:1: key "name" is given twice (first at line 2)`},
		},
		{
			name:    "alias of a field given too",
			file:    "alias.yaml",
			content: "script: run.sh\nexec: run.sh\n",
			want:    []string{`alias.yaml:2:1: "script" and "exec" set the same field; keep one`},
		},
		{
			name:    "unknown --env name",
			file:    "env.yaml",
			content: "- {script: run.sh, env_production: {A: 1}}\n- {name: b, script: run.sh, env_staging: {A: 2}}\n",
			opts:    func(o *Options) { o.EnvName = "prod" },
			want:    []string{`env.yaml: unknown environment "prod": the file defines "production", "staging"`},
		},
		{
			name:    "--env with no environments",
			file:    "noenv.yaml",
			content: "script: run.sh\n",
			opts:    func(o *Options) { o.EnvName = "prod" },
			want:    []string{`noenv.yaml: unknown environment "prod": the file defines no env_<name> sections`},
		},
		{
			name:    "unknown --only name",
			file:    "only.yaml",
			content: "- {name: a, script: run.sh}\n- {name: b, script: run.sh}\n",
			opts:    func(o *Options) { o.Only = []string{"a", "c"} },
			want:    []string{`only.yaml: --only: no app named "c" (the file has "a", "b")`},
		},
		{
			name:    "missing script",
			file:    "missing.yaml",
			content: "name: api\nscript: server.js\n",
			want:    []string{`missing.yaml:2:9: script "server.js" not found (looked in $DIR and PATH)`},
		},
		{
			name:    "missing script path",
			file:    "missing2.yaml",
			content: "script: ./bin/server\n",
			want:    []string{`missing2.yaml:1:9: script "./bin/server" not found (looked in $DIR)`},
		},
		{
			name:    "no script field",
			file:    "noscript.yaml",
			content: "apps:\n  - name: api\n    instances: 2\n",
			want:    []string{`noscript.yaml:2:5: app has no "script" (the file or command to run)`},
		},
		{
			name:    "directory as script",
			file:    "dir.yaml",
			content: "script: sub\n",
			setup:   func(t *testing.T, f *fixture) { f.write(t, "sub/x", "") },
			want:    []string{`dir.yaml:1:9: "sub" is a directory, not a script`},
		},
		{
			name:    "non-executable file without interpreter",
			file:    "noexec.yaml",
			content: "script: server\n",
			setup:   func(t *testing.T, f *fixture) { f.write(t, "server", "") },
			want:    []string{`noexec.yaml:1:9: "server" is not executable and its extension names no interpreter (chmod +x it, or set "interpreter")`},
		},
		{
			name:    "missing interpreter",
			file:    "interp.yaml",
			content: "script: run.sh\ninterpreter: python9\n",
			want:    []string{`interp.yaml:2:14: interpreter "python9" not found (looked in PATH)`},
		},
		{
			name:    "interpreter for the extension not in PATH",
			file:    "noperl.yaml",
			content: "script: a.pl\n",
			setup:   func(t *testing.T, f *fixture) { f.write(t, "a.pl", "") },
			opts:    func(o *Options) { o.Environ = []string{"PATH=/nonexistent"} },
			want:    []string{`noperl.yaml:1:9: "a.pl" needs the interpreter "perl", which is not in PATH (install it, or set "interpreter")`},
		},
		{
			name:    "typescript needs an interpreter",
			file:    "ts.yaml",
			content: "script: main.ts\n",
			setup:   func(t *testing.T, f *fixture) { f.write(t, "main.ts", "") },
			want:    []string{`ts.yaml:1:9: "main.ts" is TypeScript, which needs an interpreter: set "interpreter" (for example "tsx", "bun" or "ts-node")`},
		},
		{
			name: "one bad app among good ones",
			file: "mixed.yaml",
			content: `apps:
  - name: one
    script: run.sh
  - name: two
    script: run.sh
    kill_signal: NOPE
  - name: three
    script: run.sh
`,
			want: []string{`mixed.yaml:6:18: "kill_signal": unknown signal "NOPE" (use a name like SIGTERM or a number)`},
		},
		{
			name:    "every problem of the file",
			file:    "many.yaml",
			content: "- {script: run.sh, instaces: 2}\n- {script: nope.sh, name: b}\n- {name: all, script: run.sh}\n- 42\n",
			want: []string{
				`many.yaml:1:20: unknown field "instaces" (did you mean "instances"?)`,
				`many.yaml:2:12: script "nope.sh" not found (looked in $DIR and PATH)`,
				`many.yaml:3:10: app name "all" is reserved (it means every app)`,
				`many.yaml:4:3: an app must be a map of fields, got 42`,
			},
		},
		{
			name:    "unknown top-level key",
			file:    "top.yaml",
			content: "apps:\n  - script: run.sh\napp_defaults: {}\n",
			want:    []string{`top.yaml:3:1: unknown top-level key "app_defaults"`},
		},
		{
			name:    "empty file",
			file:    "empty.yaml",
			content: "# nothing yet\n",
			want:    []string{`empty.yaml: the file is empty`},
		},
		{
			name:    "bad cron and exit codes",
			file:    "cron.yaml",
			content: "script: run.sh\ncron_restart: every day\nstop_exit_codes: [0, 300]\nexec_mode: swarm\n",
			want: []string{
				`cron.yaml:2:15: "cron_restart" must be a cron expression with 5 or 6 fields (or @hourly, @daily...), got "every day"`,
				`cron.yaml:3:22: "stop_exit_codes" must be exit codes (0 to 255), got 300`,
				`cron.yaml:4:12: "exec_mode" must be "fork" or "cluster", got "swarm"`,
			},
		},
		{
			name:    "bad args quoting",
			file:    "args.yaml",
			content: "script: run.sh\nargs: --name 'my app\n",
			want:    []string{`args.yaml:2:7: "args": unclosed single quote in "--name 'my app"`},
		},
		{
			name:    "procfile errors",
			file:    "Procfile",
			content: "web: run.sh\n\njust a line\nworker:\nweb: other\n",
			want: []string{
				`Procfile:3:1: want "name: command", got "just a line"`,
				`Procfile:4:8: process "worker" has no command`,
				`Procfile:5:1: app name "web" is used twice (first at line 1)`,
			},
		},
		{
			name:    "cwd that does not exist",
			file:    "cwd.yaml",
			content: "script: run.sh\ncwd: nowhere\n",
			want:    []string{`cwd.yaml:2:6: cwd "nowhere" does not exist`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.write(t, "run.sh", "#!/bin/sh\n")
			if tt.setup != nil {
				tt.setup(t, f)
			}
			f.write(t, tt.file, tt.content)
			o := f.opts
			if tt.opts != nil {
				tt.opts(&o)
			}
			got, err := Load(tt.file, o)
			if got != nil {
				t.Errorf("Load(%q) returned %d apps; want none", tt.file, len(got.Apps))
			}
			if !errors.Is(err, api.ErrInvalid) {
				t.Errorf("Load(%q) error %v does not match api.ErrInvalid", tt.file, err)
			}
			if err == nil {
				return
			}
			want := strings.ReplaceAll(strings.Join(tt.want, "\n"), "$DIR", f.dir)
			if diff := cmp.Diff(want, err.Error()); diff != "" {
				t.Errorf("Load(%q) error mismatch (-want +got):\n%s", tt.file, diff)
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) != len(tt.want) {
				t.Errorf("Load(%q) error is %T with %d problems; want an ErrorList of %d", tt.file, err, len(list), len(tt.want))
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"position", &Error{Path: "a.yaml", Line: 3, Col: 7, Msg: "bad"}, "a.yaml:3:7: bad"},
		{"line only", &Error{Path: "a.js", Line: 3, Msg: "bad"}, "a.js:3: bad"},
		{"no position", &Error{Path: "a.yaml", Msg: "bad"}, "a.yaml: bad"},
		{"flag", &Error{Path: "--kill-timeout", Msg: "bad"}, "--kill-timeout: bad"},
		{"no path", &Error{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q; want %q", got, tt.want)
			}
			if !errors.Is(tt.err, api.ErrInvalid) {
				t.Errorf("errors.Is(%v, api.ErrInvalid) = false", tt.err)
			}
		})
	}
}

func TestTooManyErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var b strings.Builder
	b.WriteString("script: run.sh\n")
	for i := range 30 {
		b.WriteString("bogus" + strings.Repeat("x", i) + ": 1\n")
	}
	f.write(t, "run.sh", "")
	f.write(t, "many.yaml", b.String())
	_, err := Load("many.yaml", f.opts)
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Load error = %v; want an ErrorList", err)
	}
	if len(list) != maxErrors+1 || !strings.Contains(list[maxErrors].Msg, "too many errors") {
		t.Errorf("got %d errors, last %q; want %d and a note that more were dropped", len(list), list[len(list)-1], maxErrors+1)
	}
}
