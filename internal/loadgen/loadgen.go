// Package loadgen puts an app under HTTP or TCP load and accounts for every
// request: each one either succeeds or is counted as a failure of a named
// kind. `tend verify` uses it to show that reloads drop nothing, and the
// end-to-end tests use it to assert exactly that.
//
// It never retries, never hides a failure and never invents one: a request
// that fails is counted once, whatever the reason, and a request cut short
// because the caller stopped the load is counted as abandoned, not failed.
//
// It does not import package net (see docs/layout.md): connections come
// from a DialFunc, such as the one DialTCP returns.
package loadgen

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is a connection to the app. An *os.File holding a non-blocking
// socket is one, and so is a net.Conn.
type Conn interface {
	io.ReadWriteCloser
	SetDeadline(time.Time) error
}

// DialFunc opens a connection. It must give up when ctx is done (the
// context carries the request's deadline).
type DialFunc func(ctx context.Context) (Conn, error)

// Modes of Config.Mode.
const (
	ModeHTTP = "http"
	ModeTCP  = "tcp"
)

// Config says what load to apply. The zero value of each optional field
// selects its default.
type Config struct {
	// Dial opens connections to the app. Required.
	Dial DialFunc
	// Connections is the number of concurrent workers, each with at most
	// one connection open (default 8).
	Connections int
	// KeepAlive reuses a connection for many HTTP requests. Without it,
	// every request goes on a new connection and says "Connection: close".
	// TCP mode always uses a new connection per request.
	KeepAlive bool
	// Mode is ModeHTTP (default) or ModeTCP.
	Mode string
	// Host and Path make the HTTP request: "GET <Path>" with "Host: <Host>"
	// (defaults "/" and "localhost").
	Host, Path string
	// Timeout bounds each request, from the dial (if it needs one) to the
	// end of the response (default 5s).
	Timeout time.Duration
	// Rate caps the requests started per second, over all connections;
	// 0 starts them as fast as the app answers.
	Rate int
	// Requests stops the load once that many requests have been started
	// (and have finished); 0 runs until the context is done.
	Requests int
	// TCPPayload is what TCP mode writes on each connection (nothing if
	// empty). A request succeeds when at least one byte comes back within
	// Timeout; the connection is closed then.
	TCPPayload []byte
}

// Defaults of Config.
const (
	DefaultConnections = 8
	DefaultTimeout     = 5 * time.Second
	DefaultHost        = "localhost"
	DefaultPath        = "/"
)

// Bounds on what a Result keeps.
const (
	// MaxSamples is how many failures a Result describes in full.
	MaxSamples = 20
	// MaxTags is how many distinct response tags a Result counts.
	MaxTags = 64
	// MaxTagLen is the longest first line of a body taken as a tag.
	MaxTagLen = 64
	// maxEvents is how many failures are kept (16 bytes each) for
	// FailuresBetween.
	maxEvents = 1 << 18
	// maxErrText bounds the error text of a sample.
	maxErrText = 256
)

func (cfg Config) withDefaults() (Config, error) {
	if cfg.Dial == nil {
		return cfg, errors.New("loadgen: no dial function")
	}
	if cfg.Connections < 0 || cfg.Timeout < 0 || cfg.Rate < 0 || cfg.Requests < 0 {
		return cfg, errors.New("loadgen: connections, timeout, rate and requests must not be negative")
	}
	if cfg.Connections == 0 {
		cfg.Connections = DefaultConnections
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Host == "" {
		cfg.Host = DefaultHost
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeHTTP
	case ModeHTTP, ModeTCP:
	default:
		return cfg, fmt.Errorf("loadgen: mode %q: want %q or %q", cfg.Mode, ModeHTTP, ModeTCP)
	}
	if cfg.Mode == ModeHTTP {
		if cfg.Path[0] != '/' || !isFieldText(cfg.Path, false) {
			return cfg, fmt.Errorf("loadgen: path %q: want an absolute path without spaces or control characters", cfg.Path)
		}
		if !isFieldText(cfg.Host, false) {
			return cfg, fmt.Errorf("loadgen: host %q: want no spaces or control characters", cfg.Host)
		}
	}
	return cfg, nil
}

// Kind is the kind of a failed request.
type Kind int

// The kinds of failure, in the order Kinds lists them.
const (
	// Refused: the connection was refused (nothing listening).
	Refused Kind = iota + 1
	// Reset: the connection was reset or broken (ECONNRESET, EPIPE), or
	// closed before any byte of the response arrived.
	Reset
	// Timeout: no complete response within Config.Timeout.
	Timeout
	// Status5xx: the response had a status of 500 or more.
	Status5xx
	// BadResponse: the response was malformed or ended early.
	BadResponse
	// Other: anything else, such as a 4xx status or an unreachable host.
	Other
)

const numKinds = int(Other) + 1

// Kinds returns every Kind, in a fixed order for printing.
func Kinds() []Kind {
	return []Kind{Refused, Reset, Timeout, Status5xx, BadResponse, Other}
}

// String names the kind as tend verify prints it.
func (k Kind) String() string {
	switch k {
	case Refused:
		return "refused"
	case Reset:
		return "reset"
	case Timeout:
		return "timeout"
	case Status5xx:
		return "5xx"
	case BadResponse:
		return "bad response"
	case Other:
		return "other"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Failure describes one failed request.
type Failure struct {
	// At is when the failure was seen, after Result.Start.
	At   time.Duration
	Kind Kind
	// Err says what went wrong.
	Err string
	// Reused reports whether the request went on a connection that had
	// already carried a response (false: on a new connection).
	Reused bool
}

func (f Failure) String() string {
	conn := "new connection"
	if f.Reused {
		conn = "reused connection"
	}
	return fmt.Sprintf("+%.3fs %v (%s): %s", f.At.Seconds(), f.Kind, conn, f.Err)
}

// event is a failure as FailuresBetween needs it.
type event struct {
	at   time.Duration
	kind Kind
}

// Result counts what happened to the requests.
type Result struct {
	// Start is when the load started; Elapsed, how long it has run.
	Start   time.Time
	Elapsed time.Duration
	// Requests is the number of requests that finished: OK plus failed.
	Requests int
	OK       int
	// Failures counts the failed requests by kind; kinds that did not
	// happen are absent.
	Failures map[Kind]int
	// FailureSamples describes the first MaxSamples failures.
	FailureSamples []Failure
	// Abandoned counts requests in flight when the load was stopped:
	// neither OK nor failed.
	Abandoned int
	// Conns counts connections opened.
	Conns int
	// P50, P99 and Max are latencies of the successful requests (within
	// 1%; Max is exact), from the start of the request (its dial, if it
	// needed one) to the end of the response.
	P50, P99, Max time.Duration
	// ByTag counts successful responses by the first line of their body,
	// when it is a short line of printable text such as "ok 4711" (an app
	// saying which instance answered). It counts at most MaxTags distinct
	// lines; OtherTags counts responses whose line came after those.
	ByTag     map[string]int
	OtherTags int

	events       []event // every failure, in the order recorded
	eventsLost   int     // failures after events filled up
	firstLostAt  time.Duration
	failureTotal int
}

// Failed returns the number of failed requests.
func (r Result) Failed() int { return r.failureTotal }

// FailuresBetween counts the failures seen at or after from and before to,
// by kind. A run keeps the times of its first 262144 failures; exact
// reports whether the count covers every failure in the window.
func (r Result) FailuresBetween(from, to time.Time) (counts map[Kind]int, exact bool) {
	lo, hi := from.Sub(r.Start), to.Sub(r.Start)
	counts = make(map[Kind]int)
	for _, e := range r.events {
		if lo <= e.at && e.at < hi {
			counts[e.kind]++
		}
	}
	return counts, r.eventsLost == 0 || hi <= r.firstLostAt
}

// Runner applies load in the background until stopped.
type Runner struct {
	cfg     Config
	req     []byte // the HTTP request
	cancel  context.CancelFunc
	done    chan struct{}
	started atomic.Int64 // requests begun, for Config.Requests
	pace    pacer

	stopOnce sync.Once
	final    Result

	mu sync.Mutex // guards the fields below
	st stats
}

// stats is what the workers record.
type stats struct {
	start          time.Time
	requests, ok   int
	abandoned      int
	conns          int
	failures       [numKinds]int
	failureTotal   int
	samples        []Failure
	events         []event
	eventsLost     int
	firstLostAt    time.Duration
	hist           histogram
	tags           map[string]int
	otherTags      int
	stoppedElapsed time.Duration // set by Stop
}

// Start starts the load; it runs until ctx is done, Config.Requests have
// finished, or Stop is called. The error is for a bad Config only.
func Start(ctx context.Context, cfg Config) (*Runner, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Runner{
		cfg:    cfg,
		req:    httpRequest(cfg),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	if cfg.Rate > 0 {
		r.pace.interval = time.Second / time.Duration(cfg.Rate)
	}
	r.st.start = time.Now()
	r.st.tags = make(map[string]int)
	var wg sync.WaitGroup
	for range cfg.Connections {
		wg.Go(func() { r.work(ctx) })
	}
	go func() {
		wg.Wait()
		close(r.done)
	}()
	return r, nil
}

// Run applies load until ctx is done or Config.Requests have finished, and
// returns what happened. The error is for a bad Config only.
func Run(ctx context.Context, cfg Config) (Result, error) {
	r, err := Start(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	select {
	case <-ctx.Done():
	case <-r.done:
	}
	return r.Stop(), nil
}

// Done is closed when the load has ended by itself: its context is done
// or Config.Requests have finished.
func (r *Runner) Done() <-chan struct{} { return r.done }

// Stop ends the load, waits for the workers to finish, and returns the
// final Result. Requests in flight are abandoned, not counted as failed.
// Calling it again returns the same Result.
func (r *Runner) Stop() Result {
	r.stopOnce.Do(func() {
		r.cancel()
		<-r.done
		r.mu.Lock()
		r.st.stoppedElapsed = time.Since(r.st.start)
		r.mu.Unlock()
		r.final = r.Snapshot()
	})
	return r.final
}

// Snapshot returns the counts so far; it may be called at any time, also
// while the load runs.
func (r *Runner) Snapshot() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.st
	res := Result{
		Start:          s.start,
		Elapsed:        s.stoppedElapsed,
		Requests:       s.requests,
		OK:             s.ok,
		Failures:       make(map[Kind]int),
		FailureSamples: append([]Failure(nil), s.samples...),
		Abandoned:      s.abandoned,
		Conns:          s.conns,
		P50:            s.hist.quantile(0.50),
		P99:            s.hist.quantile(0.99),
		Max:            s.hist.max,
		ByTag:          make(map[string]int, len(s.tags)),
		OtherTags:      s.otherTags,
		// Events are only appended to, so the snapshot can share them.
		events:       s.events[:len(s.events):len(s.events)],
		eventsLost:   s.eventsLost,
		firstLostAt:  s.firstLostAt,
		failureTotal: s.failureTotal,
	}
	if res.Elapsed == 0 {
		res.Elapsed = time.Since(s.start)
	}
	for k, n := range s.failures {
		if n > 0 {
			res.Failures[Kind(k)] = n
		}
	}
	for tag, n := range s.tags {
		res.ByTag[tag] = n
	}
	return res
}

// outcome is what became of one request.
type outcome struct {
	abandoned bool
	kind      Kind // 0 if the request succeeded
	err       error
	broken    bool // err came from the connection, not the response
	reused    bool
	latency   time.Duration
	tag       []byte // of a success; nil if none
}

func (r *Runner) record(o *outcome) {
	end := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.st
	switch {
	case o.abandoned:
		s.abandoned++
	case o.kind == 0:
		s.requests++
		s.ok++
		s.hist.add(o.latency)
		if o.tag != nil {
			if n, ok := s.tags[string(o.tag)]; ok {
				s.tags[string(o.tag)] = n + 1
			} else if len(s.tags) < MaxTags {
				s.tags[string(o.tag)] = 1
			} else {
				s.otherTags++
			}
		}
	default:
		s.requests++
		s.failures[o.kind]++
		s.failureTotal++
		at := end.Sub(s.start)
		if len(s.samples) < MaxSamples {
			text := o.err.Error()
			if len(text) > maxErrText {
				text = text[:maxErrText] + "..."
			}
			s.samples = append(s.samples, Failure{At: at, Kind: o.kind, Err: text, Reused: o.reused})
		}
		if len(s.events) < maxEvents {
			s.events = append(s.events, event{at: at, kind: o.kind})
		} else {
			if s.eventsLost == 0 || at < s.firstLostAt {
				s.firstLostAt = at
			}
			s.eventsLost++
		}
	}
}

func (r *Runner) connOpened() {
	r.mu.Lock()
	r.st.conns++
	r.mu.Unlock()
}

// pacer spaces out the starts of requests for Config.Rate.
type pacer struct {
	interval time.Duration // 0: no pacing
	mu       sync.Mutex
	next     time.Time
}

// wait waits for the next start slot; false if ctx ended first.
func (p *pacer) wait(ctx context.Context) bool {
	if p.interval == 0 {
		return true
	}
	now := time.Now()
	p.mu.Lock()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(p.interval)
	p.mu.Unlock()
	d := at.Sub(now)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// worker is one of Config.Connections: it sends one request at a time.
type worker struct {
	r   *Runner
	ctx context.Context

	conn   Conn
	br     *bufio.Reader
	reused bool        // the open conn has carried a response
	unhook func() bool // stops the conn's stop hook
	tag    tagBuf
}

// longAgo is a deadline in the past: setting it ends blocked reads and
// writes at once.
var longAgo = time.Unix(1, 0)

func (r *Runner) work(ctx context.Context) {
	w := &worker{r: r, ctx: ctx}
	defer w.closeConn()
	var o outcome
	for ctx.Err() == nil {
		if r.cfg.Requests > 0 && r.started.Add(1) > int64(r.cfg.Requests) {
			return
		}
		if !r.pace.wait(ctx) {
			return
		}
		o = outcome{}
		if r.cfg.Mode == ModeTCP {
			w.tcpRequest(&o)
		} else {
			w.httpRequest(&o)
		}
		if o.broken && ctx.Err() != nil {
			// The failure may be of the caller's making: stopping
			// ends blocked reads with a deadline in the past.
			o.abandoned = true
		}
		r.record(&o)
	}
}

// dial opens w.conn with the request's deadline.
func (w *worker) dial(deadline time.Time) (Kind, error) {
	ctx, cancel := context.WithDeadline(w.ctx, deadline)
	defer cancel()
	c, err := w.r.cfg.Dial(ctx)
	if err == nil && c == nil {
		err = errors.New("no connection and no error")
	}
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && w.ctx.Err() == nil {
			return Timeout, fmt.Errorf("dial: %w", err)
		}
		return classify(err), fmt.Errorf("dial: %w", err)
	}
	w.r.connOpened()
	w.conn = c
	w.reused = false
	// Stopping the load ends whatever the connection is blocked in.
	w.unhook = context.AfterFunc(w.ctx, func() { _ = c.SetDeadline(longAgo) })
	if w.br == nil {
		w.br = bufio.NewReaderSize(c, 4096)
	} else {
		w.br.Reset(c)
	}
	return 0, nil
}

// setDeadline sets the request's deadline on w.conn. It fails if the load
// is stopping, lest it undo the stop hook's deadline in the past.
func (w *worker) setDeadline(deadline time.Time) error {
	if err := w.conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	return w.ctx.Err()
}

func (w *worker) closeConn() {
	if w.conn == nil {
		return
	}
	w.unhook()
	w.conn.Close()
	w.conn = nil
	w.reused = false
}

// fail closes the connection, whose state is now unknown, and records the
// failure in o.
func (w *worker) fail(o *outcome, kind Kind, err error) {
	w.closeConn()
	o.kind, o.err, o.broken = kind, err, true
}

func (w *worker) httpRequest(o *outcome) {
	start := time.Now()
	deadline := start.Add(w.r.cfg.Timeout)
	if w.conn == nil {
		if kind, err := w.dial(deadline); err != nil {
			o.kind, o.err, o.broken = kind, err, true
			return
		}
	}
	o.reused = w.reused
	if err := w.setDeadline(deadline); err != nil {
		w.fail(o, Other, err)
		return
	}
	if _, err := w.conn.Write(w.r.req); err != nil {
		w.fail(o, classify(err), fmt.Errorf("write request: %w", err))
		return
	}
	w.tag.reset()
	resp, err := readResponse(w.br, &w.tag)
	if err != nil {
		w.fail(o, classify(err), err)
		return
	}
	o.latency = time.Since(start)
	if resp.close || !w.r.cfg.KeepAlive {
		w.closeConn()
	} else {
		w.reused = true
	}
	switch {
	case resp.status >= 500:
		o.kind, o.err = Status5xx, fmt.Errorf("status %d", resp.status)
	case resp.status >= 400:
		o.kind, o.err = Other, fmt.Errorf("status %d", resp.status)
	default:
		o.tag = w.tag.get()
	}
}

func (w *worker) tcpRequest(o *outcome) {
	start := time.Now()
	deadline := start.Add(w.r.cfg.Timeout)
	if kind, err := w.dial(deadline); err != nil {
		o.kind, o.err, o.broken = kind, err, true
		return
	}
	defer w.closeConn()
	if err := w.setDeadline(deadline); err != nil {
		w.fail(o, Other, err)
		return
	}
	if len(w.r.cfg.TCPPayload) > 0 {
		if _, err := w.conn.Write(w.r.cfg.TCPPayload); err != nil {
			w.fail(o, classify(err), fmt.Errorf("write: %w", err))
			return
		}
	}
	w.tag.reset()
	for {
		buf, err := w.br.Peek(1)
		if len(buf) > 0 {
			// Take what else has arrived, for a tag line.
			buf, _ = w.br.Peek(w.br.Buffered())
			w.tag.feed(buf) // a tag only if its line is complete
			break
		}
		if errors.Is(err, io.EOF) {
			err = errClosedEarly
		}
		if err != nil {
			w.fail(o, classify(err), fmt.Errorf("read: %w", err))
			return
		}
	}
	o.latency = time.Since(start)
	o.tag = w.tag.get()
}

// isFieldText reports whether s has no control characters, nor spaces
// unless spaceOK.
func isFieldText(s string, spaceOK bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c == 0x7f || (c == ' ' && !spaceOK) {
			return false
		}
	}
	return true
}
