package config

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// jsTimeout bounds the evaluation of a JS config file: such a file is a
// program, and one that waits on something must not hang the CLI.
const jsTimeout = 10 * time.Second

// nodeScript imports the config file (CommonJS or ES module alike, as pm2
// does) and writes its default export (or, with none, its named exports)
// as JSON on fd 3, so that whatever the file prints on stdout cannot
// corrupt the result. Errors are rethrown so that node prints them with the
// file's line and a caret; a thrown non-Error becomes an Error for the
// same reason.
const nodeScript = `
import { pathToFileURL } from "node:url";
import { writeSync } from "node:fs";
let m;
try {
  m = await import(pathToFileURL(process.argv[1]).href);
} catch (e) {
  if (e instanceof Error) throw e;
  throw new Error("the file threw " + String(e));
}
const b = Buffer.from(JSON.stringify("default" in m ? m.default : m) ?? "null");
for (let off = 0; off < b.length; ) off += writeSync(3, b, off);
`

// errorLine matches node's line naming an uncaught error:
// "SyntaxError: Unexpected identifier", "Error [ERR_MODULE_NOT_FOUND]: ...".
// (compiled on first use, see hujsonPos).
var errorLine = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Z][A-Za-z]*(?: \[[A-Z0-9_]+\])?: \S`)
})

// evalJS runs the JS config file at abs with the user's node and returns
// its export. Problems are reported to r.
func evalJS(abs string, u *user, environ []string, r *reporter) *val {
	node, ok := u.lookPath("node", u.cwd)
	if !ok {
		r.add(&Error{Path: r.file, Msg: "node is needed to read JS config files, and it is not in PATH " +
			"(install Node.js, or write the config as .yaml or .json, which need no node)"})
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), jsTimeout)
	defer cancel()
	out, w, err := os.Pipe()
	if err != nil {
		r.add(&Error{Path: r.file, Msg: "cannot run node: " + err.Error(), err: err})
		return nil
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, node, "--input-type=module", "-e", nodeScript, abs)
	cmd.Dir = filepath.Dir(abs)
	cmd.Env = append(make([]string, 0, len(environ)), environ...) // never nil: nil would inherit tend's own environment
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout = io.Discard
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// A child the file started could keep fd 3 or stderr open; do not wait
	// for it long after node itself is gone.
	cmd.WaitDelay = time.Second

	result := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(out)
		result <- b
	}()
	err = cmd.Start()
	w.Close() // the child has its copy; ours would keep ReadAll from ending
	if err != nil {
		r.add(&Error{Path: r.file, Msg: "cannot run node: " + err.Error(), err: err})
		return nil
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		r.add(&Error{Path: r.file, Msg: "node did not finish evaluating the file within " + jsTimeout.String() +
			" (does it wait on a timer, a server or stdin?)"})
		return nil
	}
	if err != nil {
		line, col, msg := nodeFailure(stderr.String(), abs)
		if msg == "" {
			msg = err.Error()
		}
		r.add(&Error{Path: r.file, Line: line, Col: col, Msg: "node could not evaluate the file: " + msg})
		return nil
	}
	var b []byte
	select {
	case b = <-result:
	case <-time.After(cmd.WaitDelay):
		// Something the file started still holds fd 3 open.
		r.add(&Error{Path: r.file, Msg: "node's output did not end (does the file start a process that outlives it?)"})
		return nil
	}
	if len(b) == 0 {
		r.add(&Error{Path: r.file, Msg: "node printed no configuration (does the file call process.exit?)"})
		return nil
	}
	v, err := fromJSON(b)
	if err != nil {
		r.add(&Error{Path: r.file, Msg: "cannot read the configuration node printed: " + err.Error()})
		return nil
	}
	return v
}

// nodeFailure picks, from node's stderr, the position in the config file
// (from the "file:line" header node prints above a caret, or from a stack
// frame in the file) and the line naming the error.
func nodeFailure(stderr, abs string) (line, col int, msg string) {
	fileURL := (&url.URL{Scheme: "file", Path: abs}).String()
	lines := strings.Split(strings.ReplaceAll(stderr, "\r\n", "\n"), "\n")
	for i, l := range lines {
		rest, ok := strings.CutPrefix(l, abs+":")
		if !ok {
			rest, ok = strings.CutPrefix(l, fileURL+":")
		}
		if n, err := strconv.Atoi(rest); ok && err == nil && line == 0 {
			line = n
			if i+2 < len(lines) {
				if c := strings.IndexByte(lines[i+2], '^'); c >= 0 {
					col = c + 1
				}
			}
		}
		if msg == "" && errorLine().MatchString(l) {
			msg = strings.TrimSpace(l)
		}
	}
	if line == 0 {
		frame := regexp.MustCompile(`(?:` + regexp.QuoteMeta(abs) + `|` + regexp.QuoteMeta(fileURL) + `):(\d+):(\d+)`)
		if m := frame.FindStringSubmatch(stderr); m != nil {
			line, _ = strconv.Atoi(m[1])
			col, _ = strconv.Atoi(m[2])
		}
	}
	if msg == "" {
		for _, l := range lines {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "at ") && !strings.HasPrefix(t, "node:") {
				msg = t
				break
			}
		}
	}
	return line, col, msg
}

// findKey finds where key is written in a JS source, as an identifier or
// a quoted string (then at its opening quote). Only a key written exactly once gives a position: any
// other count could point at the wrong app.
func findKey(src []byte, key string) (line, col int, ok bool) {
	if key == "" {
		return 0, 0, false
	}
	found := -1
	for i := 0; i+len(key) <= len(src); {
		j := bytes.Index(src[i:], []byte(key))
		if j < 0 {
			break
		}
		at := i + j
		end := at + len(key)
		if (at == 0 || !isIdentByte(src[at-1])) && (end == len(src) || !isIdentByte(src[end])) {
			if found >= 0 {
				return 0, 0, false
			}
			found = at
		}
		i = at + 1
	}
	if found < 0 {
		return 0, 0, false
	}
	if found > 0 && strings.IndexByte("\"'`", src[found-1]) >= 0 {
		found-- // point at the opening quote, as for a quoted key in YAML or JSON
	}
	before := src[:found]
	line = bytes.Count(before, []byte("\n")) + 1
	col = utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return line, col, true
}

func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
