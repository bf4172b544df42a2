package monit

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/units"
)

// styles are the few looks the screen uses. Without colour, only bold
// and reverse video remain (NO_COLOR asks for no colour, not no emphasis);
// on TERM=dumb Bubble Tea drops those too, so nothing the screen says may
// depend on a style alone (the selected row has a marker, stale figures
// a `?` status).
type styles struct {
	bold, sel, dim, err, ok, warn, title lipgloss.Style
	color                                bool
}

func newStyles(color bool) styles {
	s := styles{
		bold: lipgloss.NewStyle().Bold(true), sel: lipgloss.NewStyle().Reverse(true),
		dim: lipgloss.NewStyle(), err: lipgloss.NewStyle().Bold(true), ok: lipgloss.NewStyle(),
		warn: lipgloss.NewStyle(), title: lipgloss.NewStyle().Bold(true), color: color,
	}
	if color {
		s.dim = s.dim.Foreground(lipgloss.Color("8"))
		s.err = s.err.Foreground(lipgloss.Color("1"))
		s.ok = s.ok.Foreground(lipgloss.Color("2"))
		s.warn = s.warn.Foreground(lipgloss.Color("3"))
		s.title = s.title.Foreground(lipgloss.Color("6"))
	}
	return s
}

func (s styles) status(st string) lipgloss.Style {
	switch st {
	case api.StatusOnline:
		return s.ok
	case api.StatusErrored:
		return s.err
	case api.StatusStopped:
		return s.dim
	}
	return s.warn
}

// View draws the whole screen: exactly height lines, none wider than
// width.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "tend monit"
	return v
}

// render is View's text, for tests.
func (m *Model) render() string {
	w, h := m.width, m.height
	var lines []string
	add := func(ls ...string) {
		for _, l := range ls {
			lines = append(lines, fit(l, w))
		}
	}
	add(m.header())
	footer := m.footer()
	body := h - 2
	switch {
	case m.help:
		add(m.helpLines()...)
	case !m.polled:
		add("connecting to the daemon…")
	case !m.connected && len(m.rows) == 0:
		add(m.st.err.Render("daemon not reachable: "+errText(m.err)), "retrying every "+m.opts.Every.String()+"; q quits")
	case len(m.rows) == 0 && m.filter != "":
		add("no app matches " + fmt.Sprintf("%q", m.filter) + " (esc clears the filter)")
	case len(m.rows) == 0:
		add("no apps; `tend start <script>` starts one")
	default:
		// Lines go to the list first (all it needs, but on a terminal
		// tall enough to keep listMin lines of it, not the last
		// listLeaves), then to the selected instance's line, its graphs
		// and its notes, in that order; the log pane gets what is left,
		// if that is 2 lines or more (a title and a line).
		listH := min(len(m.rows)+1, body, max(body-listLeaves, listMin))
		add(m.list(listH)...)
		rest := body - listH
		if rest > 0 {
			d := m.detail(rest)
			add(d...)
			rest -= len(d)
		}
		if rest >= 2 {
			add(m.logPane(rest)...)
		}
	}
	for len(lines) < h-1 {
		lines = append(lines, "")
	}
	lines = lines[:max(h-1, 0)]
	lines = append(lines, fit(footer, w))
	return strings.Join(lines, "\n")
}

// A list too long for the screen leaves listLeaves lines to the panes
// below it (the instance's 6, 3 of logs) when it can keep listMin.
const (
	listLeaves = 9
	listMin    = 10
)

// stale reports whether the figures shown are the last answer of a
// daemon that no longer answers.
func (m *Model) stale() bool { return m.polled && !m.connected }

// now is the time the figures are as of: the clock's, or when the daemon
// stopped answering.
func (m *Model) now() time.Time {
	if m.stale() && !m.lostAt.IsZero() {
		return m.lostAt
	}
	return m.opts.Now()
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// fit cuts s (which may hold styles) to width cells.
func fit(s string, width int) string {
	if lipgloss.Width(s) <= width {
		return s
	}
	return ansi.Truncate(s, width, "…")
}

func (m *Model) header() string {
	hst := m.mon.Host
	var b strings.Builder
	b.WriteString(m.st.title.Render("tend monit"))
	if m.stale() {
		// The host's figures and the counts are as old as the list: the
		// header says only that.
		msg := "disconnected, retrying"
		if !m.lostAt.IsZero() {
			msg = "disconnected at " + m.lostAt.Format("15:04:05") + ", retrying"
			if len(m.rows) > 0 {
				msg += "; figures are from then"
			}
		}
		b.WriteString("  " + m.st.err.Render(msg))
		if m.filter != "" {
			fmt.Fprintf(&b, "  filter %q", m.filter)
		}
		return b.String()
	}
	if m.connected && m.version != "" && m.version != api.Version() {
		// Not a warning on stderr: it would land on the screen.
		b.WriteString("  " + m.st.warn.Render("daemon is tend "+m.version+", not "+api.Version()+" (tend update)"))
	}
	if hst.Cores > 0 {
		used := hst.MemTotal - hst.MemAvailable
		fmt.Fprintf(&b, "  host cpu %3.0f%% %s  mem %s/%s", hst.CPU, bar(hst.CPU/100, 8), gib(used), gib(hst.MemTotal))
	}
	n := 0
	for _, a := range m.mon.Apps {
		n += len(a.Instances)
	}
	fmt.Fprintf(&b, "  %s, %s", plural(len(m.mon.Apps), "app"), plural(n, "instance"))
	if m.filter != "" {
		fmt.Fprintf(&b, "  filter %q", m.filter)
	}
	return b.String()
}

func (m *Model) footer() string {
	switch {
	case m.confirm != "":
		q := fmt.Sprintf("%s %s? y/N", m.confirmAction, m.confirm)
		switch m.confirmAction {
		case api.ActionDelete:
			q = fmt.Sprintf("delete %s: stop it and remove it from the list? y/N", m.confirm)
		case api.ActionStop:
			q = fmt.Sprintf("stop %s: end all its instances? y/N", m.confirm)
		case api.ActionRestart:
			q = fmt.Sprintf("restart %s: stop all its instances, then start them? y/N", m.confirm)
		}
		return m.st.warn.Render(q)
	case m.filtering:
		return "filter: " + m.filter + "█  (enter keeps it, esc clears)"
	case m.status != "":
		if m.statusErr {
			return m.st.err.Render(m.status)
		}
		return m.status
	}
	return m.st.dim.Render("↑↓ select  r reload  R restart  s stop  S start  +/- scale  d delete  / filter  ? help  q quit")
}

func (m *Model) helpLines() []string {
	return []string{
		m.st.bold.Render("keys"),
		"  ↑ ↓ k j, PgUp PgDn, g G   select an app or an instance",
		"  r    reload the app: new processes, ready before the old ones stop",
		"  R    restart the app (stop, then start; asks y/N first)",
		"  s    stop the app (asks y/N first)",
		"  S    start the app",
		"  + -  one instance more, one less",
		"  d    delete the app (asks y/N first)",
		"  /    filter apps by name or namespace; esc clears",
		"  q    quit (ctrl+c too)",
		"",
		"Actions apply to the selected app (marked >). CPU is the share of one",
		"core used by the instance's whole process tree; memory is its resident",
		"memory; both are sampled every " + m.mon.Interval.String() + " by the daemon. CPU bars are",
		"full at one core per running instance (an app: at most the host's",
		"cores); memory bars at the host's memory, or at max_memory_restart",
		"per instance if set. Any key closes this help.",
	}
}

// column widths of the list, by terminal width. Each row begins with a
// gutter of gutter cells, where the selected row has its marker.
type layout struct {
	name, status, cpu, cpuBar, mem, memBar, restarts, uptime int
}

const (
	gutter = 2
	marker = ">"
)

func (m *Model) layout() layout {
	w := m.width
	l := layout{status: 9, cpu: 6, mem: 10}
	// Every column takes its width and a space; the name has what is left.
	used := gutter + l.status + 1 + l.cpu + 1 + l.mem + 1
	if w >= 52 {
		l.restarts, l.uptime = 4, 6
		used += l.restarts + 1 + l.uptime + 1
	}
	if w >= 72 {
		l.cpuBar, l.memBar = 6, 6
		if w >= 100 {
			l.cpuBar, l.memBar = 12, 12
		}
		used += l.cpuBar + 1 + l.memBar + 1
	}
	l.name = min(max(w-used-1, 8), 32)
	return l
}

func pad(s string, n int) string {
	if n <= 0 {
		return ""
	}
	s = fit(s, n)
	return s + strings.Repeat(" ", max(n-lipgloss.Width(s), 0)) + " "
}

// nameCell writes indent, base and suffix in width cells, cutting base
// first, so that "  server[2]" reads "  se…[2]", not "  serve…": the
// suffix (an instance's index, an app's count) tells rows apart.
func nameCell(indent, base, suffix string, width int) string {
	room := width - lipgloss.Width(indent) - lipgloss.Width(suffix)
	if lipgloss.Width(base) <= room {
		return indent + base + suffix
	}
	if room < 2 {
		return indent + base + suffix // pad cuts it
	}
	return indent + ansi.Truncate(base, room, "…") + suffix
}

// list draws the header and the rows around the selection, n lines; the
// header goes first when there is room for it and one row only.
func (m *Model) list(n int) []string {
	l := m.layout()
	var out []string
	if n >= 2 {
		head := strings.Repeat(" ", gutter) + pad("name", l.name) + pad("status", l.status) + pad("cpu", l.cpu) + pad("", l.cpuBar) +
			pad("memory", l.mem) + pad("", l.memBar) + pad("↺", l.restarts) + pad("uptime", l.uptime)
		out = append(out, m.st.bold.Render(strings.TrimRight(head, " ")))
	}
	rowsH := n - len(out)
	if rowsH < 1 {
		return out
	}
	first := 0
	if m.sel >= rowsH {
		first = m.sel - rowsH + 1
	}
	for i := first; i < len(m.rows) && i < first+rowsH; i++ {
		out = append(out, m.rowLine(m.rows[i], l, i == m.sel))
	}
	return out
}

// cpuShare is the share of its scale that cpu (per cent of one core)
// used by running instances is: one core per running instance, and no
// more than the host's cores.
func (m *Model) cpuShare(cpu float64, running int) float64 {
	cores := running
	if hc := m.mon.Host.Cores; hc > 0 {
		cores = min(cores, hc)
	}
	return cpu / 100 / float64(max(cores, 1))
}

// memShare is the share of its scale that mem, used by running instances
// of app a, is: max_memory_restart per instance if a has one, else the
// host's memory (-1 when that is not known: no bar).
func (m *Model) memShare(a *api.AppInfo, mem uint64, running int) float64 {
	if a.MaxMemory > 0 {
		return float64(mem) / (float64(a.MaxMemory) * float64(max(running, 1)))
	}
	if t := m.mon.Host.MemTotal; t > 0 {
		return float64(mem) / float64(t)
	}
	return -1
}

func (m *Model) rowLine(r row, l layout, selected bool) string {
	a := r.app
	insts := a.Instances
	var name string
	if r.inst >= 0 {
		insts = a.Instances[r.inst : r.inst+1]
		name = nameCell("  ", a.Name, fmt.Sprintf("[%d]", r.inst), l.name)
	} else if len(a.Instances) > 1 {
		name = nameCell("", a.Name, fmt.Sprintf(" ×%d", len(a.Instances)), l.name)
	} else {
		name = a.Name
	}
	var cpu float64
	var mem uint64
	restarts, running := 0, 0
	var started time.Time
	for _, in := range insts {
		cpu += in.CPU
		mem += in.Memory
		restarts += in.Restarts
		if in.PID > 0 {
			running++
			if started.IsZero() || in.Started.Before(started) {
				started = in.Started
			}
		}
	}
	status := a.Status
	if r.inst >= 0 {
		status = insts[0].Status
	}
	if status == api.StatusOnline && len(a.Listen) > 0 {
		for _, in := range insts {
			if !in.Ready {
				status = "starting"
			}
		}
	}
	stale := m.stale()
	if stale {
		status = "?"
	}
	cpuS, memS, up, cbar, mbar := "-", "-", "-", "", ""
	if running > 0 {
		cpuS = fmt.Sprintf("%.0f%%", cpu)
		memS = units.Bytes(mem)
		up = units.Duration(m.now().Sub(started))
		cbar = bar(m.cpuShare(cpu, running), l.cpuBar)
		if share := m.memShare(a, mem, running); share >= 0 {
			mbar = bar(share, l.memBar)
		}
	}
	mark := strings.Repeat(" ", gutter)
	if selected {
		mark = pad(marker, gutter-1)
	}
	line := mark + pad(name, l.name) + m.st.status(status).Render(pad(status, l.status)) + pad(cpuS, l.cpu) + pad(cbar, l.cpuBar) +
		pad(memS, l.mem) + pad(mbar, l.memBar) + pad(fmt.Sprint(restarts), l.restarts) + pad(up, l.uptime)
	line = strings.TrimRight(line, " ")
	switch {
	case selected:
		plain := ansi.Strip(line)
		return m.st.sel.Render(plain + strings.Repeat(" ", max(m.width-lipgloss.Width(plain), 0)))
	case stale:
		return m.st.dim.Render(ansi.Strip(line))
	}
	return line
}

// detail draws the selected instance (or the app's first), n lines:
// facts, then CPU and memory history graphs, then notes.
func (m *Model) detail(n int) []string {
	r, ok := m.selected()
	if !ok {
		return nil
	}
	slot := max(r.inst, 0)
	if slot >= len(r.app.Instances) {
		return nil
	}
	in := r.app.Instances[slot]
	w := m.width
	title := fmt.Sprintf("%s[%d]", r.app.Name, slot)
	status := in.Status
	if m.stale() {
		status = "? (last known: " + in.Status + ")"
	}
	facts := []string{m.st.status(in.Status).Render(status)}
	if in.PID > 0 {
		facts = append(facts, fmt.Sprintf("pid %d", in.PID))
		if in.Ready {
			facts = append(facts, "ready")
		}
		facts = append(facts, plural(in.Procs, "proc")+", "+plural(in.Threads, "thread"))
		if in.FDs > 0 {
			facts = append(facts, fmt.Sprintf("%d fds", in.FDs))
		}
		if r.app.Balance == api.BalanceProxy {
			facts = append(facts, fmt.Sprintf("%d conns", in.Conns))
		}
	}
	for _, li := range r.app.Listeners {
		if li.Backlog > 0 && (li.Slot == slot || li.Slot < 0) {
			facts = append(facts, fmt.Sprintf("queue %d/%d", li.Queue, li.Backlog))
			break
		}
	}
	if r.app.MaxMemory > 0 {
		facts = append(facts, "limit "+units.Bytes(uint64(r.app.MaxMemory)))
	}
	out := []string{m.st.bold.Render("── "+title+" ") + strings.Join(facts, " · ")}
	hist := m.history[histKey{r.app.Name, slot}]
	gw := max(w-16, 4)
	cpuVals := make([]float64, len(hist.CPU))
	for i, v := range hist.CPU {
		cpuVals[i] = float64(v)
	}
	memVals := make([]float64, len(hist.Memory))
	for i, v := range hist.Memory {
		memVals[i] = float64(v)
	}
	cpuMax := max(maxOf(cpuVals), 100)
	out = append(out,
		fmt.Sprintf("cpu %9s %s", fmt.Sprintf("%.0f%%", in.CPU), m.st.ok.Render(sparkline(cpuVals, gw, cpuMax))),
		fmt.Sprintf("mem %9s %s", units.Bytes(in.Memory), m.st.title.Render(sparkline(memVals, gw, max(maxOf(memVals), float64(r.app.MaxMemory))))))
	var extra []string
	if len(in.Metrics) > 0 {
		var ms []string
		for _, mt := range in.Metrics {
			ms = append(ms, fmt.Sprintf("%s=%s", mt.Name, formatNum(mt.Value)))
		}
		extra = append(extra, "metrics: "+strings.Join(ms, "  "))
	}
	if lr := in.LastRestart; lr != nil {
		extra = append(extra, fmt.Sprintf("last restart by tend: %s (%s ago)", lr.Reason, units.Duration(m.now().Sub(lr.Time))))
	}
	if in.Reason != "" && in.Status != api.StatusOnline {
		extra = append(extra, "why: "+in.Reason)
	}
	out = append(out, extra...)
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// logPrefixes returns the prefix of a line of instance i (-1: not known)
// of the app whose logs are shown: none for an app with one instance;
// for several, "[i] ", or as many blanks when i is not known (lines read
// back from the files the instances share).
func (m *Model) logPrefixes() func(i int) string {
	n := 0
	for _, a := range m.mon.Apps {
		if a.Name == m.logsOf {
			n = len(a.Instances)
		}
	}
	if n <= 1 {
		return func(int) string { return "" }
	}
	width := len(fmt.Sprintf("[%d] ", n-1))
	return func(i int) string {
		if i < 0 {
			return strings.Repeat(" ", width)
		}
		p := fmt.Sprintf("[%d] ", i)
		return p + strings.Repeat(" ", max(width-len(p), 0))
	}
}

// logPane draws the last lines of the selected app's logs, n lines.
func (m *Model) logPane(n int) []string {
	title := "── logs"
	if m.logsOf != "" {
		title += " of " + m.logsOf
	}
	if m.stale() && m.logsOf != "" {
		title += " (not following: the daemon is not answering)"
	}
	out := []string{m.st.bold.Render(title)}
	lines := m.logs
	if len(lines) > n-1 {
		lines = lines[len(lines)-(n-1):]
	}
	prefix := m.logPrefixes()
	for _, l := range lines {
		p := prefix(l.Instance)
		text := strings.Map(func(r rune) rune {
			if r < ' ' && r != '\t' || r == 0x7f {
				return -1
			}
			return r
		}, ansi.Strip(l.Line))
		if l.Stream == "err" {
			out = append(out, m.st.err.Render(p+text))
		} else {
			out = append(out, m.st.dim.Render(p)+text)
		}
	}
	return out
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// The sparkline's eight levels are the consecutive runes ▁ (U+2581) to
// █ (U+2588).
const (
	sparkLow    = '▁'
	sparkLevels = 8
)

// sparkline draws the last width values scaled to top, one cell each.
func sparkline(vals []float64, width int, top float64) string {
	if len(vals) > width {
		vals = vals[len(vals)-width:]
	}
	var b strings.Builder
	for _, v := range vals {
		i := 0
		if top > 0 {
			i = int(v / top * (sparkLevels - 1))
		}
		b.WriteRune(sparkLow + rune(min(max(i, 0), sparkLevels-1)))
	}
	return b.String()
}

// bar draws a share (0..1) as a bar of width cells.
func bar(share float64, width int) string {
	if width <= 2 {
		return ""
	}
	inner := width - 2
	full := int(share*float64(inner) + 0.5)
	full = min(max(full, 0), inner)
	return "▕" + strings.Repeat("█", full) + strings.Repeat("·", inner-full) + "▏"
}

func formatNum(v float64) string {
	if v == float64(int64(v)) && v < 1e15 && v > -1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.4g", v)
}

func gib(b uint64) string { return fmt.Sprintf("%.1fG", float64(b)/(1<<30)) }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
