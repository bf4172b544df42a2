package natsd

import "strings"

// validSubject reports whether s can be subscribed to: one or more
// non-empty tokens separated by '.', no whitespace, and the wildcards
// '*' and '>' only as whole tokens, '>' only as the last one. Other
// characters are allowed, as nats-server allows them.
func validSubject(s string) bool {
	return checkSubject(s, true)
}

// validLiteral reports whether s can be published to: a valid subject
// without wildcard tokens.
func validLiteral[T string | []byte](s T) bool {
	return checkSubject(s, false)
}

func checkSubject[T string | []byte](s T, wildcards bool) bool {
	if len(s) == 0 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			switch s[i] {
			case ' ', '\t', '\r', '\n', '\f', '\v':
				return false
			case '.':
			default:
				continue
			}
		}
		switch n := i - start; {
		case n == 0:
			return false
		case n == 1 && s[start] == '*':
			if !wildcards {
				return false
			}
		case n == 1 && s[start] == '>':
			if !wildcards || i != len(s) {
				return false
			}
		}
		start = i + 1
	}
	return true
}

// validQueue reports whether q can name a queue group: not empty and no
// whitespace (it travels as one field of SUB and LS+).
func validQueue(q string) bool {
	return q != "" && !strings.ContainsAny(q, " \t\r\n\f\v")
}

// subjectMatches reports whether the literal subject matches pattern,
// which may hold wildcards. The sublist does the same walk for many
// patterns at once; this one is for tests and single checks.
func subjectMatches(pattern, subject string) bool {
	for {
		var pt, st string
		pi := strings.IndexByte(pattern, '.')
		si := strings.IndexByte(subject, '.')
		if pi < 0 {
			pt = pattern
		} else {
			pt = pattern[:pi]
		}
		if si < 0 {
			st = subject
		} else {
			st = subject[:si]
		}
		if pt == ">" {
			return st != ""
		}
		if pt != "*" && pt != st {
			return false
		}
		switch {
		case pi < 0 && si < 0:
			return true
		case pi < 0 || si < 0:
			return false
		}
		pattern, subject = pattern[pi+1:], subject[si+1:]
	}
}
