package sample

import "time"

// Point is one sample of an instance in its history.
type Point struct {
	// T is the time of the sample, in unix seconds.
	T int64
	// CPU is the share of one core used since the previous sample, in
	// percent.
	CPU float32
	// RSS is the resident memory of the tree, in bytes.
	RSS uint64
	// Conns is the number of connections open to the instance (proxy
	// mode), or -1 when not known.
	Conns int32
}

// Ring keeps the last N points: the history monit and the dashboard
// draw. It grows as points come, up to its capacity, so a short-lived
// instance costs little. It is not safe for concurrent use; its owner
// locks.
type Ring struct {
	buf  []Point
	next int // where the next point goes once buf is full
	max  int
}

// NewRing returns a ring that keeps n points.
func NewRing(n int) *Ring { return &Ring{max: max(n, 1)} }

// Add appends p, dropping the oldest point when full.
func (r *Ring) Add(p Point) {
	if len(r.buf) < r.max {
		r.buf = append(r.buf, p)
		return
	}
	r.buf[r.next] = p
	r.next = (r.next + 1) % r.max
}

// Len is the number of points held.
func (r *Ring) Len() int { return len(r.buf) }

// Last returns up to n of the newest points, oldest first, and only
// those at or after since (zero: any).
func (r *Ring) Last(n int, since time.Time) []Point {
	n = min(n, len(r.buf))
	out := make([]Point, 0, n)
	for i := len(r.buf) - n; i < len(r.buf); i++ {
		p := r.buf[(r.next+i)%len(r.buf)]
		if since.IsZero() || p.T >= since.Unix() {
			out = append(out, p)
		}
	}
	return out
}
