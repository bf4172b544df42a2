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
// When the daemon goes away (`tend update`, a crash), it says so and
// polls until a daemon answers again, then follows the logs anew.
package monit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/client"
)

// Daemon is what monit needs of the daemon: *client.Client.
type Daemon interface {
	Monitor(ctx context.Context, history string, points int) (api.Monitor, error)
	Act(ctx context.Context, action string, req api.ActionRequest) (api.ActionResult, error)
	Logs(ctx context.Context, q client.LogQuery, fn func(api.LogLine) error) error
}

// Options configure a Model.
type Options struct {
	// Color draws with colours (off with NO_COLOR or TERM=dumb); bold and
	// reverse video, which are not colours, stay.
	Color bool
	// Every is the polling period (default 1 s).
	Every time.Duration
	// Now is the clock for uptimes (default time.Now).
	Now func() time.Time
}

// maxLogLines bounds the log pane's memory.
const maxLogLines = 500

// Model is the monitor's state. Run drives it; tests drive it with
// teatest.
type Model struct {
	d    Daemon
	ctx  context.Context
	opts Options
	st   styles

	width, height int

	mon       api.Monitor
	history   map[int]api.History // of the selected app, by slot
	connected bool
	polled    bool // a first answer (or error) came
	err       error

	rows []row
	sel  int
	// selKey keeps the selection on the same app and slot when the list
	// changes under it.
	selKey string

	filter    string
	filtering bool
	confirm   string // app whose deletion waits for y
	help      bool
	status    string
	statusErr bool

	logs      []api.LogLine
	logApp    string
	logGen    int
	logCancel context.CancelFunc
	logCh     chan tea.Msg
	logDone   <-chan struct{}
}

// row is one line of the list: an app (inst -1) or one of its instances.
type row struct {
	app  *api.AppInfo
	inst int
}

func (r row) key() string { return fmt.Sprintf("%s/%d", r.app.Name, r.inst) }

// New returns a monitor of the daemon d; ctx ends its requests.
func New(ctx context.Context, d Daemon, o Options) *Model {
	if o.Every <= 0 {
		o.Every = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Model{d: d, ctx: ctx, opts: o, st: newStyles(o.Color), width: 80, height: 24, history: map[int]api.History{}}
}

// Run runs the monitor on the terminal until the user quits. Bubble Tea
// puts the terminal back as it was on exit, on a panic, and on SIGINT or
// SIGTERM.
func Run(ctx context.Context, d Daemon, o Options) error {
	m := New(ctx, d, o)
	defer m.stopLogs()
	_, err := tea.NewProgram(m, tea.WithContext(ctx)).Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// Messages.
type (
	tickMsg    struct{}
	monitorMsg struct {
		m   api.Monitor
		err error
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
)

// Init starts polling.
func (m *Model) Init() tea.Cmd { return m.poll() }

func (m *Model) tick() tea.Cmd {
	return tea.Tick(m.opts.Every, func(time.Time) tea.Msg { return tickMsg{} })
}

// poll asks the daemon for the figures, with the selected app's history
// as wide as the graphs.
func (m *Model) poll() tea.Cmd {
	app := m.selectedApp()
	points := max(m.width-16, 10)
	ctx := m.ctx
	d := m.d
	return func() tea.Msg {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		mon, err := d.Monitor(c, app, points)
		if err != nil && app != "" && errors.Is(err, api.ErrNotFound) {
			mon, err = d.Monitor(c, "", 0) // the app was just deleted
		}
		return monitorMsg{mon, err}
	}
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = max(msg.Width, 1), max(msg.Height, 1)
		return m, nil
	case tickMsg:
		return m, m.poll()
	case monitorMsg:
		return m, m.onMonitor(msg)
	case actionMsg:
		if msg.err != nil {
			m.setStatus(msg.err.Error(), true)
		} else {
			m.setStatus(msg.what, false)
		}
		return m, m.poll()
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
			// The stream ended (daemon gone, app deleted): the next
			// successful poll follows the logs again.
			m.logApp = ""
		}
		return m, nil
	case tea.KeyPressMsg:
		return m, m.onKey(msg)
	}
	return m, nil
}

func (m *Model) onMonitor(msg monitorMsg) tea.Cmd {
	m.polled = true
	if msg.err != nil {
		if m.connected || m.err == nil {
			m.stopLogs()
		}
		m.connected, m.err = false, msg.err
		return m.tick()
	}
	m.connected, m.err = true, nil
	m.mon = msg.m
	m.history = map[int]api.History{}
	for _, h := range msg.m.History {
		m.history[h.Instance] = h
	}
	m.rebuild()
	return tea.Batch(m.tick(), m.followLogs())
}

// rebuild lays out the rows from the latest answer and the filter,
// keeping the selection where it was.
func (m *Model) rebuild() {
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
	m.sel = 0
	for i, r := range m.rows {
		if r.key() == m.selKey {
			m.sel = i
		}
	}
	if len(m.rows) > 0 {
		m.selKey = m.rows[m.sel].key()
	}
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
	before := m.selKey
	m.selKey = m.rows[m.sel].key()
	if strings.Split(before, "/")[0] != m.rows[m.sel].app.Name {
		// Another app: its history and logs.
		m.history = map[int]api.History{}
		return tea.Batch(m.poll(), m.followLogs())
	}
	return nil
}

func (m *Model) setStatus(s string, isErr bool) {
	m.status, m.statusErr = s, isErr
}

// onKey handles a key press.
func (m *Model) onKey(k tea.KeyPressMsg) tea.Cmd {
	key := k.String()
	if key == "ctrl+c" {
		return tea.Quit
	}
	if m.confirm != "" {
		name := m.confirm
		m.confirm = ""
		if key == "y" || key == "Y" {
			return m.act(api.ActionDelete, name, "", "deleted "+name)
		}
		m.setStatus("delete of "+name+" cancelled", false)
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
		m.rebuild()
		return m.followLogs()
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
		if m.filter != "" {
			m.filter = ""
			m.rebuild()
		}
		m.status = ""
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
	switch key {
	case "r":
		return m.act(api.ActionReload, app, "", "reloaded "+app)
	case "R":
		return m.act(api.ActionRestart, app, "", "restarted "+app)
	case "s":
		return m.act(api.ActionStop, app, "", "stopped "+app)
	case "S":
		return m.act(api.ActionStart, app, "", "started "+app)
	case "+", "=":
		return m.act(api.ActionScale, app, "+1", "scaled "+app+" up")
	case "-", "_":
		return m.act(api.ActionScale, app, "-1", "scaled "+app+" down")
	case "d", "delete":
		m.confirm = app
	}
	return nil
}

// act runs an action on app in the background; its answer (or error)
// shows in the status line.
func (m *Model) act(action, app, instances, done string) tea.Cmd {
	m.setStatus(action+" "+app+"…", false)
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
	m.logApp = app
	if app == "" {
		return nil
	}
	m.logGen++
	gen := m.logGen
	ctx, cancel := context.WithCancel(m.ctx)
	m.logCancel = cancel
	ch := make(chan tea.Msg, 64)
	m.logCh, m.logDone = ch, ctx.Done()
	d := m.d
	go func() {
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

// nextLog waits for the next line of the stream being followed.
func (m *Model) nextLog() tea.Cmd {
	ch, done := m.logCh, m.logDone
	if ch == nil {
		return nil
	}
	return func() tea.Msg {
		select {
		case msg := <-ch:
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
