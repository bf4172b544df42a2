package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// kind is the type of a value as the user wrote it.
type kind int

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindList
	kindMap
)

// val is one value of a config file or of a flag, reduced to what the
// fields need, with where it was written. YAML, JSON, the JSON printed by
// node and command-line flags all become vals, so one decoder checks them
// all and words its errors the same way.
type val struct {
	kind  kind
	text  string  // scalars: the string, the number as JS would print it, or "true"/"false"
	num   float64 // kindNumber
	flag  bool    // kindBool
	list  []*val
	items []*member // kindMap, in the order written
	at    where
	// loose is set for command-line values: everything arrives there as a
	// string, and a comma-separated string stands for a list.
	loose bool
}

// member is one key of a map.
type member struct {
	key string
	at  where // the key's own position
	v   *val
}

// describe names v for "got ..." in error messages.
func (v *val) describe() string {
	switch v.kind {
	case kindNull:
		return "null"
	case kindList:
		return "a list"
	case kindMap:
		return "a map"
	case kindString:
		return strconv.Quote(v.text)
	}
	return v.text
}

// get returns the member with key k, or nil.
func (v *val) get(k string) *member {
	for _, m := range v.items {
		if m.key == k {
			return m
		}
	}
	return nil
}

// toAny returns v as plain Go values, for JSON-encoding an env value that
// is an object.
func (v *val) toAny() any {
	switch v.kind {
	case kindBool:
		return v.flag
	case kindNumber:
		return json.Number(v.text)
	case kindString:
		return v.text
	case kindList:
		l := make([]any, len(v.list))
		for i, e := range v.list {
			l[i] = e.toAny()
		}
		return l
	case kindMap:
		m := make(map[string]any, len(v.items))
		for _, e := range v.items {
			m[e.key] = e.v.toAny()
		}
		return m
	}
	return nil
}

func childPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func formatNumber(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// converter turns a goccy AST into vals, resolving anchors, aliases and
// merge keys, and reporting duplicate keys.
type converter struct {
	r       *reporter
	anchors map[string]*val
	depth   int
}

// posOf returns where a node starts. A block mapping's token is its first
// ':' so its first key is used instead; users think of a map as starting
// there.
func posOf(n ast.Node, path, key string) where {
	if m, ok := n.(*ast.MappingNode); ok && !m.IsFlowStyle && len(m.Values) > 0 {
		n = m.Values[0].Key
	}
	if mv, ok := n.(*ast.MappingValueNode); ok {
		n = mv.Key
	}
	w := where{path: path, key: key}
	if n != nil && n.GetToken() != nil {
		p := n.GetToken().Position
		w.line, w.col = p.Line, p.Column
	}
	return w
}

func (c *converter) node(n ast.Node, path, key string) *val {
	v := &val{at: posOf(n, path, key)}
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > 100 {
		c.r.errorf(v.at, "values nested too deeply")
		return v
	}
	switch x := n.(type) {
	case nil, *ast.NullNode:
	case *ast.BoolNode:
		v.kind, v.flag, v.text = kindBool, x.Value, strconv.FormatBool(x.Value)
	case *ast.IntegerNode:
		v.kind = kindNumber
		switch i := x.Value.(type) {
		case int64:
			v.num, v.text = float64(i), strconv.FormatInt(i, 10)
		case uint64:
			v.num, v.text = float64(i), strconv.FormatUint(i, 10)
		default:
			v.kind, v.text = kindString, x.GetToken().Value
		}
	case *ast.FloatNode:
		v.kind, v.num, v.text = kindNumber, x.Value, formatNumber(x.Value)
	case *ast.InfinityNode:
		v.kind, v.num, v.text = kindNumber, x.Value, x.GetToken().Value
	case *ast.NanNode:
		v.kind, v.num, v.text = kindNumber, math.NaN(), x.GetToken().Value
	case *ast.StringNode:
		v.kind, v.text = kindString, x.Value
	case *ast.LiteralNode:
		v.kind = kindString
		if x.Value != nil {
			v.text = x.Value.Value
		}
	case *ast.TagNode:
		inner := c.node(x.Value, path, key)
		if x.Start != nil && x.Start.Value == "!!str" && inner.kind != kindList && inner.kind != kindMap {
			inner.kind = kindString
			if x.Value != nil && x.Value.GetToken() != nil {
				inner.text = x.Value.GetToken().Value
			}
		}
		return inner
	case *ast.AnchorNode:
		inner := c.node(x.Value, path, key)
		if x.Name != nil {
			c.anchors[x.Name.GetToken().Value] = inner
		}
		return inner
	case *ast.AliasNode:
		name := ""
		if x.Value != nil {
			name = x.Value.GetToken().Value
		}
		a, ok := c.anchors[name]
		if !ok {
			c.r.errorf(v.at, "unknown alias %q", name)
			return v
		}
		return a
	case *ast.SequenceNode:
		v.kind = kindList
		for i, e := range x.Values {
			v.list = append(v.list, c.node(e, fmt.Sprintf("%s[%d]", path, i), key))
		}
	case *ast.MappingNode:
		c.mapping(v, x.Values, path)
	case *ast.MappingValueNode:
		c.mapping(v, []*ast.MappingValueNode{x}, path)
	default:
		c.r.errorf(v.at, "unsupported YAML value %q", n.GetToken().Value)
	}
	return v
}

// mapping fills v with pairs. Keys given twice are errors, since only one of
// the two could take effect; keys from merge keys (<<: *defaults) apply
// only where the map does not set them itself.
func (c *converter) mapping(v *val, pairs []*ast.MappingValueNode, path string) {
	v.kind = kindMap
	var merged []*member
	for _, p := range pairs {
		if p.Key != nil && p.Key.IsMergeKey() {
			src := c.node(p.Value, path, "<<")
			srcs := []*val{src}
			if src.kind == kindList {
				srcs = src.list
			}
			for _, s := range srcs {
				if s.kind != kindMap {
					c.r.errorf(s.at, "a merge key (<<) takes a map or a list of maps, got %s", s.describe())
					continue
				}
				merged = append(merged, s.items...)
			}
			continue
		}
		k := keyText(p.Key)
		at := posOf(p.Key, childPath(path, k), k)
		if prev := v.get(k); prev != nil {
			c.r.errorf(at, "key %q is given twice (first at line %d)", k, prev.at.line)
			continue
		}
		v.items = append(v.items, &member{key: k, at: at, v: c.node(p.Value, childPath(path, k), k)})
	}
	for _, m := range merged {
		if v.get(m.key) == nil {
			v.items = append(v.items, m)
		}
	}
}

func keyText(k ast.MapKeyNode) string {
	switch x := k.(type) {
	case nil:
		return ""
	case *ast.StringNode:
		return x.Value
	}
	if tk := k.GetToken(); tk != nil {
		return tk.Value
	}
	return k.String()
}

// fromJSON reads the JSON that node printed for a JS config file. Keys keep
// their order; positions are left empty (they are looked up in the JS
// source when needed).
func fromJSON(b []byte) (*val, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	v, err := jsonValue(d, "", "")
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the value")
	}
	return v, nil
}

func jsonValue(d *json.Decoder, path, key string) (*val, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	v := &val{at: where{path: path, key: key}}
	switch t := tok.(type) {
	case nil:
	case bool:
		v.kind, v.flag, v.text = kindBool, t, strconv.FormatBool(t)
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return nil, err
		}
		v.kind, v.num, v.text = kindNumber, f, t.String()
	case string:
		v.kind, v.text = kindString, t
	case json.Delim:
		switch t {
		case '[':
			v.kind = kindList
			for i := 0; d.More(); i++ {
				e, err := jsonValue(d, fmt.Sprintf("%s[%d]", path, i), key)
				if err != nil {
					return nil, err
				}
				v.list = append(v.list, e)
			}
		case '{':
			v.kind = kindMap
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				e, err := jsonValue(d, childPath(path, k), k)
				if err != nil {
					return nil, err
				}
				v.items = append(v.items, &member{key: k, at: where{path: childPath(path, k), key: k}, v: e})
			}
		}
		if _, err := d.Token(); err != nil { // the closing delimiter
			return nil, err
		}
	}
	return v, nil
}

// cmdVal makes a val for a value typed on the command line.
func cmdVal(f Field) *val {
	return &val{kind: kindString, text: f.Value, loose: true, at: where{path: f.Flag, key: f.Key}}
}

// splitList splits s on commas, for list flags given as "a,b".
func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// jsonMarshal encodes v without escaping <, > and &, which have no reason
// to be escaped in an environment variable.
func jsonMarshal(v any) ([]byte, error) {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
