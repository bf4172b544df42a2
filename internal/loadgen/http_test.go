package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
)

func TestReadResponse(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		status   int
		close    bool
		tag      string
		kind     Kind // of the error; 0: none
		rest     string
	}{
		{name: "length", in: "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nok 12\r\nxNEXT", status: 200, tag: "ok 12", rest: "NEXT"},
		{name: "no reason", in: "HTTP/1.1 204\r\n\r\nNEXT", status: 204, rest: "NEXT"},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 2\n\nokNEXT", status: 200, tag: "ok", rest: "NEXT"},
		{name: "304 has no body", in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\nNEXT", status: 304, rest: "NEXT"},
		{name: "interim", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200},
		{name: "chunked wins", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nNEXT", status: 200, tag: "ok", rest: "NEXT"},
		{name: "other coding", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nbinary", status: 200, close: true, tag: "binary"},
		{name: "to EOF", in: "HTTP/1.1 500 Oops\r\n\r\ndown\n", status: 500, close: true, tag: "down"},
		{name: "keep-alive 1.0", in: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", status: 200},
		{name: "not a tag: control", in: "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok\x00\n", status: 200},
		{name: "not a tag: long", in: "HTTP/1.1 200 OK\r\n\r\n" + strings.Repeat("a", 65), status: 200, close: true},
		{name: "tag of 64", in: "HTTP/1.1 200 OK\r\n\r\n" + strings.Repeat("a", 64) + "\nmore", status: 200, close: true, tag: strings.Repeat("a", 64)},
		{name: "empty first line", in: "HTTP/1.1 200 OK\r\n\r\n\nok", status: 200, close: true},
		{name: "empty", in: "", kind: Reset},
		{name: "early EOF", in: "HTTP/1.1 200 OK\r\nContent-", kind: BadResponse},
		{name: "two lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", kind: BadResponse},
		{name: "same length twice", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", status: 200, tag: "ab"},
		{name: "negative length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", kind: BadResponse},
		{name: "space in name", in: "HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", kind: BadResponse},
		{name: "folded", in: "HTTP/1.1 200 OK\r\n folded\r\n\r\n", kind: BadResponse},
		{name: "http/2", in: "HTTP/2 200\r\n\r\n", kind: BadResponse},
		{name: "101", in: "HTTP/1.1 101 Switching Protocols\r\n\r\n", kind: BadResponse},
		{name: "chunk overflow", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", kind: BadResponse},
		{name: "chunk without CRLF", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n", kind: BadResponse},
		{name: "chunked cut", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nok", kind: BadResponse},
		{name: "huge head", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", 10<<10) + "\r\n", kind: BadResponse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time too, to cross every buffer boundary.
			for _, r := range []io.Reader{strings.NewReader(tc.in), iotest.OneByteReader(strings.NewReader(tc.in))} {
				br := bufio.NewReaderSize(r, 16)
				var tag tagBuf
				resp, err := readResponse(br, &tag)
				if tc.kind != 0 {
					if err == nil || classify(err) != tc.kind {
						t.Fatalf("readResponse: %v (%v); want a %v error", err, classifyOrNone(err), tc.kind)
					}
					continue
				}
				if err != nil {
					t.Fatalf("readResponse: %v", err)
				}
				if resp.status != tc.status || resp.close != tc.close || string(tag.get()) != tc.tag {
					t.Errorf("status %d, close %v, tag %q; want %d, %v, %q", resp.status, resp.close, tag.get(), tc.status, tc.close, tc.tag)
				}
				rest, _ := io.ReadAll(br)
				if string(rest) != tc.rest {
					t.Errorf("left %q unread; want %q", rest, tc.rest)
				}
			}
		})
	}
}

func classifyOrNone(err error) any {
	if err == nil {
		return "no error"
	}
	return classify(err)
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want Kind
	}{
		{errClosedEarly, Reset},
		{fmt.Errorf("dial: %w", &os.PathError{Op: "connect", Path: "127.0.0.1:1", Err: syscall.ECONNREFUSED}), Refused},
		{&os.PathError{Op: "read", Path: "tcp:127.0.0.1:1", Err: syscall.ECONNRESET}, Reset},
		{os.NewSyscallError("write", syscall.EPIPE), Reset},
		{&os.PathError{Op: "read", Path: "x", Err: os.ErrDeadlineExceeded}, Timeout},
		{os.NewSyscallError("read", syscall.ETIMEDOUT), Timeout},
		{os.NewSyscallError("connect", syscall.EHOSTUNREACH), Other},
		{fmt.Errorf("read: %w", io.EOF), BadResponse},
		{io.ErrUnexpectedEOF, BadResponse},
		{malformed("x"), BadResponse},
		{errors.New("no route"), Other},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
}
