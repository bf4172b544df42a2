package loadgen

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 1<<40 + 12345, 1<<63 - 1} {
		i := bucketOf(v)
		if i < prev || i >= histBuckets {
			t.Errorf("bucketOf(%d) = %d; want in [%d, %d)", v, i, prev, histBuckets)
		}
		prev = i
		mid := bucketMiddle(i)
		if bucketOf(mid) != i {
			t.Errorf("bucketOf(bucketMiddle(%d)) = %d; want %d", i, bucketOf(mid), i)
		}
		if diff := float64(mid) - float64(v); diff > 0.005*float64(v)+0.5 || -diff > 0.005*float64(v)+0.5 {
			t.Errorf("value %d in bucket %d with middle %d: over 0.5%% off", v, i, mid)
		}
	}
	for i := 1; i < histBuckets; i++ {
		if bucketMiddle(i) <= bucketMiddle(i-1) {
			t.Fatalf("bucket %d's middle %d is not above bucket %d's %d", i, bucketMiddle(i), i-1, bucketMiddle(i-1))
		}
	}
}

func TestQuantiles(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Errorf("quantile of nothing = %v; want 0", h.quantile(0.5))
	}
	// 1..10000 µs, shuffled.
	vals := rand.Perm(10000)
	for _, v := range vals {
		h.add(time.Duration(v+1) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {1, 10000 * time.Microsecond}, {0, time.Microsecond}} {
		got := h.quantile(tc.q)
		if d := got - tc.want; d > tc.want/100 || -d > tc.want/100 {
			t.Errorf("quantile(%v) = %v; want %v within 1%%", tc.q, got, tc.want)
		}
	}
	if h.max != 10*time.Millisecond {
		t.Errorf("max = %v; want 10ms", h.max)
	}
}
