package units

import (
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	for b, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 44 << 20: "44.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(b); got != want {
			t.Errorf("Bytes(%d) = %q; want %q", b, got, want)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{-time.Second: "0s", 45 * time.Second: "45s", 12 * time.Minute: "12m", 5 * time.Hour: "5h", 72 * time.Hour: "3D"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%s) = %q; want %q", d, got, want)
		}
	}
}
