package logs

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tend-pm/tend/internal/api"
)

// FormatKind says how lines are written to files.
type FormatKind int

const (
	// Plain writes the lines as the app printed them.
	Plain FormatKind = iota
	// Timestamped puts "<time>: " before each line, as pm2 does with
	// `time: true` or a log_date_format.
	Timestamped
	// JSON writes one pm2-shaped object per line:
	// {"message":...,"timestamp":...,"type":"out","process_id":0,"app_name":...}.
	// The message holds the line without its newline.
	JSON
)

// Default timestamp layouts, the Go forms of pm2's defaults: `time: true`
// means 'YYYY-MM-DDTHH:mm:ss' (local time), and JSON logs without a
// log_date_format carry JavaScript's toISOString() (UTC, milliseconds).
const (
	DefaultTimeLayout = "2006-01-02T15:04:05"
	DefaultJSONLayout = "2006-01-02T15:04:05.000Z07:00"
)

// Format is how a stream's lines are written to its files. The zero value
// is Plain.
type Format struct {
	Kind FormatKind
	// Layout is the Go time layout of the timestamps; empty means the
	// kind's default. Build it from pm2's tokens with Layout.
	Layout string
}

// FormatFor returns the format an app's spec asks for, with pm2's rules:
// log_type "json" wins, and either `time` or a log_date_format turns on the
// timestamp prefix.
func FormatFor(spec *api.AppSpec) (Format, error) {
	var f Format
	if spec.LogDateFormat != "" {
		l, err := Layout(spec.LogDateFormat)
		if err != nil {
			return Format{}, fmt.Errorf("app %q: %w", spec.Name, err)
		}
		f.Layout = l
	}
	switch {
	case spec.LogType == "json":
		f.Kind = JSON
	case spec.Time || spec.LogDateFormat != "":
		f.Kind = Timestamped
	}
	return f, nil
}

// Layout converts a pm2/dayjs date format ("YYYY-MM-DD HH:mm:ss.SSS Z") to
// a Go time layout ("2006-01-02 15:04:05.000 -07:00"). Text in [brackets]
// is literal, as in dayjs.
//
// Go layouts cannot escape literal text, so a format whose literal text Go
// would read as a layout element (a digit, "Jan", "PM", "_" before a day)
// is refused rather than formatted wrongly, and so are dayjs tokens with no
// Go equivalent (H, d, Do, X...). SSS must follow '.' or ',', which is
// where Go accepts fractional seconds.
func Layout(dayjs string) (string, error) {
	var b strings.Builder
	s := dayjs
	for s != "" {
		if s[0] == '[' {
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return "", fmt.Errorf("date format %q: unclosed '['", dayjs)
			}
			if err := appendLiteral(&b, s[1:end], dayjs); err != nil {
				return "", err
			}
			s = s[end+1:]
			continue
		}
		tok, layout := matchToken(s)
		switch {
		case tok != "":
			out := b.String()
			if tok == "SSS" && !strings.HasSuffix(out, ".") && !strings.HasSuffix(out, ",") {
				return "", fmt.Errorf("date format %q: SSS must follow '.' or ','", dayjs)
			}
			if strings.HasSuffix(out, "_") && layout[0] == '2' {
				return "", fmt.Errorf("date format %q: '_' before a day or year reads as a Go layout element", dayjs)
			}
			b.WriteString(layout)
			s = s[len(tok):]
		case isASCIILetter(s[0]):
			// dayjs would treat a run of letters it knows as a token;
			// anything we did not match is a token Go cannot express.
			if strings.ContainsRune("YMDdHhmsSZXxQWwkEe", rune(s[0])) {
				return "", fmt.Errorf("date format %q: token starting %q is not supported", dayjs, s[:1])
			}
			if err := appendLiteral(&b, s[:1], dayjs); err != nil {
				return "", err
			}
			s = s[1:]
		default:
			_, size := utf8.DecodeRuneInString(s)
			if err := appendLiteral(&b, s[:size], dayjs); err != nil {
				return "", err
			}
			s = s[size:]
		}
	}
	return b.String(), nil
}

// matchToken returns the pm2/dayjs date token s starts with and its Go
// layout element. Longer tokens come first, so "MMMM" is not read as
// "MM"+"MM".
func matchToken(s string) (tok, layout string) {
	tokens := [...]struct{ tok, layout string }{
		{"YYYY", "2006"}, {"YY", "06"},
		{"MMMM", "January"}, {"MMM", "Jan"}, {"MM", "01"}, {"M", "1"},
		{"DD", "02"}, {"D", "2"},
		{"dddd", "Monday"}, {"ddd", "Mon"},
		{"HH", "15"}, {"hh", "03"}, {"h", "3"},
		{"mm", "04"}, {"m", "4"},
		{"ss", "05"}, {"s", "5"},
		{"SSS", "000"},
		{"ZZ", "-0700"}, {"Z", "-07:00"},
		{"A", "PM"}, {"a", "pm"},
	}
	for _, t := range tokens {
		if strings.HasPrefix(s, t.tok) {
			return t.tok, t.layout
		}
	}
	return "", ""
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// appendLiteral writes literal text, refusing what Go would read as a
// layout element instead of keeping it literal.
func appendLiteral(b *strings.Builder, lit, format string) error {
	if strings.ContainsAny(lit, "0123456789") {
		return fmt.Errorf("date format %q: literal digits in %q are not supported", format, lit)
	}
	before := b.String()
	for _, elem := range []string{"Jan", "Mon", "MST", "PM", "pm"} {
		if strings.Count(before+lit, elem) > strings.Count(before, elem) {
			return fmt.Errorf("date format %q: literal %q reads as a Go layout element", format, lit)
		}
	}
	b.WriteString(lit)
	return nil
}

// formatter turns whole raw lines into the bytes written to files, with
// the parts that do not change between lines computed once.
type formatter struct {
	kind   FormatKind
	layout string
	// jsonTail is `,"type":"out","process_id":0,"app_name":"web"}` + "\n",
	// the part of each JSON object after the timestamp.
	jsonTail []byte
	raw      []byte // scratch: the timestamp as formatted
	ts       []byte // what goes before (Timestamped) or into (JSON) each line
}

func newFormatter(f Format, app string, slot int, stream string) *formatter {
	fm := &formatter{kind: f.Kind, layout: f.Layout}
	switch {
	case fm.layout != "":
	case f.Kind == JSON:
		fm.layout = DefaultJSONLayout
	default:
		fm.layout = DefaultTimeLayout
	}
	if f.Kind == JSON {
		t := []byte(`,"type":`)
		t = appendJSONString(t, []byte(stream))
		t = append(t, `,"process_id":`...)
		t = strconv.AppendInt(t, int64(slot), 10)
		t = append(t, `,"app_name":`...)
		t = appendJSONString(t, []byte(app))
		fm.jsonTail = append(t, "}\n"...)
	}
	return fm
}

// format appends to dst the formatted form of lines, a run of whole lines
// each ending in '\n', all stamped with now.
func (fm *formatter) format(dst, lines []byte, now time.Time) []byte {
	switch fm.kind {
	case Timestamped:
		fm.ts = append(now.AppendFormat(fm.ts[:0], fm.layout), ": "...)
	case JSON:
		if fm.layout == DefaultJSONLayout {
			now = now.UTC()
		}
		fm.raw = now.AppendFormat(fm.raw[:0], fm.layout)
		fm.ts = appendJSONString(fm.ts[:0], fm.raw)
	default:
		return append(dst, lines...)
	}
	for len(lines) > 0 {
		line := lines
		if i := bytes.IndexByte(lines, '\n'); i >= 0 {
			line, lines = lines[:i], lines[i+1:]
		} else {
			lines = nil
		}
		if fm.kind == Timestamped {
			dst = append(dst, fm.ts...)
			dst = append(dst, line...)
			dst = append(dst, '\n')
			continue
		}
		dst = append(dst, `{"message":`...)
		dst = appendJSONString(dst, line)
		dst = append(dst, `,"timestamp":`...)
		dst = append(dst, fm.ts...)
		dst = append(dst, fm.jsonTail...)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, as JSON.stringify writes it
// (no HTML escaping), with invalid UTF-8 replaced by U+FFFD as
// encoding/json does.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
