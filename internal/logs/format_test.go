package logs

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tend-pm/tend/internal/api"
)

func TestLayout(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "YYYY-MM-DDTHH:mm:ss", want: "2006-01-02T15:04:05"},
		{in: "YYYY-MM-DD HH:mm:ss.SSS Z", want: "2006-01-02 15:04:05.000 -07:00"},
		{in: "YY/M/D h:m:s A ZZ", want: "06/1/2 3:4:5 PM -0700"},
		{in: "ddd, DD MMM YYYY", want: "Mon, 02 Jan 2006"},
		{in: "dddd D MMMM hh a", want: "Monday 2 January 03 pm"},
		{in: "HH:mm:ss,SSS", want: "15:04:05,000"},
		{in: "[at] HH:mm", want: "at 15:04"},
		{in: "YYYY-MM-DD_HH-mm-ss", want: "2006-01-02_15-04-05"},
		{in: "HH:mm SSS", wantErr: "SSS must follow"},
		{in: "H:mm", wantErr: "not supported"},
		{in: "Do MMM", wantErr: ""}, // dayjs without plugins reads D + literal o
		{in: "[Jan] YYYY", wantErr: "reads as a Go layout element"},
		{in: "[day 1] D", wantErr: "literal digits"},
		{in: "YYYY_D", wantErr: "before a day"},
		{in: "[unclosed", wantErr: "unclosed"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Layout(tt.in)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Layout(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Errorf("Layout(%q) = %v; want no error", tt.in, err)
			case tt.want != "" && got != tt.want:
				t.Errorf("Layout(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatFor(t *testing.T) {
	tests := []struct {
		name string
		spec api.AppSpec
		want Format
	}{
		{"plain", api.AppSpec{}, Format{}},
		{"time", api.AppSpec{Time: true}, Format{Kind: Timestamped}},
		{"date format alone", api.AppSpec{LogDateFormat: "HH:mm"}, Format{Kind: Timestamped, Layout: "15:04"}},
		{"json", api.AppSpec{LogType: "json", Time: true}, Format{Kind: JSON}},
		{"json with date format", api.AppSpec{LogType: "json", LogDateFormat: "YYYY"}, Format{Kind: JSON, Layout: "2006"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FormatFor(&tt.spec)
			if err != nil || got != tt.want {
				t.Errorf("FormatFor = %+v, %v; want %+v, nil", got, err, tt.want)
			}
		})
	}
	if _, err := FormatFor(&api.AppSpec{Name: "web", LogDateFormat: "H"}); err == nil || !strings.Contains(err.Error(), `app "web"`) {
		t.Errorf("FormatFor(bad date format) = %v; want an error naming the app", err)
	}
}

// TestAppendJSONString compares with encoding/json on awkward strings.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{
		"", "plain", `"quoted" \ back`, "tab\tnl\ncr\r", "\x00\x01\x1f\x7f",
		"é ü 日本 🙂", "bad \xff\xfe end", "trunc \xe6\x97", "<html>&amp;", "\u2028\u2029",
	} {
		got := appendJSONString(nil, []byte(s))
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("appendJSONString(%q) = %s, not JSON: %v", s, got, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if !utf8.ValidString(s) {
			// encoding/json replaces each bad byte, not each bad run.
			var b strings.Builder
			for i := 0; i < len(s); {
				r, n := utf8.DecodeRuneInString(s[i:])
				b.WriteRune(r)
				i += n
			}
			want = b.String()
		}
		if back != want {
			t.Errorf("appendJSONString(%q) decodes to %q; want %q", s, back, want)
		}
		if bytes.Contains(got, []byte(`\u003c`)) {
			t.Errorf("appendJSONString(%q) = %s; want no HTML escaping, as JSON.stringify", s, got)
		}
	}
}

// checkJSONLines checks that each line of data is a pm2-shaped object.
func checkJSONLines(t *testing.T, data []byte, app, stream string) {
	t.Helper()
	for _, line := range splitLines(t, data) {
		var obj struct {
			Message   *string `json:"message"`
			Timestamp *string `json:"timestamp"`
			Type      string  `json:"type"`
			ProcessID *int    `json:"process_id"`
			AppName   string  `json:"app_name"`
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&obj); err != nil {
			t.Errorf("line %q: %v", line, err)
			continue
		}
		if obj.Message == nil || obj.Timestamp == nil || obj.ProcessID == nil || obj.Type != stream || obj.AppName != app {
			t.Errorf("line %q lacks a field or has the wrong type/app_name", line)
		}
	}
}

func BenchmarkFormat(b *testing.B) {
	lines := lineBlock(655)
	for _, f := range []Format{{Kind: Timestamped}, {Kind: JSON}} {
		b.Run([]string{"plain", "time", "json"}[f.Kind], func(b *testing.B) {
			fm := newFormatter(f, "web", 0, "out")
			var out []byte
			now := time.Now()
			b.SetBytes(int64(len(lines)))
			b.ReportAllocs()
			for b.Loop() {
				out = fm.format(out[:0], lines, now)
			}
			b.ReportMetric(float64(b.N)*655/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
