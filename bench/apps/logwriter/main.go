// Command logwriter is the log throughput benchmark's native app: it prints
// numbered 100-byte lines on stdout, one write(2) per line (no buffering),
// as fast as it can for a number of seconds, then writes what it did, as
// JSON, to a result file.
//
//	logwriter <seconds> <result file>
//
// A line is "L" + a 10-digit sequence number + " " + 87 "x" + "\n", the same
// as bench/apps/logspam.js.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: logwriter <seconds> <result file>")
		os.Exit(2)
	}
	seconds, err := strconv.ParseFloat(os.Args[1], 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "logwriter:", err)
		os.Exit(2)
	}
	line := []byte("L0000000000 " + strings.Repeat("x", 87) + "\n")
	start := time.Now()
	deadline := start.Add(time.Duration(seconds * float64(time.Second)))
	n := 0
	// The clock is read once every 1024 lines.
	for n%1024 != 0 || time.Now().Before(deadline) {
		// The sequence number, zero-padded, in line[1:11].
		for i, v := 10, n; i >= 1; i, v = i-1, v/10 {
			line[i] = byte('0' + v%10)
		}
		if _, err := os.Stdout.Write(line); err != nil {
			fmt.Fprintln(os.Stderr, "logwriter:", err)
			break
		}
		n++
	}
	end := time.Now()
	out, err := json.Marshal(map[string]int64{"lines": int64(n), "start_ms": start.UnixMilli(), "end_ms": end.UnixMilli()})
	if err == nil {
		err = os.WriteFile(os.Args[2], out, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "logwriter:", err)
		os.Exit(1)
	}
}
