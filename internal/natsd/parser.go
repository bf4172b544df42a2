package natsd

import (
	"bytes"
	"errors"
	"io"
)

// opKind is a protocol operation read from a connection.
type opKind uint8

const (
	opConnect opKind = iota + 1
	opPing
	opPong
	opPub    // PUB, or HPUB when hdr >= 0
	opSub    // SUB
	opUnsub  // UNSUB
	opInfo   // INFO (from a hub)
	opOK     // +OK (from a hub)
	opErr    // -ERR (from a hub)
	opLSub   // LS+
	opLUnsub // LS-
	opLMsg   // LMSG, or a leaf's HMSG when hdr >= 0
)

// op is one parsed operation. Its slices point into the parser's buffer
// and are valid until the next call to next.
type op struct {
	kind    opKind
	subject []byte
	reply   []byte
	queue   []byte   // SUB, LS+, LS-
	sid     []byte   // SUB, UNSUB
	queues  [][]byte // LMSG: the queue groups the hub chose this side for
	hdr     int      // header bytes at the start of payload; -1 for none
	payload []byte   // headers and data
	max     int      // UNSUB: deliveries before auto-unsubscribe; 0 none
	weight  int      // LS+: queue members behind the entry
	arg     []byte   // CONNECT and INFO JSON, -ERR text
}

// protoError is a violation the connection is closed for; text is what
// -ERR carries, in nats-server's words, which clients match on.
type protoError struct{ text string }

func (e *protoError) Error() string { return "protocol violation: " + e.text }

var (
	errControlLine = &protoError{"Maximum Control Line Exceeded"}
	errMaxPayload  = &protoError{"Maximum Payload Violation"}
	errUnknownOp   = &protoError{"Unknown Protocol Operation"}
)

const (
	// maxControlLine is the longest control line a client may send,
	// nats-server's limit.
	maxControlLine = 4096
	// maxLeafControlLine is the limit on a leaf connection, whose LMSG
	// lines carry queue names too (nats-server allows 16 times more).
	maxLeafControlLine = 64 * 1024
	minReadSize        = 4 * 1024
	maxReadSize        = 64 * 1024
	maxArgs            = 64
)

// parser reads operations from r. It owns a read buffer that grows to
// hold the largest message seen and shrinks back once it is consumed.
type parser struct {
	r          io.Reader
	leaf       bool // the ops a hub sends, rather than a client's
	maxLine    int
	maxPayload int
	// idle runs before every read from r: the point where the caller has
	// handled all it had and may flush what it queued.
	idle func()

	buf        []byte
	start, end int
	filled     bool // the last read filled the buffer
	args       [][]byte
	op         op
}

func newParser(r io.Reader, leaf bool, maxPayload int) *parser {
	p := &parser{r: r, leaf: leaf, maxLine: maxControlLine, maxPayload: maxPayload}
	if leaf {
		p.maxLine = maxLeafControlLine
	}
	return p
}

// next returns the next operation. Errors are the reader's, or a
// *protoError.
func (p *parser) next() (*op, error) {
	for {
		i := bytes.IndexByte(p.buf[p.start:p.end], '\n')
		if i < 0 {
			if p.end-p.start > p.maxLine {
				return nil, errControlLine
			}
			if err := p.fill(p.end - p.start + 1); err != nil {
				return nil, err
			}
			continue
		}
		if i > p.maxLine {
			return nil, errControlLine
		}
		o, need, err := p.parseLine(p.buf[p.start : p.start+i])
		if err != nil {
			return nil, err
		}
		lineLen := i + 1
		if need < 0 {
			p.consume(lineLen)
			return o, nil
		}
		total := lineLen + need + 2
		if p.end-p.start < total {
			if err := p.fill(total); err != nil {
				return nil, err
			}
			// The buffer may have moved: read the line again.
			if o, _, err = p.parseLine(p.buf[p.start : p.start+i]); err != nil {
				return nil, err
			}
		}
		body := p.buf[p.start+lineLen : p.start+total]
		if body[need] != '\r' || body[need+1] != '\n' {
			return nil, errUnknownOp
		}
		o.payload = body[:need]
		p.consume(total)
		return o, nil
	}
}

// consume drops n bytes; a buffer that grew past maxReadSize for a
// large message is let go once empty.
func (p *parser) consume(n int) {
	p.start += n
	if p.start == p.end {
		p.start, p.end = 0, 0
		if len(p.buf) > maxReadSize {
			p.buf = nil
		}
	}
}

// fill reads until n bytes are buffered from start. The buffer starts
// small (most connections are quiet) and doubles, up to maxReadSize,
// when a read fills it: a busy publisher then gets large reads. The
// unread bytes move to the front to make room, and the buffer grows
// when they and n do not fit.
func (p *parser) fill(n int) error {
	grow := p.filled && len(p.buf) < maxReadSize
	if len(p.buf)-p.start < n || p.end == len(p.buf) || grow {
		if p.start > 0 {
			p.end = copy(p.buf, p.buf[p.start:p.end])
			p.start = 0
		}
		size := len(p.buf)
		if grow {
			size = min(2*size, maxReadSize)
		}
		// n > p.end here (more is to be read), so the data fits.
		size = max(size, minReadSize, n)
		if size != len(p.buf) {
			nb := make([]byte, size)
			p.end = copy(nb, p.buf[:p.end])
			p.buf = nb
		}
	}
	for p.end-p.start < n {
		if p.idle != nil {
			p.idle()
		}
		m, err := p.r.Read(p.buf[p.end:])
		p.filled = p.end+m == len(p.buf)
		p.end += m
		if err != nil && p.end-p.start < n {
			return err
		}
	}
	return nil
}

// parseLine reads a control line (without its '\n'). need is the number
// of payload bytes that follow, or -1.
func (p *parser) parseLine(line []byte) (o *op, need int, err error) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	name, rest := line, []byte(nil)
	if i := bytes.IndexAny(line, " \t"); i >= 0 {
		name, rest = line[:i], line[i+1:]
	}
	o = &p.op
	*o = op{hdr: -1}
	var kw [8]byte
	if len(name) > len(kw) {
		return nil, -1, errUnknownOp
	}
	for i, c := range name {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		kw[i] = c
	}
	args := p.split(rest)
	switch string(kw[:len(name)]) {
	case "CONNECT":
		o.kind, o.arg = opConnect, bytes.TrimLeft(rest, " \t")
		return o, -1, nil
	case "PING":
		o.kind = opPing
		return o, -1, nil
	case "PONG":
		o.kind = opPong
		return o, -1, nil
	}
	if !p.leaf {
		switch string(kw[:len(name)]) {
		case "PUB":
			return p.pub(o, args, false)
		case "HPUB":
			return p.pub(o, args, true)
		case "SUB":
			return p.sub(o, args)
		case "UNSUB":
			return p.unsub(o, args)
		}
		return nil, -1, errUnknownOp
	}
	switch string(kw[:len(name)]) {
	case "INFO":
		o.kind, o.arg = opInfo, bytes.TrimLeft(rest, " \t")
		return o, -1, nil
	case "+OK":
		o.kind = opOK
		return o, -1, nil
	case "-ERR":
		o.kind, o.arg = opErr, bytes.TrimSpace(rest)
		return o, -1, nil
	case "LS+", "LS-":
		return p.leafSub(o, args, kw[2] == '+')
	case "LMSG":
		return p.leafMsg(o, args, false)
	case "HMSG":
		return p.leafMsg(o, args, true)
	}
	return nil, -1, errUnknownOp
}

// split cuts rest into fields separated by spaces and tabs.
func (p *parser) split(rest []byte) [][]byte {
	args := p.args[:0]
	start := -1
	for i, c := range rest {
		if c == ' ' || c == '\t' {
			if start >= 0 {
				args = append(args, rest[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		args = append(args, rest[start:])
	}
	p.args = args
	return args
}

// pub reads PUB <subject> [reply] <size> and
// HPUB <subject> [reply] <header size> <total size>.
func (p *parser) pub(o *op, args [][]byte, headers bool) (*op, int, error) {
	o.kind = opPub
	n := len(args)
	if headers && n != 3 && n != 4 || !headers && n != 2 && n != 3 {
		return nil, -1, errUnknownOp
	}
	size, err := p.sizes(o, args, headers)
	if err != nil {
		return nil, -1, err
	}
	o.subject = args[0]
	if (headers && n == 4) || (!headers && n == 3) {
		o.reply = args[1]
	}
	return o, size, nil
}

// sub reads SUB <subject> [queue] <sid>.
func (p *parser) sub(o *op, args [][]byte) (*op, int, error) {
	o.kind = opSub
	switch len(args) {
	case 2:
		o.subject, o.sid = args[0], args[1]
	case 3:
		o.subject, o.queue, o.sid = args[0], args[1], args[2]
	default:
		return nil, -1, errUnknownOp
	}
	return o, -1, nil
}

// unsub reads UNSUB <sid> [max].
func (p *parser) unsub(o *op, args [][]byte) (*op, int, error) {
	o.kind = opUnsub
	switch len(args) {
	case 1:
	case 2:
		if o.max = parseSize(args[1]); o.max < 0 {
			return nil, -1, errUnknownOp
		}
	default:
		return nil, -1, errUnknownOp
	}
	o.sid = args[0]
	return o, -1, nil
}

// leafSub reads LS+ <subject> [queue [weight]] and LS- <subject> [queue].
func (p *parser) leafSub(o *op, args [][]byte, plus bool) (*op, int, error) {
	o.kind, o.weight = opLUnsub, 1
	if plus {
		o.kind = opLSub
	}
	switch len(args) {
	case 1:
	case 2:
		o.queue = args[1]
	case 3:
		if !plus {
			return nil, -1, errUnknownOp
		}
		o.queue = args[1]
		if w := parseSize(args[2]); w > 0 {
			o.weight = w
		}
	default:
		return nil, -1, errUnknownOp
	}
	o.subject = args[0]
	return o, -1, nil
}

// leafMsg reads LMSG (and HMSG, with a header size before the total):
//
//	<subject> [reply] <size>
//	<subject> + <reply> <queue>... <size>
//	<subject> | <queue>... <size>
func (p *parser) leafMsg(o *op, args [][]byte, headers bool) (*op, int, error) {
	o.kind = opLMsg
	sizes := 1
	if headers {
		sizes = 2
	}
	n := len(args)
	if n < 1+sizes || n > maxArgs {
		return nil, -1, errUnknownOp
	}
	o.subject = args[0]
	mid := args[1 : n-sizes]
	switch {
	case len(mid) == 0:
	case len(mid) == 1:
		o.reply = mid[0]
	case len(mid[0]) == 1 && mid[0][0] == '+':
		o.reply, o.queues = mid[1], mid[2:]
	case len(mid[0]) == 1 && mid[0][0] == '|':
		o.queues = mid[1:]
	default:
		return nil, -1, errUnknownOp
	}
	size, err := p.sizes(o, args, headers)
	if err != nil {
		return nil, -1, err
	}
	return o, size, nil
}

// sizes reads the sizes that end a message's control line: the total, and
// before it the header size when headers is set (into o.hdr, -1 for
// none). An empty header block is no header, as in nats-server.
func (p *parser) sizes(o *op, args [][]byte, headers bool) (int, error) {
	n := len(args)
	if headers {
		if o.hdr = parseSize(args[n-2]); o.hdr < 0 {
			return -1, errUnknownOp
		}
	}
	size := parseSize(args[n-1])
	if size < 0 || o.hdr > size {
		return -1, errUnknownOp
	}
	if size > p.maxPayload {
		return -1, errMaxPayload
	}
	if o.hdr == 0 {
		o.hdr = -1
	}
	return size, nil
}

// parseSize reads a decimal size of up to 9 digits; -1 if it is not one.
func parseSize(b []byte) int {
	if len(b) == 0 || len(b) > 9 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// isProtoError reports whether err is a violation to answer with -ERR.
func isProtoError(err error) (*protoError, bool) {
	var pe *protoError
	ok := errors.As(err, &pe)
	return pe, ok
}
