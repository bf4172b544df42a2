package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tend-pm/tend/internal/api"
)

func TestLogsCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A last line without a newline is complete only when the app exits.
	e.ok("start", os.Args[0], "--name", "talk", "--no-autorestart", "--",
		"lines", "20", "line", "stderr", "oops", "bigline", strconv.Itoa(1<<20), "nonl", "no newline at the end")
	out := filepath.Join(e.home, "logs", "talk-out.log")
	waitFor(t, "the output to reach the file", func() bool {
		b, _ := os.ReadFile(out)
		return bytes.HasSuffix(b, []byte("no newline at the end\n"))
	})
	e.startApp("later", "print", "before", "waitfile", filepath.Join(e.dir, "go"), "print", "after", "sleep", "forever")
	waitFor(t, "the first line of later", func() bool {
		b, _ := os.ReadFile(filepath.Join(e.home, "logs", "later-out.log"))
		return string(b) == "before\n"
	})

	// The last lines, both streams, then exit.
	got := e.ok("logs", "talk", "--lines", "2", "--nostream", "--raw")
	if want := "xxxx"; !strings.Contains(got, want) || !strings.Contains(got, "no newline at the end\n") || !strings.Contains(got, "oops\n") || strings.Contains(got, "line 17") {
		t.Errorf("logs --lines 2 --raw:\n%.200s", got)
	}
	lines := strings.Split(strings.TrimSuffix(e.ok("logs", "talk", "--lines", "3", "--nostream", "--out", "--raw"), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "line 19" || len(lines[1]) != 1<<20 || lines[2] != "no newline at the end" {
		t.Errorf("logs --out --lines 3: %d lines, first %q, last %q; want line 19, the 1 MiB line, the unterminated one", len(lines), lines[0], lines[len(lines)-1])
	}
	var l api.LogLine
	if err := json.Unmarshal([]byte(e.ok("logs", "talk", "--lines", "1", "--nostream", "--err", "--json")), &l); err != nil || l.App != "talk" || l.Stream != "err" || l.Line != "oops" {
		t.Errorf("logs --err --json: %+v %v", l, err)
	}

	// Following: a line printed after `tend logs` started arrives.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tendBin, "logs", "later", "--lines", "1", "--raw")
	cmd.Env = e.environ()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	// The daemon subscribes a follower before it reads the files, so once
	// the past line "before" shows, a new line cannot be missed.
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		switch sc.Text() {
		case "before":
			writeFile(t, filepath.Join(e.dir, "go"), "", 0o600)
		case "after":
			return
		}
	}
	t.Errorf("the followed output never showed the line printed later (%v)", sc.Err())
}

// TestStalledFollower: a follower that stops reading does not slow the app
// or lose a line in the file, and the daemon's memory stays bounded.
func TestStalledFollower(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("ping")
	// A follower that asks for the stream and never reads it.
	c, err := net.Dial("unix", filepath.Join(e.home, "tend.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /v1/logs?target=all&follow=true&lines=0 HTTP/1.1\r\nHost: tend\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	const n = 1000000 // 62 MB, many times any socket buffer and the daemon
	gofile := filepath.Join(e.dir, "go")
	e.ok("start", os.Args[0], "--name", "flood", "--no-autorestart", "--log-max-size", "0", "--",
		"waitfile", gofile, "lines", strconv.Itoa(n), strings.Repeat("y", 60), "print", "done")
	writeFile(t, gofile, "", 0o600)
	waitFor(t, "the flood to end", func() bool { return e.app("flood").Status == api.StatusStopped })
	b, err := os.ReadFile(filepath.Join(e.home, "logs", "flood-out.log"))
	if err != nil {
		t.Fatal(err)
	}
	if got := bytes.Count(b, []byte("\n")); got != n+1 || !bytes.HasSuffix(b, []byte("done\n")) {
		t.Errorf("the file holds %d lines; want all %d and the last", got, n+1)
	}
	rss := daemonRSS(t, e.daemonPID())
	if rss > 32<<20 {
		t.Errorf("daemon RSS %d MiB with a stalled follower; want it bounded", rss>>20)
	}
}

func daemonRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
