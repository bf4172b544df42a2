package uhttp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Request is a request received by the server.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Header Header
	// Body holds exactly the bytes the request's Content-Length announced.
	Body io.Reader
	// Conn is the connection the request came on, for peer credentials.
	Conn *os.File
	ctx  context.Context
}

// Context is done when the client goes away or the server shuts down.
func (r *Request) Context() context.Context { return r.ctx }

// Response is what a handler writes. The body is held until the handler
// returns, then sent with its Content-Length; a handler that streams calls
// Flush, after which headers have gone out and the body ends with the
// connection.
type Response struct {
	w       *bufio.Writer
	status  int
	header  Header
	body    bytes.Buffer
	flushed bool
	err     error
}

// Header returns the header fields to send; change them before Flush.
func (w *Response) Header() Header { return w.header }

// WriteHeader sets the status code (200 unless set).
func (w *Response) WriteHeader(status int) { w.status = status }

// Write adds to the body.
func (w *Response) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.flushed {
		n, err := w.w.Write(p)
		w.err = err
		return n, err
	}
	return w.body.Write(p)
}

// Flush sends what was written so far; the response becomes a stream.
func (w *Response) Flush() error {
	if w.err != nil {
		return w.err
	}
	if !w.flushed {
		w.flushed = true
		w.writeHead(-1)
		if _, err := w.w.Write(w.body.Bytes()); err != nil {
			w.err = err
			return err
		}
		w.body.Reset()
	}
	w.err = w.w.Flush()
	return w.err
}

func (w *Response) writeHead(length int) {
	fmt.Fprintf(w.w, "HTTP/1.1 %d %s\r\n", w.status, StatusText(w.status))
	for k, v := range w.header {
		fmt.Fprintf(w.w, "%s: %s\r\n", canonical(k), v)
	}
	if length >= 0 && w.status != 204 { // a 204 has no body, nor its length (RFC 9110, 8.6)
		fmt.Fprintf(w.w, "Content-Length: %d\r\n", length)
	}
	w.w.WriteString("Connection: close\r\n\r\n")
}

// finish sends a response that was not streamed.
func (w *Response) finish() error {
	if w.flushed {
		return w.Flush()
	}
	w.writeHead(w.body.Len())
	if _, err := w.w.Write(w.body.Bytes()); err != nil {
		return err
	}
	return w.w.Flush()
}

// Handler serves one request.
type Handler func(w *Response, r *Request)

// Listener is what Serve accepts connections from.
type Listener interface {
	Accept() (*os.File, error)
	Close() error
}

// Server serves requests with a Handler.
type Server struct {
	Handler Handler
	// MaxBody bounds request bodies.
	MaxBody int64
	// HeaderTimeout bounds the time a client takes to send its request.
	HeaderTimeout time.Duration
	// OnError, if set, hears about requests that could not be read.
	OnError func(error)
	// MaxConns, if above 0, bounds the connections served at once: while
	// that many are open, Serve accepts no more, and new ones wait in the
	// kernel's accept queue. Each connection holds a descriptor and a
	// goroutine until its request is read, for up to HeaderTimeout.
	MaxConns int
	// OnAcceptError, if set, hears about each failed accept that Serve
	// retries after the delay retry (see Serve).
	OnAcceptError func(err error, retry time.Duration)
}

// acceptRetry tells which accept errors Serve retries. Out of
// descriptors or memory (later), it waits, 5 ms at first and twice as
// long each time up to a second (as net/http does), so that a process at
// its RLIMIT_NOFILE neither spins nor stops serving for good; the others
// (now) are a connection that failed before it was accepted.
func acceptRetry(err error) (later, now bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false, false
	}
	switch errno {
	case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM:
		return true, false
	case syscall.ECONNABORTED, syscall.EINTR, syscall.EPROTO:
		return false, true
	}
	return false, false
}

// Serve accepts connections until ctx is done, then closes ln, ends the
// requests in progress (their contexts are cancelled: log streams stop) and
// waits for them, at most a few seconds. Out of descriptors (EMFILE,
// ENFILE) or memory (ENOBUFS, ENOMEM), it waits and accepts again; any
// other accept error ends it: it closes ln, so that clients are refused
// rather than left waiting on a socket nobody accepts on, and returns the
// error.
func (s *Server) Serve(ctx context.Context, ln Listener) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	var slots chan struct{}
	if s.MaxConns > 0 {
		slots = make(chan struct{}, s.MaxConns)
	}
	var delay time.Duration
	var err error
	for {
		if slots != nil {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		var c *os.File
		c, err = ln.Accept()
		if err != nil {
			if slots != nil {
				<-slots
			}
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) {
				err = nil
				break
			}
			later, now := acceptRetry(err)
			if now {
				continue
			}
			if !later {
				break
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			if s.OnAcceptError != nil {
				s.OnAcceptError(err, delay)
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			continue
		}
		delay = 0
		wg.Go(func() {
			if slots != nil {
				defer func() { <-slots }()
			}
			s.serveConn(ctx, c)
		})
	}
	if err != nil {
		_ = ln.Close()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
	}
	return err
}

func (s *Server) serveConn(ctx context.Context, c *os.File) {
	defer c.Close()
	if s.HeaderTimeout > 0 {
		_ = c.SetReadDeadline(time.Now().Add(s.HeaderTimeout))
	}
	br := bufio.NewReaderSize(c, 4096)
	bw := bufio.NewWriterSize(c, 16<<10)
	req, status, err := s.readRequest(br, bw, c)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return // the client left without asking anything
		}
		if s.OnError != nil {
			s.OnError(err)
		}
		w := &Response{w: bw, status: status, header: Header{"content-type": "text/plain; charset=utf-8"}}
		w.body.WriteString(err.Error() + "\n")
		_ = w.finish()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req.ctx = rctx
	// One request per connection: once the request is read, the next read
	// ends only when the client hangs up, which cancels the request. That
	// is how a follower that quits (Ctrl-C) ends its log stream.
	go func() {
		var b [1]byte
		_, _ = br.Read(b[:])
		cancel()
	}()
	w := &Response{w: bw, status: 200, header: Header{}}
	s.Handler(w, req)
	_ = w.finish()
}

// readRequest reads and checks a request; on error it returns the status
// to answer with.
func (s *Server) readRequest(br *bufio.Reader, bw *bufio.Writer, c *os.File) (*Request, int, error) {
	budget := maxLine
	line, err := readLine(br, &budget)
	if err != nil {
		return nil, 400, err
	}
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || method == "" || !strings.HasPrefix(proto, "HTTP/1.") {
		return nil, 400, badf("request line %q", line)
	}
	path, query, err := splitTarget(target)
	if err != nil {
		return nil, 400, err
	}
	h, err := readHeader(br)
	if err != nil {
		return nil, 400, err
	}
	n, err := contentLength(h, s.MaxBody)
	switch {
	case errors.Is(err, errNeedLength):
		return nil, 411, err
	case errors.Is(err, errTooLarge):
		return nil, 413, fmt.Errorf("request body larger than %d bytes", s.MaxBody)
	case err != nil:
		return nil, 400, err
	}
	if n < 0 {
		n = 0
	}
	if strings.EqualFold(h.Get("Expect"), "100-continue") && n > 0 {
		// curl asks before sending a large body.
		fmt.Fprintf(bw, "HTTP/1.1 100 Continue\r\n\r\n")
		if err := bw.Flush(); err != nil {
			return nil, 400, err
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, 400, badf("body shorter than its Content-Length %d", n)
	}
	return &Request{Method: method, Path: path, Query: query, Header: h, Body: bytes.NewReader(body), Conn: c}, 0, nil
}
