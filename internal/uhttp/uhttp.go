// Package uhttp speaks the part of HTTP/1.1 the control socket needs: one
// request per connection, bodies with a Content-Length, responses that end
// with the connection (so a log stream can run as long as it likes). curl
// and any HTTP client talk to it as they talk to any server.
//
// It exists because net/http imports net, and net's cgo DNS resolver makes
// every default build of tend a dynamically linked cgo binary (see package
// socket). The subset is small on purpose, and strict: anything it does not
// understand is refused with a 4xx, never guessed at.
package uhttp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// Limits on what a peer may send.
const (
	maxLine    = 8 << 10  // a request or status line, or one header line
	maxHeaders = 64 << 10 // all header lines together
	maxFields  = 100
)

// Header holds header fields by lower-case name, one value each.
type Header map[string]string

// Get returns the value of the field name (any case).
func (h Header) Get(name string) string { return h[strings.ToLower(name)] }

// Set sets the field name (any case).
func (h Header) Set(name, value string) { h[strings.ToLower(name)] = value }

// canonical writes a header name as HTTP tradition has it:
// "content-type" as "Content-Type".
func canonical(name string) string {
	b := []byte(name)
	up := true
	for i, c := range b {
		if up && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		up = c == '-'
	}
	return string(b)
}

// errBadMessage marks a malformed message: the server answers 400.
var errBadMessage = errors.New("malformed HTTP message")

func badf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), errBadMessage)
}

// readLine reads one CRLF- (or LF-) terminated line of at most maxLine
// bytes, and counts it against *budget.
func readLine(r *bufio.Reader, budget *int) (string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine || len(line) > *budget {
			return "", badf("line too long")
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return "", badf("message cut short")
		}
		return "", err
	}
	*budget -= len(line)
	return strings.TrimRight(string(line), "\r\n"), nil
}

// readHeader reads header fields up to the empty line that ends them.
func readHeader(r *bufio.Reader) (Header, error) {
	h := Header{}
	budget := maxHeaders
	for n := 0; ; n++ {
		line, err := readLine(r, &budget)
		if err != nil {
			return nil, err
		}
		if line == "" {
			return h, nil
		}
		if n >= maxFields {
			return nil, badf("more than %d header fields", maxFields)
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, badf("folded header line")
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, badf("header line %q", line)
		}
		h[strings.ToLower(name)] = strings.TrimSpace(value)
	}
}

// contentLength reads the body length of a message; a message with a
// Transfer-Encoding (chunked) is refused: the subset does not decode it.
func contentLength(h Header, limit int64) (int64, error) {
	if h.Get("Transfer-Encoding") != "" {
		return 0, errNeedLength
	}
	s := h.Get("Content-Length")
	if s == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, badf("Content-Length %q", s)
	}
	if limit >= 0 && n > limit {
		return 0, errTooLarge
	}
	return n, nil
}

var (
	errNeedLength = errors.New("a request body needs a Content-Length (chunked encoding is not supported)")
	errTooLarge   = errors.New("request body too large")
)

// splitTarget separates a request target into its path and query.
func splitTarget(target string) (string, url.Values, error) {
	if !strings.HasPrefix(target, "/") {
		return "", nil, badf("request target %q is not a path", target)
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return "", nil, badf("request target %q", target)
	}
	return u.Path, u.Query(), nil
}

// StatusText returns the reason phrase of the statuses tend uses.
func StatusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 200:
		return "OK"
	case 204:
		return "No Content"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 409:
		return "Conflict"
	case 411:
		return "Length Required"
	case 413:
		return "Content Too Large"
	case 500:
		return "Internal Server Error"
	}
	return "Status " + strconv.Itoa(code)
}
