// Package config turns what a user wrote — a config file (pm2's ecosystem
// format in YAML, JSON or JS, or a Procfile), or the flags of
// `tend start <script>` — into validated, fully resolved api.AppSpec values.
//
// Everything that depends on the user's side is settled here, on the CLI's
// side: relative paths, the interpreter and the PATH it is found in, the
// inherited environment. The daemon stores and runs the result without
// guessing. Every problem names file:line:column (or the flag), all the
// problems of a file are reported at once, and a file with any problem
// yields no apps, so a bad file changes nothing.
//
// How a script is run, in order:
//  1. interpreter "none": the file (or the program found in PATH) runs directly;
//  2. another interpreter: it is looked up (an absolute path, or PATH) and runs the file;
//  3. an existing file: the interpreter follows the extension, as in pm2
//     (.js .mjs .cjs node, .py python3, .sh bash, .rb ruby, .php php, .pl perl);
//     with no known extension the file must be executable;
//  4. a directory is an error;
//  5. no such file, and whitespace in it: a command line for /bin/sh -c;
//  6. no such file, one word: a program found in PATH;
//  7. otherwise the script is not found.
//
// The package is pure apart from reading files, looking up executables and
// running node for JS config files.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
	"github.com/tailscale/hujson"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/suggest"
)

// Options carry what the CLI knows about the user's side.
type Options struct {
	Cwd     string   // the CLI's working directory (absolute); "" means this process's
	Environ []string // the CLI's environment (os.Environ()); PATH lookups and BaseEnv come from it
	EnvName string   // --env <name>: overlay env_<name> on env; unknown name in a file = error listing the known ones
	Only    []string // --only a,b: keep only these apps (unknown name = error listing the app names)
}

// File is a parsed, resolved config file.
type File struct {
	Path     string        // absolute path of the file
	Apps     []api.AppSpec // in file order, each passing Validate()
	Warnings []string      // e.g. `tend.yaml:7:5: "watch" is not supported yet; ignored`
}

// Field is one setting given on the command line, under its pm2 field name.
type Field struct {
	Key   string // pm2 field name, e.g. "kill_timeout", "name", "autorestart"
	Value string // as typed, e.g. "3000", "false"
	Flag  string // the flag it came from, e.g. "--kill-timeout", for error messages
}

// hujsonPos matches the position hujson puts in its errors.
// It is compiled on first use: every tend command links this package, and
// `tend ls` should not pay for regexps it never runs.
var hujsonPos = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^hujson: line (\d+), column (\d+): (.*)$`)
})

// IsConfigFile reports whether path names a config file by its name alone:
// *.json, *.yaml, *.yml, *.config.js|.cjs|.mjs, ecosystem*.js|.cjs|.mjs,
// Procfile, Procfile.*. `tend start x` uses it to tell a config file from a
// script.
func IsConfigFile(path string) bool {
	return format(path) != "" && (format(path) != "js" || isJSConfigName(filepath.Base(path)))
}

func isJSConfigName(base string) bool {
	for _, ext := range []string{".js", ".cjs", ".mjs"} {
		if stem, ok := strings.CutSuffix(base, ext); ok {
			return strings.HasSuffix(stem, ".config") || strings.HasPrefix(stem, "ecosystem")
		}
	}
	return false
}

// format names how a file is read: "yaml", "json", "js", "procfile", or ""
// when its name says nothing. Any .js file given to Load is read as a
// config file; only IsConfigFile is stricter.
func format(path string) string {
	base := filepath.Base(path)
	if base == "Procfile" || strings.HasPrefix(base, "Procfile.") {
		return "procfile"
	}
	switch strings.ToLower(filepath.Ext(base)) {
	case ".yaml", ".yml":
		return "yaml"
	case ".json":
		return "json"
	case ".js", ".cjs", ".mjs":
		return "js"
	}
	return ""
}

// Load reads, parses, validates and resolves the config file at path
// (relative to Options.Cwd). A file with any error returns no apps: the
// error, an ErrorList, lists every problem found, each naming path as given
// so that messages read as the user typed the command.
func Load(path string, o Options) (*File, error) {
	u, uerr := newUser(o)
	if uerr != nil {
		return nil, ErrorList{uerr}
	}
	abs := u.abs(u.cwd, path)
	r := &reporter{file: path}
	src, err := os.ReadFile(abs)
	if err != nil {
		var pe *fs.PathError
		msg := err.Error()
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		return nil, ErrorList{{Path: path, Msg: msg, err: err}}
	}
	src = bytes.TrimPrefix(src, []byte("\uFEFF")) // editors show no BOM, so columns count without it
	d := &decoder{r: r, cpus: runtime.NumCPU()}
	var drafts []*draft
	switch f := format(abs); f {
	case "procfile":
		drafts = parseProcfile(src, r)
		if len(drafts) == 0 && !r.failed() {
			r.add(&Error{Path: path, Msg: "the file defines no processes"})
		}
	case "yaml", "json":
		if root := parseYAML(src, f == "json", r); root != nil {
			drafts = d.file(root)
		}
	case "js":
		if root := evalJS(abs, u, o.Environ, r); root != nil {
			r.js = src
			drafts = d.file(root)
		}
	default:
		r.add(&Error{Path: path, Msg: "unknown kind of config file (want .yaml, .yml, .json, .js, .cjs, .mjs or a Procfile)"})
	}

	rs := &resolver{u: u, r: r, envName: o.EnvName, dir: filepath.Dir(abs), source: abs}
	checkEnvName(drafts, o.EnvName, r)
	var apps []api.AppSpec
	first := map[string]where{}
	for _, a := range drafts {
		if a == nil || a.bad {
			continue
		}
		s, ok := rs.resolve(a)
		if !ok {
			continue
		}
		at := a.at
		if a.hasName {
			at = a.nameAt
		}
		if prev, dup := first[s.Name]; dup {
			r.errorf(at, "app name %q is used twice (first %s)", s.Name, prev.describe())
			continue
		}
		first[s.Name] = at
		apps = append(apps, s)
	}
	apps = only(apps, o.Only, r)
	if err := r.err(); err != nil {
		return nil, err
	}
	return &File{Path: abs, Apps: apps, Warnings: r.warnings()}, nil
}

// describe says where w is, for "first at ..." notes.
func (w where) describe() string {
	if w.line > 0 {
		return "at line " + strconv.Itoa(w.line)
	}
	return "in " + w.path
}

// checkEnvName reports an --env name that no app of the file defines: a
// typo there would otherwise start the apps with the wrong environment.
func checkEnvName(drafts []*draft, name string, r *reporter) {
	if name == "" || len(drafts) == 0 {
		return
	}
	var known []string
	for _, a := range drafts {
		if a == nil {
			continue
		}
		for n := range a.envs {
			if n == name {
				return
			}
			if !slices.Contains(known, n) {
				known = append(known, n)
			}
		}
	}
	if len(known) == 0 {
		r.add(&Error{Path: r.file, Msg: fmt.Sprintf("unknown environment %q: the file defines no env_<name> sections", name)})
		return
	}
	slices.Sort(known)
	r.add(&Error{Path: r.file, Msg: fmt.Sprintf("unknown environment %q: the file defines %s", name, quoteList(known))})
}

// only keeps the apps named in names, in file order.
func only(apps []api.AppSpec, names []string, r *reporter) []api.AppSpec {
	if len(names) == 0 || r.failed() {
		return apps
	}
	var all []string
	for _, a := range apps {
		all = append(all, a.Name)
	}
	for _, n := range names {
		if !slices.Contains(all, n) {
			r.add(&Error{Path: r.file, Msg: fmt.Sprintf("--only: no app named %q (the file has %s)", n, quoteList(all))})
		}
	}
	return slices.DeleteFunc(apps, func(a api.AppSpec) bool { return !slices.Contains(names, a.Name) })
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// parseYAML parses a YAML or JSON file into vals. JSON first goes through
// hujson, since pm2 reads .json files as JS literals and real ones carry
// comments and trailing commas; hujson blanks those out without moving a
// byte, so positions still point into the original file.
func parseYAML(src []byte, isJSON bool, r *reporter) *val {
	if isJSON {
		std, err := hujson.Standardize(slices.Clone(src))
		if err != nil {
			e := &Error{Path: r.file, Msg: err.Error()}
			if m := hujsonPos().FindStringSubmatch(err.Error()); m != nil {
				e.Line, _ = strconv.Atoi(m[1])
				e.Col, _ = strconv.Atoi(m[2])
				e.Msg = m[3]
			}
			r.add(e)
			return nil
		}
		src = std
	}
	f, err := parser.ParseBytes(src, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		e := &Error{Path: r.file, Msg: err.Error()}
		var te interface {
			GetToken() *token.Token
			GetMessage() string
		}
		if errors.As(err, &te) && te.GetToken() != nil {
			e.Line, e.Col, e.Msg = te.GetToken().Position.Line, te.GetToken().Position.Column, te.GetMessage()
		}
		r.add(e)
		return nil
	}
	var body ast.Node
	for _, doc := range f.Docs {
		switch {
		case doc.Body == nil:
		case body != nil:
			r.errorf(posOf(doc.Body, "", ""), "a config file holds one YAML document; this is a second one")
			return nil
		default:
			body = doc.Body
		}
	}
	if body == nil {
		r.add(&Error{Path: r.file, Msg: "the file is empty"})
		return nil
	}
	c := &converter{r: r, anchors: map[string]*val{}}
	return c.node(body, "", "")
}

// file decodes the top level: pm2's {apps: [...]}, a list of apps, or one
// app.
func (d *decoder) file(root *val) []*draft {
	switch {
	case root.kind == kindList:
		return d.apps(root)
	case root.kind == kindMap && (root.get("apps") != nil || root.get("deploy") != nil || root.get("static") != nil):
		var drafts []*draft
		for _, m := range root.items {
			switch m.key {
			case "apps":
				if m.v.kind == kindMap {
					drafts = append(drafts, d.app(m.v))
				} else if m.v.kind != kindList {
					d.r.errorf(m.v.at, "\"apps\" must be a list of apps, got %s", m.v.describe())
				} else {
					drafts = append(drafts, d.apps(m.v)...)
				}
			case "deploy":
				d.r.warnf(m.at, "\"deploy\" is not supported (tend does not deploy code)")
			case "static":
				d.r.warnf(m.at, "\"static\" is not supported (use a web server app)")
			default:
				d.r.errorf(m.at, "unknown top-level key %q%s", m.key, suggest.DidYouMean(m.key, []string{"apps", "deploy", "static"}))
			}
		}
		if root.get("apps") == nil {
			d.r.errorf(root.at, "the file has no \"apps\"")
		}
		return drafts
	case root.kind == kindMap:
		return []*draft{d.app(root)}
	}
	d.r.errorf(root.at, "the file must hold {apps: [...]}, a list of apps, or one app, got %s", root.describe())
	return nil
}

func (d *decoder) apps(list *val) []*draft {
	if len(list.list) == 0 {
		d.r.errorf(list.at, "the list of apps is empty")
	}
	drafts := make([]*draft, 0, len(list.list))
	for _, v := range list.list {
		drafts = append(drafts, d.app(v))
	}
	return drafts
}

// FromCommandLine builds the spec for `tend start <script> [flags] [-- args]`.
// fields are applied in order (a repeated field overrides, except env and
// filter_env, which add up); args come after any "args" field. The
// warnings name the flag they are about, e.g. `--watch: "watch" is not
// supported yet; ignored`.
func FromCommandLine(script string, args []string, fields []Field, o Options) (api.AppSpec, []string, error) {
	u, uerr := newUser(o)
	if uerr != nil {
		return api.AppSpec{}, nil, ErrorList{uerr}
	}
	r := &reporter{}
	d := &decoder{r: r, cpus: runtime.NumCPU()}
	a := newDraft(where{})
	a.script, a.hasScript = script, true
	if script == "" {
		r.errorf(where{}, "no script given")
	}
	for _, f := range fields {
		d.set(a, &member{key: f.Key, at: where{path: f.Flag, key: f.Key}, v: cmdVal(f)})
	}
	a.args = append(a.args, args...)
	if r.failed() {
		return api.AppSpec{}, nil, r.err()
	}
	rs := &resolver{u: u, r: r, dir: u.cwd}
	s, ok := rs.resolve(a)
	if err := r.err(); err != nil || !ok {
		return api.AppSpec{}, nil, err
	}
	return s, r.warnings(), nil
}
