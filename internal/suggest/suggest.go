// Package suggest finds, for a misspelt name, the known name it most
// likely meant: every file tend reads refuses unknown keys, and says which
// key was probably meant.
package suggest

import (
	"fmt"
	"strings"
)

// DidYouMean returns ` (did you mean "x"?)` for the candidate closest to
// key, or "" when none is close enough to be a likely typo. Case and
// underscores are ignored first, so killTimeout finds kill_timeout.
func DidYouMean(key string, candidates []string) string {
	squash := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
	if rest, ok := strings.CutPrefix(key, "env-"); ok && rest != "" {
		return fmt.Sprintf(" (did you mean %q?)", "env_"+rest)
	}
	for _, c := range candidates {
		if squash(c) == squash(key) {
			return fmt.Sprintf(" (did you mean %q?)", c)
		}
	}
	limit := 1
	switch n := len(key); {
	case n > 8:
		limit = 3
	case n > 4:
		limit = 2
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(key), c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours each cost 1,
// so "scrpit" is one step from "script".
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	prev2 := make([]int, len(y)+1)
	prev := make([]int, len(y)+1)
	cur := make([]int, len(y)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(x); i++ {
		cur[0] = i
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(y)]
}
