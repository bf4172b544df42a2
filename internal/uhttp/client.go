package uhttp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ClientResponse is a response read by Do.
type ClientResponse struct {
	Status int
	Header Header
	// Body reads the body; closing it closes the connection.
	Body io.ReadCloser
}

// Do sends one request on conn, which it owns from then on, and reads the
// response's status and headers. The body is read through the result;
// cancelling ctx closes the connection, which ends a blocked read.
func Do(ctx context.Context, conn *os.File, method, target string, header Header, body []byte) (*ClientResponse, error) {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(err error) (*ClientResponse, error) {
		stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	bw := bufio.NewWriterSize(conn, 4096)
	host := "tend"
	if h := header.Get("Host"); h != "" {
		host = h // a readiness probe names the app's own host and port
	}
	fmt.Fprintf(bw, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, host)
	for k, v := range header {
		if k != "host" {
			fmt.Fprintf(bw, "%s: %s\r\n", k, v)
		}
	}
	if body != nil {
		fmt.Fprintf(bw, "Content-Length: %d\r\n", len(body))
	}
	bw.WriteString("\r\n")
	bw.Write(body)
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(conn, 32<<10)
	budget := maxLine
	line, err := readLine(br, &budget)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fail(err)
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil {
		return fail(badf("status line %q", line))
	}
	h, err := readHeader(br)
	if err != nil {
		return fail(err)
	}
	n, err := contentLength(h, -1)
	if err != nil {
		return fail(err)
	}
	var r io.Reader = br
	if n >= 0 {
		r = io.LimitReader(br, n)
	}
	return &ClientResponse{Status: status, Header: h, Body: &connBody{Reader: r, conn: conn, stop: stop}}, nil
}

// connBody closes the connection with the body.
type connBody struct {
	io.Reader
	conn *os.File
	stop func() bool
}

func (b *connBody) Close() error {
	b.stop()
	return b.conn.Close()
}
