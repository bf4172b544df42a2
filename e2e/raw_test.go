package e2e

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
)

// rawRequest sends a hand-written HTTP request over the socket and returns
// the status code and body.
func rawRequest(t *testing.T, sock, req string) (int, string) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := strings.Cut(string(b), "\r\n\r\n")
	fields := strings.Fields(head)
	if len(fields) < 2 {
		t.Fatalf("malformed response %q", b)
	}
	code, _ := strconv.Atoi(fields[1])
	return code, body
}
