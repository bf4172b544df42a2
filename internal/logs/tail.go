package logs

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
)

// tailBlock is how much Tail reads at a time, from the end backwards.
const tailBlock = 64 << 10

// Tail returns the last n lines of the log file at path, without their
// newlines, oldest first (`tend logs --lines N`). It reads backwards from
// the end in blocks until it has seen n lines, so its cost follows n, not
// the size of the file. A last line without a newline counts as a line.
// When the live file holds fewer than n lines (it was just rotated), the
// rest come from its newest rotated files.
func Tail(path string, n int) ([]string, error) {
	lines, err := tailFile(path, n)
	if err != nil || len(lines) >= n {
		return lines, err
	}
	rotated, err := Rotated(path)
	if err != nil {
		return lines, nil // the live file's lines are still an answer
	}
	for i := len(rotated) - 1; i >= 0 && len(lines) < n; i-- {
		name, k := rotated[i], n-len(lines)
		var older []string
		if strings.HasSuffix(name, ".gz") {
			older, err = tailGzip(name, k)
		} else if older, err = tailFile(name, k); errors.Is(err, fs.ErrNotExist) {
			older, err = tailGzip(name+".gz", k) // compressed since the listing
		}
		if errors.Is(err, fs.ErrNotExist) {
			continue // pruned since the listing
		}
		if err != nil {
			return nil, err
		}
		lines = append(older, lines...)
	}
	return lines, nil
}

// tailFile returns the last n lines of one plain file.
func tailFile(path string, n int) ([]string, error) {
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

// tailGzip returns the last n lines of a compressed rotated file. A gzip
// stream can only be read forwards, so it is read whole, keeping n lines
// in a ring: memory follows n, and the file is at most one MaxSize.
func tailGzip(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tail %q: %w", path, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("tail %q: %w", path, err)
	}
	ring := make([]string, n)
	count := 0
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), MaxLine+1)
	for sc.Scan() {
		ring[count%n] = sc.Text()
		count++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tail %q: %w", path, err)
	}
	if count < n {
		return ring[:count], nil
	}
	k := count % n
	return append(ring[k:], ring[:k]...), nil
}
