// Package monit is `tend monit`: a terminal monitor of the daemon's apps
// and instances, with their CPU and memory (bars and a history graph),
// the selected app's logs as they come, and keys for the usual actions.
// It is a client of the daemon's API only (/v1/monitor, /v1/actions,
// /v1/logs), like the rest of the command line.
//
// It is a Bubble Tea program (charm.land/bubbletea/v2): the model polls
// the daemon once per sampling period, follows the selected app's logs in
// a goroutine, and draws the whole screen from its state on each change,
// at any size (a narrow terminal drops columns and panes, never wraps).
// When the daemon goes away (`tend update`, a crash), it says so, keeps
// the last figures marked as stale (status `?`), and polls until a daemon
// answers again, then follows the logs anew.
package monit

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/client"
)

// Daemon is what monit needs of the daemon: *client.Client. It is called
// from several goroutines at once.
type Daemon interface {
	Ping(ctx context.Context) (api.Ping, error)
	Monitor(ctx context.Context, history string, points int) (api.Monitor, error)
	Act(ctx context.Context, action string, req api.ActionRequest) (api.ActionResult, error)
	Logs(ctx context.Context, q client.LogQuery, fn func(api.LogLine) error) error
}

// Options configure a Model.
type Options struct {
	// Color draws with colours (off with NO_COLOR or TERM=dumb); bold and
	// reverse video, which are not colours, stay (Bubble Tea itself drops
	// them on TERM=dumb).
	Color bool
	// Every is the polling period (default 1 s).
	Every time.Duration
	// Now is the clock for uptimes, the status line's expiry and the time
	// the daemon stopped answering (default time.Now).
	Now func() time.Time
}

// maxLogLines bounds the log pane's memory.
const maxLogLines = 500

// statusFor is how long a message stays on the bottom line; one saying
// an action is under way stays until its answer.
const statusFor = 5 * time.Second

// Model is the monitor's state. Run drives it; tests drive it with
// teatest.
type Model struct {
	d    Daemon
	ctx  context.Context
	opts Options
	st   styles

	width, height int

	// after arms the polling timer: tea.Tick (tests count and fire it).
	after func(time.Duration, func(time.Time) tea.Msg) tea.Cmd
	// Polls are numbered: only the answer of the main loop's poll (main)
	// arms the next tick, so the polls that moves and actions add never
	// start a loop of their own; an answer older than the one shown is
	// dropped.
	pollSeq, shown int

	mon       api.Monitor
	history   map[histKey]api.History // of the app asked for, by app and slot
	connected bool
	polled    bool // a first answer (or error) came
	err       error
	// lostAt is when the daemon stopped answering (zero while it does):
	// the list then shows its last answer as stale.
	lostAt time.Time
	// version is the daemon's, asked with the first poll after a
	// (re)connection or after the log stream ended ("" until known).
	version string

	rows []row
	sel  int
	// selApp and selInst keep the selection on the same app and slot (or
	// the nearest of the same app) when the list changes under it.
	selApp  string
	selInst int

	filter    string
	filtering bool
	// confirm is the app on which confirmAction (delete, stop, restart)
	// waits for y.
	confirm, confirmAction string
	help                   bool
	status                 string
	statusErr              bool
	// statusAt is when the status was set; a pending one (an action under
	// way) does not expire.
	statusAt      time.Time
	statusPending bool

	logs []api.LogLine
	// logsOf is the app whose lines logs holds; logApp the one followed
	// now ("" when none is, as while the daemon is away).
	logsOf    string
	logApp    string
	logGen    int
	logCancel context.CancelFunc
	logCh     chan tea.Msg
	logDone   <-chan struct{}
	// crash carries a panic of a goroutine of monit's own (the log
	// follower) to Update (Run sends it to the program too), which quits;
	// Run then returns it as an error, with the terminal restored.
	crash   chan tea.Msg
	crashed *panicMsg
}

// histKey names one slot's history.
type histKey struct {
	app  string
	slot int
}

// row is one line of the list: an app (inst -1) or one of its instances.
type row struct {
	app  *api.AppInfo
	inst int
}

// New returns a monitor of the daemon d; ctx ends its requests.
func New(ctx context.Context, d Daemon, o Options) *Model {
	if o.Every <= 0 {
		o.Every = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Model{
		d: d, ctx: ctx, opts: o, st: newStyles(o.Color), width: 80, height: 24,
		after: tea.Tick, history: map[histKey]api.History{}, crash: make(chan tea.Msg, 1),
	}
}

// Run runs the monitor on the terminal until the user quits. Bubble Tea
// puts the terminal back as it was on exit, on a panic, and on SIGINT or
// SIGTERM; SIGINT is a quit like q, not an error. A panic of monit's log
// follower, which runs outside Bubble Tea's recovery, ends the program
// the same way and comes back as an error (tea.ErrProgramPanic) with its
// stack.
func Run(ctx context.Context, d Daemon, o Options) error {
	return run(ctx, d, o)
}

// run is Run with more program options (tests give a stand-in terminal).
func run(ctx context.Context, d Daemon, o Options, popts ...tea.ProgramOption) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the requests and waits of this run
	m := New(ctx, d, o)
	defer m.stopLogs()
	p := tea.NewProgram(m, append([]tea.ProgramOption{tea.WithContext(ctx), tea.WithFilter(interruptQuits)}, popts...)...)
	go func() {
		select {
		case msg := <-m.crash:
			p.Send(msg)
		case <-ctx.Done():
		}
	}()
	_, err := p.Run()
	if m.crashed != nil {
		return fmt.Errorf("%w: following the logs: %v\n\n%s", tea.ErrProgramPanic, m.crashed.value, m.crashed.stack)
	}
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// interruptQuits makes SIGINT (kill -INT, or ^C where the terminal is not
// raw) a quit like q: Bubble Tea would end with ErrInterrupted, an error,
// and without waiting for its input reader.
func interruptQuits(_ tea.Model, msg tea.Msg) tea.Msg {
	if _, ok := msg.(tea.InterruptMsg); ok {
		return tea.QuitMsg{}
	}
	return msg
}

// Messages.
type (
	tickMsg    struct{}
	monitorMsg struct {
		seq     int
		main    bool   // the answer of the main loop's poll
		app     string // whose history was asked for
		version string // the daemon's, if it was asked
		m       api.Monitor
		err     error
	}
	actionMsg struct {
		what string
		err  error
	}
	logMsg struct {
		gen  int
		line api.LogLine
	}
	logEndMsg struct {
		gen int
		err error
	}
	// panicMsg is a panic recovered in the log follower.
	panicMsg struct {
		value any
		stack []byte
	}
)

// Init starts the polling loop.
func (m *Model) Init() tea.Cmd { return m.poll(true) }

func (m *Model) tick() tea.Cmd {
	return m.after(m.opts.Every, func(time.Time) tea.Msg { return tickMsg{} })
}

// poll asks the daemon for the figures, with the selected app's history
// as wide as the graphs (and who it is, when that is not known). main is
// true for the polling loop's own poll, false for one a move or an
// action adds.
func (m *Model) poll(main bool) tea.Cmd {
	m.pollSeq++
	msg := monitorMsg{seq: m.pollSeq, main: main, app: m.selectedApp()}
	points := max(m.width-16, 10)
	askVersion := m.version == ""
	ctx := m.ctx
	d := m.d
	return func() tea.Msg {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if askVersion {
			p, err := d.Ping(c)
			if err != nil {
				msg.err = err
				return msg
			}
			msg.version = p.Version
		}
		msg.m, msg.err = d.Monitor(c, msg.app, points)
		if msg.err != nil && msg.app != "" && errors.Is(msg.err, api.ErrNotFound) {
			msg.app = "" // the app was just deleted
			msg.m, msg.err = d.Monitor(c, "", 0)
		}
		return msg
	}
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = max(msg.Width, 1), max(msg.Height, 1)
		return m, nil
	case tickMsg:
		if !m.statusPending && m.status != "" && m.opts.Now().Sub(m.statusAt) >= statusFor {
			m.status = ""
		}
		return m, m.poll(true)
	case monitorMsg:
		return m, m.onMonitor(msg)
	case actionMsg:
		if msg.err != nil {
			m.setStatus(msg.err.Error(), true)
		} else {
			m.setStatus(msg.what, false)
		}
		return m, m.poll(false)
	case logMsg:
		if msg.gen == m.logGen {
			m.logs = append(m.logs, msg.line)
			if len(m.logs) > maxLogLines {
				m.logs = m.logs[len(m.logs)-maxLogLines:]
			}
			return m, m.nextLog()
		}
		return m, nil
	case logEndMsg:
		if msg.gen == m.logGen {
			// The stream ended (daemon gone or replaced, app deleted):
			// the next successful poll follows the logs again, and asks
			// the daemon who it is.
			m.logApp = ""
			m.version = ""
		}
		return m, nil
	case panicMsg:
		// Quit, which puts the terminal back; Run reports the panic.
		// (Not a panic here: Bubble Tea would recover it, but its
		// shutdown after a panic does not wait for its input reader,
		// which races with closing it.)
		m.crashed = &msg
		return m, tea.Quit
	case tea.KeyPressMsg:
		return m, m.onKey(msg)
	}
	return m, nil
}

func (m *Model) onMonitor(msg monitorMsg) tea.Cmd {
	var next tea.Cmd
	if msg.main {
		next = m.tick()
	}
	if msg.seq < m.shown {
		return next // overtaken by a later poll's answer
	}
	m.shown = msg.seq
	m.polled = true
	if msg.err != nil {
		if m.connected || m.err == nil {
			m.stopLogs()
		}
		if m.connected || m.lostAt.IsZero() {
			m.lostAt = m.opts.Now()
		}
		m.connected, m.err, m.version = false, msg.err, ""
		return next
	}
	m.connected, m.err, m.lostAt = true, nil, time.Time{}
	if msg.version != "" {
		m.version = msg.version
	}
	m.mon = msg.m
	m.history = map[histKey]api.History{}
	for _, h := range msg.m.History {
		if h.App == msg.app {
			m.history[histKey{h.App, h.Instance}] = h
		}
	}
	m.rebuild()
	return tea.Batch(next, m.followLogs())
}

// rebuild lays out the rows from the latest answer and the filter,
// keeping the selection where it was: on the same row; if that row is
// gone, on the same app's nearest instance, or its line; if the app is
// gone, at the same place in the list. A pending confirmation is dropped
// when the selected app changes.
func (m *Model) rebuild() {
	old := m.sel
	m.rows = m.rows[:0]
	for i := range m.mon.Apps {
		a := &m.mon.Apps[i]
		if m.filter != "" && !strings.Contains(strings.ToLower(a.Name), strings.ToLower(m.filter)) &&
			!strings.Contains(strings.ToLower(a.Namespace), strings.ToLower(m.filter)) {
			continue
		}
		m.rows = append(m.rows, row{app: a, inst: -1})
		if len(a.Instances) > 1 {
			for j := range a.Instances {
				m.rows = append(m.rows, row{app: a, inst: j})
			}
		}
	}
	m.sel = min(max(old, 0), max(len(m.rows)-1, 0))
	best, dist := -1, 0
	for i, r := range m.rows {
		if r.app.Name != m.selApp {
			continue
		}
		d := abs(r.inst - m.selInst)
		if r.inst < 0 && m.selInst >= 0 {
			d = 1 << 30 // the app's line only if it has no instance lines
		}
		if best < 0 || d < dist {
			best, dist = i, d
		}
	}
	if best >= 0 {
		m.sel = best
	}
	if len(m.rows) > 0 {
		m.selApp, m.selInst = m.rows[m.sel].app.Name, m.rows[m.sel].inst
	}
	if m.confirm != "" && m.confirm != m.selectedApp() {
		m.setStatus(m.confirmAction+" of "+m.confirm+" cancelled: the selection changed", false)
		m.confirm, m.confirmAction = "", ""
	}
}

// relist rebuilds the rows after the filter changed; if the selection
// moved to another app, it asks for that app's history and logs.
func (m *Model) relist() tea.Cmd {
	before := m.selectedApp()
	m.rebuild()
	if app := m.selectedApp(); app != before && app != "" {
		return tea.Batch(m.poll(false), m.followLogs())
	}
	return m.followLogs()
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func (m *Model) selected() (row, bool) {
	if m.sel < 0 || m.sel >= len(m.rows) {
		return row{}, false
	}
	return m.rows[m.sel], true
}

func (m *Model) selectedApp() string {
	if r, ok := m.selected(); ok {
		return r.app.Name
	}
	return ""
}

func (m *Model) move(by int) tea.Cmd {
	if len(m.rows) == 0 {
		return nil
	}
	m.sel = min(max(m.sel+by, 0), len(m.rows)-1)
	before := m.selApp
	m.selApp, m.selInst = m.rows[m.sel].app.Name, m.rows[m.sel].inst
	if before != m.selApp {
		// Another app: its history and logs now.
		return tea.Batch(m.poll(false), m.followLogs())
	}
	return nil
}

// setStatus shows s on the bottom line for statusFor.
func (m *Model) setStatus(s string, isErr bool) {
	m.status, m.statusErr, m.statusAt, m.statusPending = s, isErr, m.opts.Now(), false
}

// onKey handles a key press.
func (m *Model) onKey(k tea.KeyPressMsg) tea.Cmd {
	key := k.String()
	if key == "ctrl+c" {
		return tea.Quit
	}
	if m.confirm != "" {
		name, action := m.confirm, m.confirmAction
		m.confirm, m.confirmAction = "", ""
		if key == "y" || key == "Y" {
			return m.act(action, name, "", pastTense[action]+" "+name)
		}
		m.setStatus(action+" of "+name+" cancelled", false)
		return nil
	}
	if m.filtering {
		switch key {
		case "enter":
			m.filtering = false
		case "esc":
			m.filtering, m.filter = false, ""
		case "backspace":
			if r := []rune(m.filter); len(r) > 0 {
				m.filter = string(r[:len(r)-1])
			}
		default:
			if t := k.Key().Text; t != "" {
				m.filter += t
			}
		}
		return m.relist()
	}
	if m.help {
		m.help = false
		if key == "q" {
			return tea.Quit
		}
		return nil
	}
	switch key {
	case "q":
		return tea.Quit
	case "esc":
		m.status = ""
		if m.filter != "" {
			m.filter = ""
			return m.relist()
		}
	case "?", "h":
		m.help = true
	case "up", "k":
		return m.move(-1)
	case "down", "j":
		return m.move(1)
	case "pgup":
		return m.move(-10)
	case "pgdown":
		return m.move(10)
	case "home", "g":
		return m.move(-len(m.rows))
	case "end", "G":
		return m.move(len(m.rows))
	case "/":
		m.filtering = true
	}
	app := m.selectedApp()
	if app == "" {
		return nil
	}
	// Reload, start and scale keep the app serving: at once. Stop,
	// restart and delete interrupt it: they ask first.
	switch key {
	case "r":
		return m.act(api.ActionReload, app, "", "reloaded "+app)
	case "R":
		m.confirm, m.confirmAction = app, api.ActionRestart
	case "s":
		m.confirm, m.confirmAction = app, api.ActionStop
	case "S":
		return m.act(api.ActionStart, app, "", "started "+app)
	case "+", "=":
		return m.act(api.ActionScale, app, "+1", "scaled "+app+" up")
	case "-", "_":
		return m.act(api.ActionScale, app, "-1", "scaled "+app+" down")
	case "d", "delete":
		m.confirm, m.confirmAction = app, api.ActionDelete
	}
	return nil
}

// pastTense words the status of the actions that ask first.
var pastTense = map[string]string{
	api.ActionDelete: "deleted", api.ActionStop: "stopped", api.ActionRestart: "restarted",
}

// act runs an action on app in the background; its answer (or error)
// shows in the status line.
func (m *Model) act(action, app, instances, done string) tea.Cmd {
	m.setStatus(action+" "+app+"…", false)
	m.statusPending = true
	ctx, d := m.ctx, m.d
	return func() tea.Msg {
		// A reload waits for new processes to be ready: give it time.
		c, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		_, err := d.Act(c, action, api.ActionRequest{Targets: []string{app}, Instances: instances})
		return actionMsg{what: done, err: err}
	}
}

// followLogs follows the selected app's logs, if it is not followed yet.
func (m *Model) followLogs() tea.Cmd {
	app := m.selectedApp()
	if app == m.logApp || !m.connected {
		return nil
	}
	m.stopLogs()
	m.logs = nil
	m.logApp, m.logsOf = app, app
	if app == "" {
		return nil
	}
	m.logGen++
	gen := m.logGen
	ctx, cancel := context.WithCancel(m.ctx)
	m.logCancel = cancel
	ch := make(chan tea.Msg, 64)
	m.logCh, m.logDone = ch, ctx.Done()
	d, crash := m.d, m.crash
	go func() {
		// A panic here is outside Bubble Tea's recovery: it would end the
		// program with the terminal left raw. Hand it to Update instead.
		defer func() {
			if r := recover(); r != nil {
				select {
				case crash <- panicMsg{r, debug.Stack()}:
				default: // another one is on its way already
				}
			}
		}()
		err := d.Logs(ctx, client.LogQuery{Target: app, Instance: -1, Lines: 20, Follow: true}, func(l api.LogLine) error {
			select {
			case ch <- logMsg{gen, l}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		select {
		case ch <- logEndMsg{gen, err}:
		case <-ctx.Done():
		}
	}()
	return m.nextLog()
}

// nextLog waits for the next line of the stream being followed (or a
// panic of a follower, which Run also waits for).
func (m *Model) nextLog() tea.Cmd {
	ch, done, crash := m.logCh, m.logDone, m.crash
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		select {
		case msg := <-ch:
			return msg
		case msg := <-crash:
			return msg
		case <-done:
			return nil
		}
	}
}

func (m *Model) stopLogs() {
	if m.logCancel != nil {
		m.logCancel()
		m.logCancel = nil
	}
	m.logApp = ""
}
