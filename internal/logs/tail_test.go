package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	dir := t.TempDir()
	var big strings.Builder
	const bigLines = 200_000
	var all []string
	for i := range bigLines {
		l := fmt.Sprintf("line %d %s", i, strings.Repeat("z", i%150))
		all = append(all, l)
		big.WriteString(l + "\n")
	}
	files := map[string]string{
		"big":       big.String(),
		"short":     "a\nb\nc\n",
		"nonewline": "a\nb\nc",
		"empty":     "",
		"blank":     "\n\n",
		"longline":  "x\n" + strings.Repeat("y", 300_000) + "\nz\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		file string
		n    int
		want []string
	}{
		{"big", 10, all[bigLines-10:]},
		{"big", 5000, all[bigLines-5000:]},
		{"big", bigLines, all},
		{"big", bigLines + 1, all},
		{"short", 10, []string{"a", "b", "c"}},
		{"short", 2, []string{"b", "c"}},
		{"nonewline", 2, []string{"b", "c"}},
		{"nonewline", 5, []string{"a", "b", "c"}},
		{"empty", 3, nil},
		{"blank", 1, []string{""}},
		{"blank", 5, []string{"", ""}},
		{"longline", 2, []string{strings.Repeat("y", 300_000), "z"}},
		{"short", 0, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.file, tt.n), func(t *testing.T) {
			got, err := Tail(filepath.Join(dir, tt.file), tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Tail(%s, %d) = %d lines %.60q...; want %d lines %.60q...", tt.file, tt.n, len(got), got, len(tt.want), tt.want)
			}
		})
	}
	if _, err := Tail(filepath.Join(dir, "missing"), 1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Tail(missing) = %v; want a not-exist error", err)
	}
}

// BenchmarkTail reads the last 100 lines of a 100 MB file.
func BenchmarkTail(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	block := lineBlock(10_000)
	for range 100 {
		f.Write(block)
	}
	f.Close()
	for b.Loop() {
		if lines, err := Tail(path, 100); err != nil || len(lines) != 100 {
			b.Fatal(len(lines), err)
		}
	}
}

// TestTailRotated asks for more lines than the live file holds: the rest
// come from the rotated files, compressed or not, newest first.
func TestTailRotated(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprint("compress=", compress), func(t *testing.T) {
			const total = 1000
			f := openTestFile(t, "web-out.log", FileOptions{MaxSize: 8 << 10, Retain: 3, Compress: compress})
			for i := 0; i < total; i += 10 {
				f.Write(numberedLines(i, i+10))
			}
			f.Close()
			live, _ := tailFile(f.Path(), total)
			for _, n := range []int{1, len(live), len(live) + 1, len(live) + 150, total} {
				got, err := Tail(f.Path(), n)
				if err != nil {
					t.Fatal(err)
				}
				if n < 300 && len(got) != n {
					t.Errorf("Tail(%d) = %d lines; want %d", n, len(got), n)
				}
				checkRun(t, got, total)
			}
		})
	}
}
