package config

import (
	"math"
	"strconv"
	"strings"

	"github.com/tend-pm/tend/internal/api"
	"github.com/tend-pm/tend/internal/rawnet"
)

// The converters below report a wrong value at the value and return the
// zero value, so decoding goes on and finds the file's other problems.

func (d *decoder) str(m *member, v *val) string {
	if v.kind == kindString || v.kind == kindNumber {
		return v.text
	}
	d.r.errorf(v.at, "%q must be a string, got %s", m.key, v.describe())
	return ""
}

func (d *decoder) boolean(m *member, v *val) bool {
	switch {
	case v.kind == kindBool:
		return v.flag
	case v.kind == kindString && strings.EqualFold(v.text, "true"):
		return true
	case v.kind == kindString && strings.EqualFold(v.text, "false"):
		return false
	}
	d.r.errorf(v.at, "%q must be true or false, got %s", m.key, v.describe())
	return false
}

// number reads a whole number, from a number or a string holding one (JS
// files often pass process.env values, which are strings).
func (d *decoder) number(v *val) (int, bool) {
	switch v.kind {
	case kindNumber:
		if v.num == math.Trunc(v.num) && math.Abs(v.num) < 1<<31 {
			return int(v.num), true
		}
	case kindString:
		if n, err := strconv.Atoi(strings.TrimSpace(v.text)); err == nil {
			return n, true
		}
	}
	return 0, false
}

func (d *decoder) integer(m *member, v *val) int {
	n, ok := d.number(v)
	if !ok {
		d.r.errorf(v.at, "%q must be a whole number, got %s", m.key, v.describe())
	}
	return n
}

// count reads a whole number that must not be negative.
func (d *decoder) count(m *member, v *val) int {
	n := d.integer(m, v)
	if n < 0 {
		d.r.errorf(v.at, "%q must not be negative, got %d", m.key, n)
		return 0
	}
	return n
}

// instances reads pm2's instances: a count, 0 or "max" for one per CPU,
// or a negative number for all CPUs but that many.
func (d *decoder) instances(m *member, v *val) int {
	n, ok := d.number(v)
	if !ok && v.kind == kindString && strings.EqualFold(strings.TrimSpace(v.text), "max") {
		n, ok = 0, true
	}
	if !ok {
		d.r.errorf(v.at, "%q must be a number or \"max\", got %s", m.key, v.describe())
		return 1
	}
	if n <= 0 {
		n += d.cpus
	}
	return max(n, 1)
}

func (d *decoder) duration(m *member, v *val) api.Duration {
	switch v.kind {
	case kindNumber:
		if v.num >= 0 && !math.IsInf(v.num, 0) {
			return api.Duration(v.num * 1e6)
		}
		d.r.errorf(v.at, "%q must not be negative, got %s", m.key, v.text)
		return 0
	case kindString:
		dur, err := api.ParseDuration(v.text)
		if err != nil {
			d.r.errorf(v.at, "%q: %v", m.key, err)
		}
		return dur
	}
	d.r.errorf(v.at, "%q must be a duration (milliseconds, or a string like \"5s\"), got %s", m.key, v.describe())
	return 0
}

func (d *decoder) size(m *member, v *val) api.ByteSize {
	switch v.kind {
	case kindNumber:
		if v.num >= 0 && !math.IsInf(v.num, 0) {
			return api.ByteSize(v.num)
		}
		d.r.errorf(v.at, "%q must not be negative, got %s", m.key, v.text)
		return 0
	case kindString:
		n, err := api.ParseByteSize(v.text)
		if err != nil {
			d.r.errorf(v.at, "%q: %v", m.key, err)
		}
		return n
	}
	d.r.errorf(v.at, "%q must be a size (bytes, or a string like \"10M\"), got %s", m.key, v.describe())
	return 0
}

func (d *decoder) signal(m *member, v *val) string {
	t := d.str(m, v)
	if v.kind != kindString && v.kind != kindNumber {
		return api.DefaultKillSignal
	}
	sig, err := api.ParseSignal(t)
	if err != nil {
		d.r.errorf(v.at, "%q: %v", m.key, err)
		return api.DefaultKillSignal
	}
	if name := api.SignalName(sig); strings.HasPrefix(name, "SIG") {
		return name
	}
	return strconv.Itoa(int(sig))
}

// words reads an argument list: a list, or a string split as a shell
// would split it (pm2 accepts both).
func (d *decoder) words(m *member, v *val) []string {
	switch v.kind {
	case kindString:
		w, err := shellSplit(v.text)
		if err != nil {
			d.r.errorf(v.at, "%q: %v in %q", m.key, err, v.text)
		}
		return w
	case kindList:
		out := make([]string, 0, len(v.list))
		for _, e := range v.list {
			if e.kind == kindList || e.kind == kindMap || e.kind == kindNull {
				d.r.errorf(e.at, "%q must be a list of strings, got %s in it", m.key, e.describe())
				continue
			}
			out = append(out, e.text)
		}
		return out
	case kindNumber:
		return []string{v.text}
	}
	d.r.errorf(v.at, "%q must be a string or a list of strings, got %s", m.key, v.describe())
	return nil
}

func (d *decoder) exitCodes(m *member, v *val) []int {
	items := []*val{v}
	switch {
	case v.kind == kindList:
		items = v.list
	case v.loose:
		items = nil
		for _, p := range splitList(v.text) {
			items = append(items, &val{kind: kindString, text: p, at: v.at})
		}
	}
	var codes []int
	for _, e := range items {
		n, ok := d.number(e)
		if !ok || n < 0 || n > 255 {
			d.r.errorf(e.at, "%q must be exit codes (0 to 255), got %s", m.key, e.describe())
			continue
		}
		codes = append(codes, n)
	}
	return codes
}

// env reads a map of variables into into (allocated when nil). pm2 passes
// values through JS, so numbers and booleans become their text and objects
// their JSON.
func (d *decoder) env(m *member, v *val, into map[string]string) map[string]string {
	if v.loose { // --env-var KEY=VALUE from the command line
		k, value, ok := strings.Cut(v.text, "=")
		if !ok || k == "" {
			d.r.errorf(v.at, "want KEY=VALUE, got %q", v.text)
			return into
		}
		v = &val{kind: kindMap, items: []*member{{key: k, at: v.at, v: &val{kind: kindString, text: value}}}}
	}
	if v.kind != kindMap {
		d.r.errorf(v.at, "%q must be a map of variables, got %s", m.key, v.describe())
		return into
	}
	if into == nil {
		into = make(map[string]string, len(v.items))
	}
	for _, e := range v.items {
		if e.key == "" || strings.ContainsAny(e.key, "=\x00") {
			d.r.errorf(e.at, "invalid variable name %q", e.key)
			continue
		}
		into[e.key] = envText(e.v)
	}
	return into
}

func envText(v *val) string {
	switch v.kind {
	case kindNull:
		return ""
	case kindList, kindMap:
		b, _ := jsonMarshal(v.toAny())
		return string(b)
	}
	return v.text
}

func (d *decoder) envName(m *member, v *val) string {
	s := d.str(m, v)
	if s == "" || strings.ContainsAny(s, "=\x00") {
		d.r.errorf(v.at, "%q must be a variable name, got %s", m.key, v.describe())
	}
	return s
}

func (d *decoder) filterEnv(a *draft, m *member, v *val) {
	switch {
	case v.kind == kindBool || v.kind == kindString && (v.text == "true" || v.text == "false"):
		a.filterAll = d.boolean(m, v)
	case v.kind == kindString && v.loose:
		a.filterPrefixes = append(a.filterPrefixes, splitList(v.text)...)
	case v.kind == kindString:
		a.filterPrefixes = append(a.filterPrefixes, v.text)
	case v.kind == kindList:
		for _, e := range v.list {
			if e.kind != kindString {
				d.r.errorf(e.at, "%q must be true or a list of prefixes, got %s in it", m.key, e.describe())
				continue
			}
			a.filterPrefixes = append(a.filterPrefixes, e.text)
		}
	default:
		d.r.errorf(v.at, "%q must be true or a list of prefixes, got %s", m.key, v.describe())
	}
}

// logFile reads log_file, where true means the default combined file.
func (d *decoder) logFile(a *draft, m *member, v *val) {
	a.logAt = v.at
	switch {
	case v.kind == kindBool:
		a.logDefault, a.spec.LogFile = v.flag, ""
	case v.loose && (v.text == "" || v.text == "true"):
		a.logDefault = true
	default:
		a.spec.LogFile = d.str(m, v)
	}
}

// cron checks the shape of a cron expression (5 or 6 fields, or a name
// like @daily); 0, as in pm2, means no scheduled restart.
func (d *decoder) cron(m *member, v *val) string {
	t := strings.TrimSpace(d.str(m, v))
	if t == "" || t == "0" {
		return ""
	}
	switch t {
	case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly":
		return t
	}
	if n := len(strings.Fields(t)); n < 5 || n > 6 {
		d.r.errorf(v.at, "%q must be a cron expression with 5 or 6 fields (or @hourly, @daily...), got %q", m.key, t)
	}
	return t
}

// listen reads the addresses the daemon binds for the app: one address or
// a list ("3000", "127.0.0.1:3000", "[::1]:8080", "/run/app.sock").
func (d *decoder) listen(m *member, v *val, s *api.AppSpec) {
	var items []*val
	switch v.kind {
	case kindList:
		items = v.list
	case kindString, kindNumber:
		for _, w := range strings.Split(v.text, ",") {
			items = append(items, &val{kind: kindString, text: strings.TrimSpace(w), at: v.at})
		}
	default:
		d.r.errorf(v.at, "%q must be an address or a list of addresses, got %s", m.key, v.describe())
		return
	}
	seen := map[string]bool{}
	for _, e := range items {
		if e.kind != kindString && e.kind != kindNumber {
			d.r.errorf(e.at, "%q must be a list of addresses, got %s in it", m.key, e.describe())
			continue
		}
		a, err := rawnet.ParseAddr(e.text)
		if err != nil {
			d.r.errorf(e.at, "%q: %v", m.key, err)
			continue
		}
		if seen[a.String()] {
			d.r.errorf(e.at, "%q: %s is given twice", m.key, a)
			continue
		}
		seen[a.String()] = true
		s.Listen = append(s.Listen, a.String())
	}
}
