package natsd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// describe renders an op for comparisons.
func describe(o *op) string {
	var qs []string
	for _, q := range o.queues {
		qs = append(qs, string(q))
	}
	return fmt.Sprintf("%d subj=%q reply=%q queue=%q sid=%q queues=%v hdr=%d payload=%q max=%d weight=%d arg=%q",
		o.kind, o.subject, o.reply, o.queue, o.sid, qs, o.hdr, o.payload, o.max, o.weight, o.arg)
}

// parseAll reads every op from r, and the error that ended it (nil for
// a clean end of input).
func parseAll(r io.Reader, leaf bool, maxPayload int) ([]string, error) {
	p := newParser(r, leaf, maxPayload)
	var ops []string
	for {
		o, err := p.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return ops, err
		}
		ops = append(ops, describe(o))
	}
}

func TestParser(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		leaf bool
		want []string // substrings, one per op
		err  error
	}{
		{name: "connect", in: "CONNECT {\"verbose\":false}\r\n", want: []string{`arg="{\"verbose\":false}"`}},
		{name: "lower case and tabs", in: "pub\tfoo  5\r\nhello\r\nping\r\n", want: []string{`subj="foo" reply="" queue="" sid="" queues=[] hdr=-1 payload="hello"`, fmt.Sprintf("%d subj", opPing)}},
		{name: "pub reply", in: "PUB foo bar 0\r\n\r\n", want: []string{`subj="foo" reply="bar"`}},
		{name: "hpub", in: "HPUB foo r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", want: []string{`reply="r" queue="" sid="" queues=[] hdr=12 payload="NATS/1.0\r\n\r\nhi"`}},
		{name: "empty header block", in: "HPUB foo 0 2\r\nhi\r\n", want: []string{`hdr=-1 payload="hi"`}},
		{name: "sub queue", in: "SUB foo.* grp 9\r\n", want: []string{`subj="foo.*" reply="" queue="grp" sid="9"`}},
		{name: "unsub max", in: "UNSUB 9 5\r\n", want: []string{`sid="9" queues=[] hdr=-1 payload="" max=5`}},
		{name: "bare newline", in: "PING\n", want: []string{fmt.Sprintf("%d subj", opPing)}},
		{name: "too big", in: "PUB foo 2000\r\n", err: errMaxPayload},
		{name: "hdr above total", in: "HPUB foo 10 5\r\n", err: errUnknownOp},
		{name: "bad size", in: "PUB foo x\r\n", err: errUnknownOp},
		{name: "missing CRLF after payload", in: "PUB foo 2\r\nhiXX", err: errUnknownOp},
		{name: "unknown", in: "MSG foo 1 2\r\nhi\r\n", err: errUnknownOp},
		{name: "long line", in: "SUB " + strings.Repeat("a", 5000), err: errControlLine},
		{name: "leaf sub", leaf: true, in: "LS+ foo\r\nLS+ foo q 3\r\nLS- foo q\r\n", want: []string{`subj="foo" reply="" queue=""`, `queue="q" sid="" queues=[] hdr=-1 payload="" max=0 weight=3`, `queue="q"`}},
		{name: "lmsg", leaf: true, in: "LMSG foo 2\r\nhi\r\nLMSG foo r 2\r\nhi\r\nLMSG foo + r q1 q2 2\r\nhi\r\nLMSG foo | q1 2\r\nhi\r\n", want: []string{
			`subj="foo" reply=""`, `reply="r" queue="" sid="" queues=[]`, `reply="r" queue="" sid="" queues=[q1 q2]`, `reply="" queue="" sid="" queues=[q1]`,
		}},
		{name: "leaf hmsg", leaf: true, in: "HMSG foo + r q 12 12\r\nNATS/1.0\r\n\r\n\r\n", want: []string{`reply="r" queue="" sid="" queues=[q] hdr=12`}},
		{name: "leaf info and err", leaf: true, in: "INFO {}\r\n-ERR 'Authorization Violation'\r\n+OK\r\n", want: []string{`arg="{}"`, `arg="'Authorization Violation'"`, fmt.Sprintf("%d subj", opOK)}},
		{name: "client cannot LS+", in: "LS+ foo\r\n", err: errUnknownOp},
		{name: "leaf cannot PUB", leaf: true, in: "PUB foo 0\r\n\r\n", err: errUnknownOp},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ops, err := parseAll(strings.NewReader(tt.in), tt.leaf, 1024)
			if !errors.Is(err, tt.err) {
				t.Fatalf("error %v; want %v", err, tt.err)
			}
			if len(ops) != len(tt.want) {
				t.Fatalf("got %d ops %q; want %d", len(ops), ops, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(ops[i], w) {
					t.Errorf("op %d = %s; want it to contain %s", i, ops[i], w)
				}
			}
		})
	}
}

// A large payload grows the buffer, and it shrinks back after.
func TestParserLargePayload(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 1<<20)
	in := append([]byte("PUB big 1048576\r\n"), big...)
	in = append(in, "\r\nPING\r\n"...)
	ops, err := parseAll(bytes.NewReader(in), false, 1<<20)
	if err != nil || len(ops) != 2 {
		t.Fatalf("got %d ops, %v", len(ops), err)
	}
}

// FuzzParser checks that the parser never panics and that how the input
// is cut into reads changes nothing. The seeds run as a normal test.
func FuzzParser(f *testing.F) {
	for _, s := range []string{
		"CONNECT {}\r\nPING\r\nPONG\r\n",
		"PUB foo 5\r\nhello\r\n",
		"PUB foo reply 0\r\n\r\n",
		"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
		"SUB foo 1\r\nSUB foo q 2\r\nUNSUB 1\r\nUNSUB 2 10\r\n",
		"sub\tfoo\t1\nping\n",
		"PUB foo 99999999999\r\n",
		"HPUB foo 5 2\r\n",
		"LS+ foo q 3\r\nLS- foo\r\nLMSG foo + r q 2\r\nhi\r\nHMSG foo | q 12 12\r\nNATS/1.0\r\n\r\n\r\n",
		"INFO {\"server_id\":\"x\"}\r\n-ERR 'x'\r\n+OK\r\n",
		"\r\n\r\n",
		"PUB foo 3\r\nab",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, in []byte, leaf bool) {
		whole, errWhole := parseAll(bytes.NewReader(in), leaf, 64)
		bytewise, errBytes := parseAll(iotest.OneByteReader(bytes.NewReader(in)), leaf, 64)
		if fmt.Sprint(errWhole) != fmt.Sprint(errBytes) {
			t.Fatalf("errors differ: %v vs %v", errWhole, errBytes)
		}
		if len(whole) != len(bytewise) {
			t.Fatalf("op counts differ: %d vs %d", len(whole), len(bytewise))
		}
		for i := range whole {
			if whole[i] != bytewise[i] {
				t.Fatalf("op %d differs:\n%s\n%s", i, whole[i], bytewise[i])
			}
		}
	})
}
