package natsd

import (
	"strings"
	"sync"
	"sync/atomic"
)

// subKind says who owns a subscription, which decides how a message is
// handed to it.
type subKind uint8

const (
	subClient   subKind = iota // a client connection's SUB
	subInternal                // an in-process Subscription
	subLeaf                    // interest a hub announced with LS+
)

// sub is one subscription: a client's SUB, an in-process Subscribe, or
// one LS+ entry of a hub.
type sub struct {
	kind    subKind
	conn    *conn         // client or leaf connection; nil for subInternal
	isub    *Subscription // subInternal only
	subject string
	queue   string
	sid     string // client: the SID; leaf: the LS+ key

	// max is the auto-unsubscribe limit (UNSUB sid max), 0 for none;
	// delivered counts the messages handed over so far.
	max       atomic.Uint64
	delivered atomic.Uint64
	// weight is the number of queue members a hub reports behind one
	// LS+ queue entry; 1 for everything else.
	weight atomic.Int32
	// removed is set once, by whoever takes the sub out of the sublist
	// (UNSUB, auto-unsubscribe, connection close), so the interest count
	// drops exactly once.
	removed atomic.Bool
}

// result is what a subject matches: plain subscriptions, and queue
// subscriptions grouped by queue name (one group may gather members of
// different patterns, as in nats-server). Results are shared through the
// cache and never modified.
type result struct {
	psubs []*sub
	qsubs [][]*sub
}

// sublist indexes subscriptions by subject pattern in a trie of tokens,
// with a cache of match results by literal subject. Any insert or remove
// empties the cache: subscriptions change rarely next to messages, and
// nats.go's request/reply uses one wildcard inbox per connection, not a
// subscription per request.
type sublist struct {
	mu    sync.RWMutex
	root  level
	count int
	cache map[string]*result
}

// maxCache bounds the cache; past it the cache starts over, which keeps
// a stream of unique subjects from growing it without end.
const maxCache = 4096

type level struct {
	nodes map[string]*node
	pwc   *node // '*'
	fwc   *node // '>'
}

type node struct {
	next  level
	psubs map[*sub]struct{}
	qsubs map[string]map[*sub]struct{}
}

func (n *node) empty() bool {
	return len(n.psubs) == 0 && len(n.qsubs) == 0 && n.next.empty()
}

func (l *level) empty() bool {
	return len(l.nodes) == 0 && l.pwc == nil && l.fwc == nil
}

func newSublist() *sublist {
	return &sublist{cache: map[string]*result{}}
}

// insert adds s; its subject must be valid.
func (sl *sublist) insert(s *sub) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	l := &sl.root
	var n *node
	rest := s.subject
	for {
		tok, more := cutToken(&rest)
		switch tok {
		case "*":
			if l.pwc == nil {
				l.pwc = &node{}
			}
			n = l.pwc
		case ">":
			if l.fwc == nil {
				l.fwc = &node{}
			}
			n = l.fwc
		default:
			if l.nodes == nil {
				l.nodes = map[string]*node{}
			}
			n = l.nodes[tok]
			if n == nil {
				n = &node{}
				l.nodes[tok] = n
			}
		}
		if !more {
			break
		}
		l = &n.next
	}
	if s.queue == "" {
		if n.psubs == nil {
			n.psubs = map[*sub]struct{}{}
		}
		n.psubs[s] = struct{}{}
	} else {
		if n.qsubs == nil {
			n.qsubs = map[string]map[*sub]struct{}{}
		}
		g := n.qsubs[s.queue]
		if g == nil {
			g = map[*sub]struct{}{}
			n.qsubs[s.queue] = g
		}
		g[s] = struct{}{}
	}
	sl.count++
	clear(sl.cache)
}

// remove takes s out and prunes the nodes left empty. It reports whether
// s was there.
func (sl *sublist) remove(s *sub) bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	found := removeFrom(&sl.root, s.subject, s)
	if found {
		sl.count--
		clear(sl.cache)
	}
	return found
}

func removeFrom(l *level, rest string, s *sub) bool {
	tok, more := cutToken(&rest)
	var n *node
	switch tok {
	case "*":
		n = l.pwc
	case ">":
		n = l.fwc
	default:
		n = l.nodes[tok]
	}
	if n == nil {
		return false
	}
	var found bool
	if more {
		found = removeFrom(&n.next, rest, s)
	} else if s.queue == "" {
		_, found = n.psubs[s]
		delete(n.psubs, s)
	} else if g := n.qsubs[s.queue]; g != nil {
		_, found = g[s]
		delete(g, s)
		if len(g) == 0 {
			delete(n.qsubs, s.queue)
		}
	}
	if found && n.empty() {
		switch tok {
		case "*":
			l.pwc = nil
		case ">":
			l.fwc = nil
		default:
			delete(l.nodes, tok)
		}
	}
	return found
}

// cutToken returns the first token of *rest and advances it past the
// next '.'; more is false for the last token.
func cutToken(rest *string) (tok string, more bool) {
	s := *rest
	if i := strings.IndexByte(s, '.'); i >= 0 {
		*rest = s[i+1:]
		return s[:i], true
	}
	*rest = ""
	return s, false
}

// matchBytes is match for a subject still in a read buffer: a cache hit
// costs no allocation.
func (sl *sublist) matchBytes(subject []byte) *result {
	sl.mu.RLock()
	r, ok := sl.cache[string(subject)]
	sl.mu.RUnlock()
	if ok {
		return r
	}
	return sl.match(string(subject))
}

// match returns the subscriptions matching the literal subject.
func (sl *sublist) match(subject string) *result {
	sl.mu.RLock()
	r, ok := sl.cache[subject]
	sl.mu.RUnlock()
	if ok {
		return r
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if r, ok := sl.cache[subject]; ok {
		return r
	}
	r = &result{}
	matchLevel(&sl.root, subject, r)
	if len(sl.cache) >= maxCache {
		clear(sl.cache)
	}
	sl.cache[subject] = r
	return r
}

func matchLevel(l *level, rest string, r *result) {
	for {
		tok, more := cutToken(&rest)
		if l.fwc != nil {
			r.add(l.fwc)
		}
		if l.pwc != nil {
			if more {
				matchLevel(&l.pwc.next, rest, r)
			} else {
				r.add(l.pwc)
			}
		}
		n := l.nodes[tok]
		if n == nil {
			return
		}
		if !more {
			r.add(n)
			return
		}
		l = &n.next
	}
}

func (r *result) add(n *node) {
	for s := range n.psubs {
		r.psubs = append(r.psubs, s)
	}
	for q, g := range n.qsubs {
		i := 0
		for i < len(r.qsubs) && r.qsubs[i][0].queue != q {
			i++
		}
		if i == len(r.qsubs) {
			r.qsubs = append(r.qsubs, make([]*sub, 0, len(g)))
		}
		for s := range g {
			r.qsubs[i] = append(r.qsubs[i], s)
		}
	}
}

// size returns the number of subscriptions held.
func (sl *sublist) size() int {
	sl.mu.RLock()
	defer sl.mu.RUnlock()
	return sl.count
}
