package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tend-pm/tend/internal/api"
)

// TestLoadJSErrors runs the machine's node on JS config files with
// problems, and checks where the errors point in the JS source.
func TestLoadJSErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, content string
		environ             func(f *fixture) []string
		want                string
	}{
		{
			name: "unknown field at its key in the source",
			file: "ecosystem.config.js",
			content: `module.exports = {
  apps: [{
    name: "api",
    script: "run.sh",
    instaces: 4,
  }],
};
`,
			want: `ecosystem.config.js:5:5: unknown field "instaces" (did you mean "instances"?)`,
		},
		{
			name: "quoted key",
			file: "ecosystem.config.cjs",
			content: `module.exports = { apps: [ { "script": "run.sh", 'kill_timeout': "soon" } ] };
`,
			want: `ecosystem.config.cjs:1:50: "kill_timeout": duration "soon": want milliseconds or a value like "5s", "200ms", "1m"`,
		},
		{
			name: "key written twice gives the path",
			file: "ecosystem.config.mjs",
			content: `export default {
  apps: [
    { name: "a", script: "run.sh", instances: 2 },
    { name: "b", script: "run.sh", instances: "four" },
  ],
};
`,
			want: `ecosystem.config.mjs: apps[1].instances: "instances" must be a number or "max", got "four"`,
		},
		{
			name: "syntax error in CommonJS",
			file: "bad.config.js",
			content: `module.exports = {
  apps: [
    { name: "a" script: "x" }
  ]
};
`,
			want: `bad.config.js:3:17: node could not evaluate the file: SyntaxError: Unexpected identifier 'script'`,
		},
		{
			name:    "syntax error in an ES module",
			file:    "bad.config.mjs",
			content: "export default {\n  apps: [\n    { name: \"a\" script: \"x\" }\n  ]\n};\n",
			want:    `bad.config.mjs:3:17: node could not evaluate the file: SyntaxError: Unexpected identifier 'script'`,
		},
		{
			name:    "the file throws",
			file:    "throw.config.cjs",
			content: "\nif (!process.env.NOPE) { throw new Error(\"set NOPE first\") }\n",
			want:    `throw.config.cjs:2:32: node could not evaluate the file: Error: set NOPE first`,
		},
		{
			name:    "the file throws a string",
			file:    "throws.config.mjs",
			content: "throw 'no';\n",
			want:    `throws.config.mjs: node could not evaluate the file: Error: the file threw no`,
		},
		{
			name:    "the file exits",
			file:    "exit.config.js",
			content: "process.exit(0);\n",
			want:    `exit.config.js: node printed no configuration (does the file call process.exit?)`,
		},
		{
			name:    "the file exports nothing",
			file:    "nothing.config.mjs",
			content: "export default null;\n",
			want:    `nothing.config.mjs: the file must hold {apps: [...]}, a list of apps, or one app, got null`,
		},
		{
			name:    "node missing",
			file:    "ecosystem.config.js",
			content: "module.exports = {apps: []};\n",
			environ: func(f *fixture) []string { return []string{"PATH=" + f.bin} },
			want: `ecosystem.config.js: node is needed to read JS config files, and it is not in PATH ` +
				`(install Node.js, or write the config as .yaml or .json, which need no node)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.write(t, "run.sh", "")
			o := f.opts
			if tt.environ != nil {
				o.Environ = tt.environ(f)
			} else {
				f.needNode(t)
			}
			f.write(t, tt.file, tt.content)
			got, err := Load(tt.file, o)
			if got != nil {
				t.Errorf("Load(%q) returned %d apps; want none", tt.file, len(got.Apps))
			}
			if !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("Load(%q) error %v does not match api.ErrInvalid", tt.file, err)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("Load(%q) error mismatch (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

// TestLoadJSEnvironment checks that node sees the CLI's environment (pm2
// files read process.env) and the file's directory as its cwd.
func TestLoadJSEnvironment(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.needNode(t)
	f.write(t, "run.sh", "")
	f.write(t, "sub/name.json", `"from-a-json-file"`)
	f.write(t, "sub/ecosystem.config.js", `module.exports = {
  apps: [{ name: require("./name.json"), script: "../run.sh", env: { WHERE: process.cwd(), FOO: process.env.FOO } }],
};
`)
	got := mustLoad(t, "sub/ecosystem.config.js", f.opts)
	a := got.Apps[0]
	want := map[string]string{"WHERE": f.dir + "/sub", "FOO": "bar"}
	if a.Name != "from-a-json-file" || !cmp.Equal(want, a.Env) {
		t.Errorf("Name, Env = %q, %v; want %q, %v", a.Name, a.Env, "from-a-json-file", want)
	}
	if !strings.HasSuffix(a.Script, "/proj/run.sh") || a.Cwd != f.dir+"/sub" {
		t.Errorf("Script, Cwd = %q, %q; want the script in the project resolved from the file's directory", a.Script, a.Cwd)
	}
}

func TestFindKey(t *testing.T) {
	t.Parallel()
	src := []byte("const a = {\n  port: 1, portal: 2,\n  'name': \"x\", name2: 3, é: 'instances',\n}\n")
	tests := []struct {
		key       string
		line, col int
		ok        bool
	}{
		{"port", 2, 3, true},
		{"portal", 2, 12, true},
		{"name", 3, 3, true},
		{"instances", 3, 29, true},
		{"a", 1, 7, true},
		{"x", 3, 11, true},
		{"missing", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			line, col, ok := findKey(src, tt.key)
			if line != tt.line || col != tt.col || ok != tt.ok {
				t.Errorf("findKey(%q) = %d, %d, %v; want %d, %d, %v", tt.key, line, col, ok, tt.line, tt.col, tt.ok)
			}
		})
	}
}
