package monit

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tend-pm/tend/internal/api"
)

// screen returns the model's screen without styles, as TERM=dumb shows
// it, and checks its size: height lines, none wider than width.
func screen(t *testing.T, m *Model) []string {
	t.Helper()
	lines := strings.Split(ansi.Strip(m.render()), "\n")
	if len(lines) != m.height {
		t.Errorf("%dx%d: the screen has %d lines", m.width, m.height, len(lines))
	}
	for i, l := range lines {
		if w := lipgloss.Width(l); w > m.width {
			t.Errorf("%dx%d: line %d is %d cells wide: %q", m.width, m.height, i, w, l)
		}
	}
	return lines
}

// marked returns the lines of the screen that carry the selection marker.
func marked(lines []string) []string {
	var out []string
	for _, l := range lines {
		if strings.HasPrefix(l, marker+" ") {
			out = append(out, l)
		}
	}
	return out
}

// sgr matches a Select Graphic Rendition sequence; its parameters are
// the first group.
var sgr = regexp.MustCompile(`\x1b\[([0-9;:]*)m`)

// colours reports whether s sets a colour (foreground or background).
func colours(s string) bool {
	for _, m := range sgr.FindAllStringSubmatch(s, -1) {
		for _, p := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ';' || r == ':' }) {
			n, _ := strconv.Atoi(p)
			if n >= 30 && n <= 49 || n >= 90 && n <= 107 {
				return true
			}
		}
	}
	return false
}

// TestSelectionWithoutStyles: the selected row starts with a marker, in
// colour and without (NO_COLOR keeps reverse video, TERM=dumb has no
// styles at all), so the selection shows on any terminal.
func TestSelectionWithoutStyles(t *testing.T) {
	for _, color := range []bool{true, false} {
		f := newFake("api", "worker*2", "web")
		dr := newDriver(t, f)
		dr.m.opts.Color, dr.m.st = color, newStyles(color)
		dr.key("j", "j") // worker[0]
		got := marked(screen(t, dr.m))
		if len(got) != 1 || !strings.Contains(got[0], "worker[0]") {
			t.Errorf("color %v: the marked rows are %q; want worker[0]'s alone", color, got)
		}
		raw := dr.m.render()
		if !color && colours(raw) {
			t.Errorf("no colour asked, but the screen sets colours: %q", raw)
		}
		if !strings.Contains(raw, "\x1b[7m"+marker) {
			t.Errorf("color %v: the selected row is not in reverse video from its marker on", color)
		}
	}

	// Through Bubble Tea on TERM=dumb (and an output that is not a
	// terminal, which Bubble Tea treats alike): no styles reach the
	// output, the marker does.
	// (A program of its own, not teatest's: teatest leaves a SIGINT
	// handler behind that logs into a finished test when the PTY test
	// interrupts the process.)
	f := newFake("api", "web")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	p := tea.NewProgram(New(ctx, f, Options{}), tea.WithInput(nil), tea.WithOutput(&out), tea.WithoutSignals(),
		tea.WithWindowSize(60, 12), tea.WithEnvironment([]string{"TERM=dumb"}))
	done := make(chan error, 1)
	go func() { _, err := p.Run(); done <- err }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), marker+" api") {
		if time.Now().After(deadline) {
			t.Fatalf("TERM=dumb: no %q in the output:\n%s", marker+" api", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Quit()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := sgr.FindString(out.String()); s != "" {
		t.Errorf("TERM=dumb: the output holds the style %q", s)
	}
}

// lockedBuffer is a bytes.Buffer a program writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// has reports whether some line of lines contains s.
func has(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// TestShortTerminal: height goes to the list first (all of it, or
// scrolled with the selected row in view), then the selected instance's
// line, then its graphs; the log pane gets what is left, if anything.
// A narrow list cuts app names, never the instance index.
func TestShortTerminal(t *testing.T) {
	f := newFake("ticker", "server*3", "web")
	f.logs = func(_ context.Context, fn func(api.LogLine) error) error {
		return fn(api.LogLine{Instance: 2, Line: "hello"})
	}
	dr := newDriver(t, f)
	dr.key("j", "j", "j", "j") // server[2]
	rows := []string{"ticker", "server ×3", "server[0]", "server[1]", "server[2]", "web"}
	for _, c := range []struct {
		h                    int
		detail, graphs, logs bool
	}{
		{h: 9},                // header, list (7), footer
		{h: 10, detail: true}, // and the detail line
		{h: 12, detail: true, graphs: true},
		{h: 13, detail: true, graphs: true},             // one line left: no log pane
		{h: 14, detail: true, graphs: true, logs: true}, // a title and a line
	} {
		dr.send(tea.WindowSizeMsg{Width: 100, Height: c.h})
		lines := screen(t, dr.m)
		for _, r := range rows {
			if !has(lines, r) {
				t.Errorf("100x%d: the list lacks %s:\n%s", c.h, r, strings.Join(lines, "\n"))
			}
		}
		if got := has(lines, "── server[2]"); got != c.detail {
			t.Errorf("100x%d: detail line shown %v; want %v:\n%s", c.h, got, c.detail, strings.Join(lines, "\n"))
		}
		if got := has(lines, "cpu ") && has(lines, "mem "); got != c.graphs {
			t.Errorf("100x%d: graphs shown %v; want %v:\n%s", c.h, got, c.graphs, strings.Join(lines, "\n"))
		}
		if got := has(lines, "── logs") && has(lines, "hello"); got != c.logs {
			t.Errorf("100x%d: log pane shown %v; want %v:\n%s", c.h, got, c.logs, strings.Join(lines, "\n"))
		}
		if got := marked(lines); len(got) != 1 || !strings.Contains(got[0], "server[2]") {
			t.Errorf("100x%d: marked rows %q; want server[2]'s", c.h, got)
		}
	}

	// 30x8: six lines for a list of seven; it scrolls to keep server[2],
	// whose name is cut before its index.
	dr.send(tea.WindowSizeMsg{Width: 30, Height: 8})
	lines := screen(t, dr.m)
	if got := marked(lines); len(got) != 1 || !strings.Contains(got[0], "…[2]") {
		t.Errorf("30x8: marked rows %q; want server[2]'s, cut as …[2]:\n%s", got, strings.Join(lines, "\n"))
	}
	for _, s := range []string{"…[0]", "…[1]", "×3"} {
		if !has(lines, s) {
			t.Errorf("30x8: no row shows %s:\n%s", s, strings.Join(lines, "\n"))
		}
	}
	if has(lines, "── logs") {
		t.Errorf("30x8: a log pane while the list scrolls:\n%s", strings.Join(lines, "\n"))
	}

	// A list longer than a tall terminal leaves the panes below room.
	for i := range 40 {
		f.add("many"+strconv.Itoa(i), 1)
	}
	dr.period()
	dr.send(tea.WindowSizeMsg{Width: 100, Height: 40})
	lines = screen(t, dr.m)
	if !has(lines, "── server[2]") || !has(lines, "hello") {
		t.Errorf("100x40 with 46 rows: no detail or log pane:\n%s", strings.Join(lines, "\n"))
	}
	if got := marked(lines); len(got) != 1 || !strings.Contains(got[0], "server[2]") {
		t.Errorf("100x40 with 46 rows: marked rows %q; want server[2]'s", got)
	}

	// Any size: the screen is exactly that size.
	for _, w := range []int{1, 9, 30, 51, 71, 99, 120} {
		for h := 1; h <= 16; h++ {
			dr.send(tea.WindowSizeMsg{Width: w, Height: h})
			screen(t, dr.m)
		}
	}
}

// TestLogPrefixes: one rule for every line of the log pane: no prefix
// for an app with one instance; with several, [n] when the line's
// instance is known and as many blanks when not (the backlog read from
// the shared files).
func TestLogPrefixes(t *testing.T) {
	f := newFake("one", "many*12")
	f.logs = func(_ context.Context, fn func(api.LogLine) error) error {
		for _, i := range []int{-1, 0, 11} {
			if err := fn(api.LogLine{Instance: i, Line: "job " + strconv.Itoa(i)}); err != nil {
				return err
			}
		}
		return nil
	}
	dr := newDriver(t, f)
	if got, want := ansi.Strip(strings.Join(dr.m.logPane(4)[1:], "|")), "job -1|job 0|job 11"; got != want {
		t.Errorf("one instance: log lines %q; want %q", got, want)
	}
	dr.key("j") // many
	if got, want := ansi.Strip(strings.Join(dr.m.logPane(4)[1:], "|")), "     job -1|[0]  job 0|[11] job 11"; got != want {
		t.Errorf("twelve instances: log lines %q; want %q", got, want)
	}
}

// bars returns the bars of a list line: CPU's, then memory's.
func bars(t *testing.T, line string) (cpu, mem string) {
	t.Helper()
	b := regexp.MustCompile(`▕[█·]*▏`).FindAllString(ansi.Strip(line), -1)
	if len(b) != 2 {
		t.Fatalf("%d bars in %q", len(b), line)
	}
	return b[0], b[1]
}

// full returns the share of bar b drawn.
func full(b string) float64 {
	n, all := strings.Count(b, "█"), strings.Count(b, "█")+strings.Count(b, "·")
	return float64(n) / float64(all)
}

// TestBarScales: the memory bar is the share of the host's memory (of
// max_memory_restart per instance when the app has one), whatever else
// the list shows; the CPU bar is full at one core per running instance,
// and for an app at most at the host's cores.
func TestBarScales(t *testing.T) {
	f := newFake("small", "limited", "wide*4")
	f.host = api.HostInfo{Cores: 2, MemTotal: 16 << 30, MemAvailable: 8 << 30}
	f.apps[0].Instances[0].Memory = 46 << 17 // 4.6 MiB
	f.apps[0].Instances[0].CPU = 50
	f.apps[1].MaxMemory = 100 << 20
	f.apps[1].Instances[0].Memory = 50 << 20
	for i := range f.apps[2].Instances {
		f.apps[2].Instances[i].CPU = 50 // 200% in all: the host's 2 cores
	}
	dr := newDriver(t, f)
	dr.key("/", "s", "m", "a", "l", "l", "enter") // small alone
	lines := dr.m.list(10)
	cpu, mem := bars(t, lines[1])
	if s := full(mem); s != 0 {
		t.Errorf("4.6 MiB of 16 GiB: the memory bar is %.0f%% full: %s", s*100, mem)
	}
	if s := full(cpu); s != 0.5 {
		t.Errorf("half a core: the CPU bar is %.0f%% full: %s", s*100, cpu)
	}
	dr.key("esc")
	lines = dr.m.list(10)
	if _, mem := bars(t, lines[2]); full(mem) != 0.5 {
		t.Errorf("50 MiB of a 100 MiB limit: memory bar %s", mem)
	}
	if cpu, _ := bars(t, lines[3]); full(cpu) != 1 {
		t.Errorf("wide ×4, 200%% on a 2-core host: CPU bar %s; want full", cpu)
	}
	if cpu, _ := bars(t, lines[4]); full(cpu) != 0.5 {
		t.Errorf("wide[0], half a core: CPU bar %s; want half", cpu)
	}
}

// TestStaleWhileDisconnected: when the daemon stops answering, the
// header says since when, every row's status is ? (its figures are the
// last known), and the log pane still names its app; all back to normal
// when a daemon answers.
func TestStaleWhileDisconnected(t *testing.T) {
	f := newFake("api", "worker*2")
	f.logs = func(_ context.Context, fn func(api.LogLine) error) error {
		return fn(api.LogLine{Instance: 0, Line: "hello"})
	}
	dr := newDriver(t, f)
	lost := time.Date(2026, 8, 1, 13, 14, 15, 0, time.Local)
	dr.m.opts.Now = func() time.Time { return lost }
	f.mu.Lock()
	f.down = errors.New("dial unix tend.sock: connection refused")
	f.mu.Unlock()
	dr.period()
	lines := screen(t, dr.m)
	if !strings.Contains(lines[0], "disconnected at 13:14:15") {
		t.Errorf("header %q; want the time the daemon went", lines[0])
	}
	// Below the header and the list's titles, a row per app and instance.
	for i, r := range []string{"api", "worker ×2", "worker[0]", "worker[1]"} {
		l := lines[2+i]
		name := strings.Fields(r)
		if fs := strings.Fields(strings.TrimPrefix(l, marker)); len(fs) <= len(name) || strings.Join(fs[:len(name)], " ") != r || fs[len(name)] != "?" {
			t.Errorf("row of %s while disconnected: %q; want status ?", r, l)
		}
	}
	if !has(lines, "── logs of api") || !has(lines, "hello") {
		t.Errorf("log pane while disconnected:\n%s", strings.Join(lines, "\n"))
	}

	f.mu.Lock()
	f.down = nil
	f.mu.Unlock()
	dr.period()
	lines = screen(t, dr.m)
	if has(lines, "disconnected") || has(lines[2:6], " ? ") || !strings.Contains(lines[2], "online") {
		t.Errorf("after the daemon came back:\n%s", strings.Join(lines, "\n"))
	}
}
