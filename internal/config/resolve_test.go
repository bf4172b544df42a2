package config

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tend-pm/tend/internal/api"
)

// TestLoadScriptResolution checks how each kind of script is run. In the
// wanted values, $DIR is the project, $BIN the PATH directory of stand-in
// interpreters and $NODE the machine's node.
func TestLoadScriptResolution(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		app      string          // YAML of one app
		files    map[string]bool // files to create in the project: name → executable
		command  []string        // wanted Command
		interp   string          // wanted Interpreter
		shell    bool            // wanted Shell
		wantName string          // wanted Name
	}{
		{"js runs with node", "script: server.js", map[string]bool{"server.js": false},
			[]string{"$NODE", "$DIR/server.js"}, "$NODE", false, "server"},
		{"mjs runs with node", "script: server.mjs\nnode_args: --inspect", map[string]bool{"server.mjs": false},
			[]string{"$NODE", "--inspect", "$DIR/server.mjs"}, "$NODE", false, "server"},
		{"py runs with python3", "script: job.py\nargs: [-v]", map[string]bool{"job.py": false},
			[]string{"$BIN/python3", "$DIR/job.py", "-v"}, "$BIN/python3", false, "job"},
		{"sh runs with bash", "script: run.sh", map[string]bool{"run.sh": true},
			[]string{"$BIN/bash", "$DIR/run.sh"}, "$BIN/bash", false, "run"},
		{"rb runs with ruby", "script: app.rb", map[string]bool{"app.rb": false},
			[]string{"$BIN/ruby", "$DIR/app.rb"}, "$BIN/ruby", false, "app"},
		{"php runs with php", "script: index.php", map[string]bool{"index.php": false},
			[]string{"$BIN/php", "$DIR/index.php"}, "$BIN/php", false, "index"},
		{"pl runs with perl", "script: a.pl", map[string]bool{"a.pl": false},
			[]string{"$BIN/perl", "$DIR/a.pl"}, "$BIN/perl", false, "a"},
		{"ts with an explicit interpreter", "script: main.ts\ninterpreter: tsx", map[string]bool{"main.ts": false},
			[]string{"$BIN/tsx", "$DIR/main.ts"}, "$BIN/tsx", false, "main"},
		{"interpreter given by path", "script: main.ts\ninterpreter: ../bin/tsx", map[string]bool{"main.ts": false},
			[]string{"$BIN/tsx", "$DIR/main.ts"}, "$BIN/tsx", false, "main"},
		{"executable without extension runs directly", "script: bin/server\nargs: --port 80", map[string]bool{"bin/server": true},
			[]string{"$DIR/bin/server", "--port", "80"}, "", false, "server"},
		{"interpreter none runs a js file directly", "script: tool.js\ninterpreter: none", map[string]bool{"tool.js": true},
			[]string{"$DIR/tool.js"}, "", false, "tool"},
		{"one word found in PATH", "script: myserver\nargs: [a b]", nil,
			[]string{"$BIN/myserver", "a b"}, "", false, "myserver"},
		{"absolute path", "script: /bin/sh\nargs: [-c, exit]", nil,
			[]string{"/bin/sh", "-c", "exit"}, "", false, "sh"},
		{"command line runs with sh", "script: python3 -m http.server\nargs: [\"8000\", \"it's\"]", nil,
			[]string{"/bin/sh", "-c", `python3 -m http.server 8000 'it'\''s'`}, "", true, "python3"},
		{"file with a space in its name is a file", "script: my app.sh", map[string]bool{"my app.sh": false},
			[]string{"$BIN/bash", "$DIR/my app.sh"}, "$BIN/bash", false, "my app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			expand := strings.NewReplacer("$DIR", f.dir, "$BIN", f.bin, "$NODE", f.node).Replace
			if strings.Contains(strings.Join(tt.command, " "), "$NODE") {
				f.needNode(t)
			}
			for name, exe := range tt.files {
				if exe {
					f.writeExec(t, name, "")
				} else {
					f.write(t, name, "")
				}
			}
			f.write(t, "tend.yaml", tt.app+"\n")
			a := mustLoad(t, "tend.yaml", f.opts).Apps[0]
			want := make([]string, len(tt.command))
			for i, c := range tt.command {
				want[i] = expand(c)
			}
			if diff := cmp.Diff(want, a.Command); diff != "" {
				t.Errorf("Command (-want +got):\n%s", diff)
			}
			if interp := expand(tt.interp); a.Interpreter != interp || a.Shell != tt.shell || a.Name != tt.wantName {
				t.Errorf("Interpreter, Shell, Name = %q, %v, %q; want %q, %v, %q", a.Interpreter, a.Shell, a.Name, interp, tt.shell, tt.wantName)
			}
		})
	}
}

func TestLoadInstances(t *testing.T) {
	t.Parallel()
	cpus := runtime.NumCPU()
	tests := []struct {
		value string
		want  int
	}{
		{"3", 3}, {`"2"`, 2}, {"max", cpus}, {"0", cpus}, {"-1", max(cpus-1, 1)}, {"-1000", 1},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.write(t, "run.sh", "")
			f.write(t, "tend.yaml", "script: run.sh\ninstances: "+tt.value+"\n")
			if got := mustLoad(t, "tend.yaml", f.opts).Apps[0].Instances; got != tt.want {
				t.Errorf("instances: %s gave %d; want %d", tt.value, got, tt.want)
			}
		})
	}
}

func TestLoadLogPaths(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.write(t, "run.sh", "")
	f.write(t, "tend.yaml", "script: run.sh\ncwd: .\nout: /dev/null\nerror_file: ~/err.log\nlog: all.log\nlog_rotate_interval: daily\nlog_max_size: 1M\nlog_retain: 3\nlog_compress: false\n")
	a := mustLoad(t, "tend.yaml", f.opts).Apps[0]
	got := []any{a.OutFile, a.ErrorFile, a.LogFile, a.LogRotateInterval, a.LogMaxSize, a.LogRetain, a.LogCompress}
	want := []any{"/dev/null", filepath.Join(f.home, "err.log"), filepath.Join(f.dir, "all.log"),
		api.Duration(24 * time.Hour), api.ByteSize(1 << 20), 3, false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("log fields (-want +got):\n%s", diff)
	}
}
