package promtext

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestParses checks that Prometheus' own parser reads what Writer writes,
// escapes included.
func TestParses(t *testing.T) {
	var w Writer
	w.Family("tend_up", Gauge, "1 if up.\nSecond line with a \\ backslash.")
	w.Sample("tend_up", 1, "app", `we"ird\name`+"\n", "instance", "0")
	w.Sample("tend_up", 0, "app", "b", "instance", "1")
	w.Family("tend_cpu_seconds_total", Counter, "CPU.")
	w.Sample("tend_cpu_seconds_total", 1.5e-3)
	w.Sample("tend_cpu_seconds_total", math.Inf(1), "x", "inf")

	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(w.String()))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, w.String())
	}
	up := fams["tend_up"]
	if up == nil || len(up.Metric) != 2 || up.GetType().String() != "GAUGE" {
		t.Fatalf("tend_up = %v; want a gauge with 2 samples", up)
	}
	if got := up.Metric[0].Label[0].GetValue(); got != `we"ird\name`+"\n" {
		t.Errorf("label value = %q; want it unescaped as written", got)
	}
	if got := up.GetHelp(); got != "1 if up.\nSecond line with a \\ backslash." {
		t.Errorf("help = %q", got)
	}
	cpu := fams["tend_cpu_seconds_total"]
	if cpu.Metric[0].GetCounter().GetValue() != 1.5e-3 || !math.IsInf(cpu.Metric[1].GetCounter().GetValue(), 1) {
		t.Errorf("counter values = %v", cpu.Metric)
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{"a": true, "a_b:c9": true, "9a": false, "": false, "a-b": false, "é": false} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v; want %v", name, got, want)
		}
	}
}
