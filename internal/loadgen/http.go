package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
)

// Limits on a response.
const (
	maxHeaderBytes = 64 << 10 // status line, header fields and trailers
	maxChunkLine   = 4 << 10  // one chunk-size line
)

var (
	// errMalformed marks a response that is not HTTP/1.x as tend reads it.
	errMalformed = errors.New("malformed response")
	// errClosedEarly: the connection ended before any byte of the response.
	errClosedEarly = errors.New("connection closed before any byte of the response")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errMalformed)
}

// classify names the kind of failure err is.
func classify(err error) Kind {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return Timeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, errClosedEarly):
		return Reset
	case errors.Is(err, errMalformed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return BadResponse
	}
	return Other
}

// httpRequest returns the request every HTTP request sends.
func httpRequest(cfg Config) []byte {
	req := "GET " + cfg.Path + " HTTP/1.1\r\nHost: " + cfg.Host + "\r\n"
	if !cfg.KeepAlive {
		req += "Connection: close\r\n"
	}
	return []byte(req + "\r\n")
}

// response is what readResponse keeps of a response.
type response struct {
	status int
	// close: the server ends the connection after this response.
	close bool
}

// readResponse reads one whole response from br, passing its body to tag.
// A connection that ends before the response's first byte gives an error
// wrapping errClosedEarly; one that ends later, io.ErrUnexpectedEOF.
func readResponse(br *bufio.Reader, tag *tagBuf) (response, error) {
	if _, err := br.Peek(1); err != nil {
		if errors.Is(err, io.EOF) {
			err = errClosedEarly
		}
		return response{}, fmt.Errorf("read response: %w", err)
	}
	budget := maxHeaderBytes
	for {
		resp, h, err := readHead(br, &budget)
		if err != nil {
			return resp, err
		}
		switch {
		case resp.status == 101:
			return resp, malformed("unexpected status 101 (switching protocols)")
		case resp.status < 200:
			continue // an interim response; the final one follows
		case resp.status == 204 || resp.status == 304:
			return resp, nil
		case h.chunked:
			return resp, readChunked(br, &budget, tag)
		case h.te:
			// A transfer coding other than chunked: the body ends with
			// the connection.
			resp.close = true
			return resp, readToEOF(br, tag)
		case h.length >= 0:
			if err := readBody(br, h.length, tag); err != nil {
				return resp, err
			}
			tag.end()
			return resp, nil
		default:
			resp.close = true
			return resp, readToEOF(br, tag)
		}
	}
}

// head is what readHead keeps of the header fields.
type head struct {
	length  int64 // -1 if absent
	te      bool  // Transfer-Encoding present
	chunked bool  // ... and its last coding is chunked
}

// readHead reads a status line and header fields.
func readHead(br *bufio.Reader, budget *int) (response, head, error) {
	var resp response
	h := head{length: -1}
	line, err := readLine(br, budget, "status line")
	if err != nil {
		return resp, h, err
	}
	// HTTP/1.x SP 3DIGIT [SP reason]
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[7] < '0' || line[7] > '9' ||
		line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return resp, h, malformed("status line %q", clip(line))
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return resp, h, malformed("status line %q", clip(line))
		}
		resp.status = resp.status*10 + int(c-'0')
	}
	if resp.status < 100 {
		return resp, h, malformed("status line %q", clip(line))
	}
	http10 := line[7] == '0'
	keepAlive := false
	for {
		line, err := readLine(br, budget, "header")
		if err != nil {
			return resp, h, err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := splitField(line)
		if !ok {
			return resp, h, malformed("header line %q", clip(line))
		}
		switch {
		case equalFold(name, "content-length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (h.length >= 0 && h.length != n) {
				return resp, h, malformed("content-length %q", clip(value))
			}
			h.length = n
		case equalFold(name, "transfer-encoding"):
			h.te = true
			eachToken(value, func(tok []byte) { h.chunked = equalFold(tok, "chunked") })
		case equalFold(name, "connection"):
			eachToken(value, func(tok []byte) {
				switch {
				case equalFold(tok, "close"):
					resp.close = true
				case equalFold(tok, "keep-alive"):
					keepAlive = true
				}
			})
		}
	}
	if http10 && !keepAlive {
		resp.close = true
	}
	return resp, h, nil
}

// readLine reads a line ending in LF (or CRLF) and returns it without
// them; it counts the line against *budget. The line is valid until the
// next read from br.
func readLine(br *bufio.Reader, budget *int, what string) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		long := append([]byte(nil), line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(long) <= *budget {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
	}
	*budget -= len(line)
	if *budget < 0 {
		return nil, malformed("%s: response head over %d bytes", what, maxHeaderBytes)
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// splitField splits "Name: value" and trims the value.
func splitField(line []byte) (name, value []byte, ok bool) {
	for i, c := range line {
		if c == ':' {
			if i == 0 {
				return nil, nil, false
			}
			return line[:i], trimSpace(line[i+1:]), true
		}
		if c <= ' ' || c == 0x7f {
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// eachToken calls f with each element of a comma-separated list.
func eachToken(list []byte, f func([]byte)) {
	for len(list) > 0 {
		i := 0
		for i < len(list) && list[i] != ',' {
			i++
		}
		if tok := trimSpace(list[:i]); len(tok) > 0 {
			f(tok)
		}
		if i == len(list) {
			break
		}
		list = list[i+1:]
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold reports whether b is lower, ignoring ASCII case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// clip shortens b for an error message.
func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// readBody reads n bytes of body, which it passes to tag and does not keep.
func readBody(br *bufio.Reader, n int64, tag *tagBuf) error {
	for n > 0 {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return fmt.Errorf("read body: %w", err)
			}
		}
		k := br.Buffered()
		if int64(k) > n {
			k = int(n)
		}
		p, _ := br.Peek(k)
		tag.feed(p)
		_, _ = br.Discard(k)
		n -= int64(k)
	}
	return nil
}

// readToEOF reads a body that ends with the connection.
func readToEOF(br *bufio.Reader, tag *tagBuf) error {
	for {
		if _, err := br.Peek(1); err != nil {
			if errors.Is(err, io.EOF) {
				tag.end()
				return nil
			}
			return fmt.Errorf("read body: %w", err)
		}
		p, _ := br.Peek(br.Buffered())
		tag.feed(p)
		_, _ = br.Discard(len(p))
	}
}

// readChunked reads a chunked body and its trailer fields.
func readChunked(br *bufio.Reader, budget *int, tag *tagBuf) error {
	for {
		lineBudget := maxChunkLine
		line, err := readLine(br, &lineBudget, "chunk size")
		if err != nil {
			return err
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return malformed("chunk size %q", clip(line))
		}
		if size == 0 {
			break
		}
		if err := readBody(br, size, tag); err != nil {
			return err
		}
		lineBudget = maxChunkLine
		line, err = readLine(br, &lineBudget, "chunk end")
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return malformed("chunk of %d bytes followed by %q", size, clip(line))
		}
	}
	tag.end()
	for {
		line, err := readLine(br, budget, "trailer")
		if err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
}

// parseChunkSize parses "1a2b[;ext]".
func parseChunkSize(line []byte) (int64, bool) {
	var n int64
	digits := 0
	for i, c := range line {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		case c == ';' || c == ' ' || c == '\t':
			rest := trimSpace(line[i:])
			return n, digits > 0 && (len(rest) == 0 || rest[0] == ';')
		default:
			return 0, false
		}
		if digits == 15 {
			return 0, false // over 2^60 bytes
		}
		n = n<<4 | int64(d)
		digits++
	}
	return n, digits > 0
}

// tagBuf collects the first line of a body, for Result.ByTag.
type tagBuf struct {
	buf  [MaxTagLen]byte
	n    int
	done bool // the line has ended (or is not a tag)
	ok   bool // ... and is a tag
}

func (t *tagBuf) reset() { *t = tagBuf{} }

func (t *tagBuf) feed(p []byte) {
	for _, c := range p {
		if t.done {
			return
		}
		switch {
		case c == '\n':
			t.finish()
		case c == '\r':
			// Allowed before the LF only; checked by finish.
			t.add(c)
		case c < ' ' || c == 0x7f:
			t.done = true
		default:
			t.add(c)
		}
	}
}

func (t *tagBuf) add(c byte) {
	if t.n == len(t.buf) {
		t.done = true // too long
		return
	}
	t.buf[t.n] = c
	t.n++
}

func (t *tagBuf) finish() {
	t.done = true
	if t.n > 0 && t.buf[t.n-1] == '\r' {
		t.n--
	}
	for _, c := range t.buf[:t.n] {
		if c == '\r' {
			return
		}
	}
	t.ok = t.n > 0
}

// end says the body has ended: its last line needs no LF.
func (t *tagBuf) end() {
	if !t.done {
		t.finish()
	}
}

// get returns the tag, or nil. It is valid until the next reset.
func (t *tagBuf) get() []byte {
	if !t.ok {
		return nil
	}
	return t.buf[:t.n]
}
