package logs

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
)

// tailBlock is how much Tail reads at a time, from the end backwards.
const tailBlock = 64 << 10

// Tail returns the last n lines of the file at path, without their
// newlines, oldest first (`tend logs --lines N`). It reads backwards from
// the end in blocks until it has seen n lines, so its cost follows n, not
// the size of the file. A last line without a newline counts as a line.
func Tail(path string, n int) ([]string, error) {
	if n <= 0 {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tail %q: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tail %q: %w", path, err)
	}
	end := fi.Size()
	if end == 0 {
		return nil, nil
	}
	// A final newline ends the last line; it does not begin another.
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, end-1); err != nil {
		return nil, fmt.Errorf("tail %q: %w", path, err)
	}
	if last[0] == '\n' {
		end--
	}

	// Collect blocks backwards until they hold n newlines: the text
	// after the n-th newline from the end is then exactly n lines.
	var blocks [][]byte
	newlines := 0
	for pos := end; pos > 0 && newlines < n; {
		size := min(int64(tailBlock), pos)
		pos -= size
		b := make([]byte, size)
		if _, err := f.ReadAt(b, pos); err != nil {
			return nil, fmt.Errorf("tail %q: %w", path, err)
		}
		newlines += bytes.Count(b, []byte{'\n'})
		blocks = append(blocks, b)
	}
	slices.Reverse(blocks)
	data := bytes.Join(blocks, nil)
	if newlines >= n {
		i := len(data)
		for range n {
			i = bytes.LastIndexByte(data[:i], '\n')
		}
		data = data[i+1:]
	}
	return strings.Split(string(data), "\n"), nil
}
