// Package promtext writes Prometheus' text exposition format (version
// 0.0.4): # HELP and # TYPE lines, then one line per sample. It is a few
// dozen lines instead of prometheus/client_golang, which would add
// megabytes and start-up work to every tend command, for a daemon whose
// figures are already gathered by its sampler.
package promtext

import (
	"io"
	"math"
	"strconv"
	"strings"
)

// ContentType is the Content-Type of the format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Metric types.
const (
	Gauge   = "gauge"
	Counter = "counter"
)

// Writer writes one exposition. Each family (Family, then its Samples)
// must be written whole before the next, as the format requires.
type Writer struct {
	b strings.Builder
}

// Family starts the metric family name, of type typ, with a help text.
func (w *Writer) Family(name, typ, help string) {
	w.b.WriteString("# HELP ")
	w.b.WriteString(name)
	w.b.WriteByte(' ')
	w.b.WriteString(helpEscaper.Replace(help))
	w.b.WriteString("\n# TYPE ")
	w.b.WriteString(name)
	w.b.WriteByte(' ')
	w.b.WriteString(typ)
	w.b.WriteByte('\n')
}

// Sample writes one sample of name; labels are name, value pairs.
func (w *Writer) Sample(name string, value float64, labels ...string) {
	w.b.WriteString(name)
	if len(labels) > 0 {
		w.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.b.WriteString(labels[i])
			w.b.WriteString(`="`)
			w.b.WriteString(valueEscaper.Replace(labels[i+1]))
			w.b.WriteByte('"')
		}
		w.b.WriteByte('}')
	}
	w.b.WriteByte(' ')
	w.b.WriteString(formatValue(value))
	w.b.WriteByte('\n')
}

// WriteTo writes the exposition to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	n, err := io.WriteString(out, w.b.String())
	return int64(n), err
}

// String returns the exposition.
func (w *Writer) String() string { return w.b.String() }

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// ValidName reports whether name is a valid metric or label name.
func ValidName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_' || c == ':' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
