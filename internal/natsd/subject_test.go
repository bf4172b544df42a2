package natsd

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestValidSubject(t *testing.T) {
	for _, tt := range []struct {
		subject         string
		valid, validPub bool
	}{
		{"foo", true, true},
		{"foo.bar.baz", true, true},
		{"foo.*", true, false},
		{"*", true, false},
		{">", true, false},
		{"foo.>", true, false},
		{"foo.*.bar.>", true, false},
		{"foo*.bar", true, true}, // a wildcard only counts as a whole token
		{"foo>", true, true},
		{"$LDS.X1", true, true},
		{"_INBOX.abc.1", true, true},
		{"", false, false},
		{".", false, false},
		{"foo.", false, false},
		{".foo", false, false},
		{"foo..bar", false, false},
		{"foo.>.bar", false, false},
		{"foo bar", false, false},
		{"foo\tbar", false, false},
		{"foo\r", false, false},
		{"foo\n", false, false},
	} {
		if got := validSubject(tt.subject); got != tt.valid {
			t.Errorf("validSubject(%q) = %v; want %v", tt.subject, got, tt.valid)
		}
		if got := validLiteral(tt.subject); got != tt.validPub {
			t.Errorf("validLiteral(%q) = %v; want %v", tt.subject, got, tt.validPub)
		}
	}
}

func TestSubjectMatches(t *testing.T) {
	for _, tt := range []struct {
		pattern, subject string
		want             bool
	}{
		{"foo", "foo", true},
		{"foo", "bar", false},
		{"foo", "foo.bar", false},
		{"foo.bar", "foo", false},
		{"foo.*", "foo.bar", true},
		{"foo.*", "foo", false},
		{"foo.*", "foo.bar.baz", false},
		{"*.bar", "foo.bar", true},
		{"*", "foo", true},
		{"*", "foo.bar", false},
		{"foo.*.baz", "foo.bar.baz", true},
		{"foo.*.baz", "foo.bar.qux", false},
		{"foo.>", "foo.bar", true},
		{"foo.>", "foo.bar.baz", true},
		{"foo.>", "foo", false},
		{">", "foo", true},
		{">", "foo.bar", true},
		{"*.>", "foo", false},
		{"*.>", "foo.bar", true},
		{"foo.*.>", "foo.bar", false},
		{"foo.*.>", "foo.bar.baz", true},
		{"foo*", "foo", false},
		{"foo*", "foo*", true},
	} {
		if got := subjectMatches(tt.pattern, tt.subject); got != tt.want {
			t.Errorf("subjectMatches(%q, %q) = %v; want %v", tt.pattern, tt.subject, got, tt.want)
		}
	}
}

// The sublist returns exactly the patterns subjectMatches accepts, as
// subscriptions come and go.
func TestSublistMatchesLikeSubjectMatches(t *testing.T) {
	tokens := []string{"a", "b", "c", "*", ">"}
	rng := rand.New(rand.NewPCG(1, 2))
	pattern := func(literal bool) string {
		n := 1 + rng.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			choices := tokens
			if literal {
				choices = tokens[:3]
			} else if i < n-1 {
				choices = tokens[:4]
			}
			parts[i] = choices[rng.IntN(len(choices))]
		}
		return strings.Join(parts, ".")
	}
	sl := newSublist()
	var subs []*sub
	for i := range 300 {
		s := &sub{subject: pattern(false)}
		if i%3 == 0 {
			s.queue = []string{"q1", "q2"}[i%2]
		}
		sl.insert(s)
		subs = append(subs, s)
		if i%4 == 0 {
			victim := subs[rng.IntN(len(subs))]
			if sl.remove(victim) {
				subs = slices.DeleteFunc(subs, func(x *sub) bool { return x == victim })
			}
		}
		subject := pattern(true)
		r := sl.match(subject)
		var got []*sub
		got = append(got, r.psubs...)
		for _, g := range r.qsubs {
			for _, s := range g {
				if s.queue != g[0].queue {
					t.Fatalf("queue group %q holds a member of %q", g[0].queue, s.queue)
				}
			}
			got = append(got, g...)
		}
		var want []*sub
		for _, s := range subs {
			if subjectMatches(s.subject, subject) {
				want = append(want, s)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("match(%q) found %d subscriptions; want %d", subject, len(got), len(want))
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Fatalf("match(%q) misses %q", subject, w.subject)
			}
		}
	}
	if sl.size() != len(subs) {
		t.Errorf("size = %d; want %d", sl.size(), len(subs))
	}
	for _, s := range subs {
		if !sl.remove(s) {
			t.Fatalf("remove(%q) found nothing", s.subject)
		}
	}
	if !sl.root.empty() {
		t.Errorf("the trie is not empty after removing everything")
	}
}
