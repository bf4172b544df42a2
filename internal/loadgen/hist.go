package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// histogram counts durations in log-linear buckets: below 256ns one per
// nanosecond, above that 128 per power of two, so a bucket's middle is
// within 0.4% of any value in it. It takes 57 KiB whatever it counts.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	subBits     = 7
	subBuckets  = 1 << subBits // per power of two
	histLinear  = 2 * subBuckets
	histBuckets = histLinear + (63-subBits-1)*subBuckets
)

// bucketOf returns the bucket that holds v (v >= 0).
func bucketOf(v uint64) int {
	if v < histLinear {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [128, 256)
	return histLinear + (shift-1)*subBuckets + int(v>>shift) - subBuckets
}

// bucketMiddle returns the middle of bucket i's range.
func bucketMiddle(i int) uint64 {
	if i < histLinear {
		return uint64(i)
	}
	k := i - histLinear
	shift := k/subBuckets + 1
	low := uint64(k%subBuckets+subBuckets) << shift
	return low + (uint64(1)<<shift)/2
}

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// quantile returns the duration that a fraction q of the values are at
// most; 0 if there are none.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketMiddle(i)), h.max)
		}
	}
	return h.max
}
