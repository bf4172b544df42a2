package natsd

import (
	"math/rand/v2"
	"strconv"
)

// router hands one publisher's messages to their subscribers. Each
// connection has its own (only its reader uses it); in-process publishers
// take one from a pool. It batches the work a message leaves behind:
// the writers to wake and the counters to add, so that a burst of
// messages read in one go wakes each subscriber's writer once.
type router struct {
	s    *Server
	from *conn // the publishing connection; nil in-process

	head    []byte
	scratch []byte             // an in-process message's header and data, joined
	pending map[*conn]struct{} // writers to wake
	leafs   []leafTarget

	inMsgs, inBytes   uint64
	outMsgs, outBytes uint64
}

// leafTarget is a hub a message goes to, with the queue groups the hub
// is to serve (the ones with no member here).
type leafTarget struct {
	c      *conn
	queues []string
}

func newRouter(s *Server, from *conn) *router {
	return &router{s: s, from: from, pending: map[*conn]struct{}{}}
}

// route delivers a message to every matching subscription: each plain
// one, and one member of each queue group, preferring members here to a
// hub's. A message from a hub goes to local subscribers only (never back
// to a hub), and to the members of the queue groups the hub named in
// qfilter. It returns how many deliveries were made, counting a hub
// once.
func (r *router) route(subject, reply []byte, hdr int, payload []byte, qfilter [][]byte) int {
	res := r.s.sl.matchBytes(subject)
	if len(res.psubs) == 0 && len(res.qsubs) == 0 {
		return 0
	}
	fromLeaf := r.from != nil && r.from.kind == kindLeaf
	// A local subject crosses no link, either way.
	local := len(r.s.o.Local) > 0 && r.s.isLocal(string(subject))
	if fromLeaf && local {
		return 0
	}
	r.leafs = r.leafs[:0]
	n := 0
	for _, sb := range res.psubs {
		switch {
		case sb.kind == subLeaf:
			if !fromLeaf && !local {
				r.addLeaf(sb.conn, "")
			}
		case r.echoSkip(sb), sb.removed.Load():
		default:
			if r.deliver(sb, subject, reply, hdr, payload) {
				n++
			}
		}
	}
	for _, group := range res.qsubs {
		queue := group[0].queue
		if fromLeaf && !inFilter(queue, qfilter) {
			continue
		}
		if r.deliverQueue(group, subject, reply, hdr, payload) {
			n++
		} else if leaf := pickLeaf(group, fromLeaf); leaf != nil && !local {
			r.addLeaf(leaf.conn, queue)
		}
	}
	for i := range r.leafs {
		if r.sendLeaf(&r.leafs[i], subject, reply, hdr, payload) {
			n++
		}
		r.leafs[i].c = nil
	}
	return n
}

// deliverQueue hands a message to one local member of a queue group,
// trying them from a random start until one takes it.
func (r *router) deliverQueue(group []*sub, subject, reply []byte, hdr int, payload []byte) bool {
	start := 0
	if len(group) > 1 {
		start = rand.IntN(len(group))
	}
	for i := range group {
		sb := group[(start+i)%len(group)]
		if sb.kind == subLeaf || r.echoSkip(sb) || sb.removed.Load() {
			continue
		}
		if r.deliver(sb, subject, reply, hdr, payload) {
			return true
		}
	}
	return false
}

// pickLeaf chooses, for a queue group with no member here to take a
// message, one of the hubs' entries, weighted by the members behind
// each. A message from a hub is never sent to a hub.
func pickLeaf(group []*sub, fromLeaf bool) *sub {
	if fromLeaf {
		return nil
	}
	var leaf *sub
	var weights int32
	for _, sb := range group {
		if sb.kind != subLeaf {
			continue
		}
		w := max(sb.weight.Load(), 1)
		weights += w
		if rand.Int32N(weights) < w {
			leaf = sb
		}
	}
	return leaf
}

// echoSkip reports whether sb belongs to the publisher and it asked not
// to get its own messages (echo:false).
func (r *router) echoSkip(sb *sub) bool {
	return sb.conn != nil && sb.conn == r.from && !r.from.echo
}

func inFilter(queue string, qfilter [][]byte) bool {
	for _, q := range qfilter {
		if string(q) == queue {
			return true
		}
	}
	return false
}

func (r *router) addLeaf(c *conn, queue string) {
	var t *leafTarget
	for i := range r.leafs {
		if r.leafs[i].c == c {
			t = &r.leafs[i]
			break
		}
	}
	if t == nil {
		// Reuse the target, and its queue slice, of an earlier message.
		if len(r.leafs) < cap(r.leafs) {
			r.leafs = r.leafs[:len(r.leafs)+1]
		} else {
			r.leafs = append(r.leafs, leafTarget{})
		}
		t = &r.leafs[len(r.leafs)-1]
		t.c, t.queues = c, t.queues[:0]
	}
	if queue != "" {
		t.queues = append(t.queues, queue)
	}
}

// deliver hands a message to one local subscription, counting it
// against an auto-unsubscribe limit. It reports whether it was taken.
func (r *router) deliver(sb *sub, subject, reply []byte, hdr int, payload []byte) bool {
	var last bool
	if m := sb.max.Load(); m > 0 {
		d := sb.delivered.Add(1)
		if d > m {
			return false
		}
		last = d == m
	} else {
		sb.delivered.Add(1)
	}
	ok := true
	switch sb.kind {
	case subInternal:
		sb.isub.push(subject, reply, hdr, payload)
	case subClient:
		c := sb.conn
		if hdr >= 0 && !c.headers {
			payload, hdr = payload[hdr:], -1
		}
		h := r.head[:0]
		if hdr >= 0 {
			h = append(h, "HMSG "...)
		} else {
			h = append(h, "MSG "...)
		}
		h = append(h, subject...)
		h = append(h, ' ')
		h = append(h, sb.sid...)
		h = append(h, ' ')
		if len(reply) > 0 {
			h = append(h, reply...)
			h = append(h, ' ')
		}
		h = appendSizes(h, hdr, len(payload))
		r.head = h
		if ok = c.queueMsg(h, payload); ok {
			r.pending[c] = struct{}{}
		}
	}
	if ok {
		r.outMsgs++
		r.outBytes += uint64(len(payload))
	}
	if last {
		r.s.removeSub(sb)
	}
	return ok
}

// sendLeaf forwards a message to a hub as LMSG (HMSG with headers, when
// the hub takes them).
func (r *router) sendLeaf(t *leafTarget, subject, reply []byte, hdr int, payload []byte) bool {
	c := t.c
	if hdr >= 0 && !c.headers {
		payload, hdr = payload[hdr:], -1
	}
	if c.maxPayload > 0 && len(payload) > c.maxPayload {
		// The hub would close the link for it.
		return false
	}
	h := r.head[:0]
	if hdr >= 0 {
		h = append(h, "HMSG "...)
	} else {
		h = append(h, "LMSG "...)
	}
	h = append(h, subject...)
	h = append(h, ' ')
	switch {
	case len(t.queues) > 0:
		if len(reply) > 0 {
			h = append(h, "+ "...)
			h = append(h, reply...)
			h = append(h, ' ')
		} else {
			h = append(h, "| "...)
		}
		for _, q := range t.queues {
			h = append(h, q...)
			h = append(h, ' ')
		}
	case len(reply) > 0:
		h = append(h, reply...)
		h = append(h, ' ')
	}
	h = appendSizes(h, hdr, len(payload))
	r.head = h
	if !c.queueMsg(h, payload) {
		return false
	}
	r.pending[c] = struct{}{}
	r.outMsgs++
	r.outBytes += uint64(len(payload))
	return true
}

// flush wakes the writers of everything routed since the last flush and
// adds the counts to the server's.
func (r *router) flush() {
	for c := range r.pending {
		c.signal()
		delete(r.pending, c)
	}
	if r.inMsgs > 0 {
		r.s.stats.inMsgs.Add(r.inMsgs)
		r.s.stats.inBytes.Add(r.inBytes)
		r.inMsgs, r.inBytes = 0, 0
	}
	if r.outMsgs > 0 {
		r.s.stats.outMsgs.Add(r.outMsgs)
		r.s.stats.outBytes.Add(r.outBytes)
		r.outMsgs, r.outBytes = 0, 0
	}
}

// noResponders tells a requester at once that nothing took its request:
// an HMSG with status 503 on the reply subject, through the publisher's
// own subscription that matches it (nats.go's Request then returns
// ErrNoResponders).
func (r *router) noResponders(reply []byte) {
	c := r.from
	res := r.s.sl.matchBytes(reply)
	var sid string
	for _, sb := range res.psubs {
		if sb.conn == c {
			sid = sb.sid
			break
		}
	}
	if sid == "" {
		for _, g := range res.qsubs {
			for _, sb := range g {
				if sb.conn == c {
					sid = sb.sid
				}
			}
		}
	}
	if sid == "" {
		return
	}
	const status = "NATS/1.0 503\r\n\r\n"
	h := r.head[:0]
	h = append(h, "HMSG "...)
	h = append(h, reply...)
	h = append(h, ' ')
	h = append(h, sid...)
	h = append(h, ' ')
	h = strconv.AppendInt(h, int64(len(status)), 10)
	h = append(h, ' ')
	h = strconv.AppendInt(h, int64(len(status)), 10)
	h = append(h, '\r', '\n')
	r.head = h
	if c.queueMsg(h, []byte(status)) {
		r.pending[c] = struct{}{}
	}
}

// appendSizes ends a message's control line: the header size if there
// are headers (hdr >= 0), the total size, CRLF.
func appendSizes(h []byte, hdr, total int) []byte {
	if hdr >= 0 {
		h = strconv.AppendInt(h, int64(hdr), 10)
		h = append(h, ' ')
	}
	h = strconv.AppendInt(h, int64(total), 10)
	return append(h, '\r', '\n')
}
