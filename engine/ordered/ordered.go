// Package ordered holds JSON objects that keep the order of their keys as
// JavaScript does, so that a script sees `input` as JSON.parse would have
// built it: JSON.stringify(input), Object.keys(input) and for-in list the
// keys in the order of the original text. A Go map has no order, so JSON
// decoded into map[string]any loses it; Decode keeps it.
//
// The order is JavaScript's own (OrdinaryOwnPropertyKeys): keys that are
// array indices ("0", "1", ... up to 2^32-2) first, in ascending numeric
// order, then the other keys in the order they first appear. A key that
// appears twice keeps its first position and its last value, as
// JSON.parse does.
//
// An Object is immutable once built and safe for concurrent use.
package ordered

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Object is a JSON object whose keys keep their order. Its values are JSON
// values as Decode returns them: nil, bool, float64, string, []any and
// *Object.
type Object struct {
	keys []string
	idx  int // keys[:idx] are the array indices
	vals map[string]any

	plainOnce sync.Once
	plain     map[string]any
}

// Len returns the number of keys.
func (o *Object) Len() int { return len(o.keys) }

// Keys returns the keys in order. The slice belongs to o: do not modify it.
func (o *Object) Keys() []string { return o.keys }

// Get returns the value of key k.
func (o *Object) Get(k string) (any, bool) {
	v, ok := o.vals[k]
	return v, ok
}

// Values returns the object's values by key. The map belongs to o: do not
// modify it.
func (o *Object) Values() map[string]any { return o.vals }

// MarshalJSON writes the object with its keys in order.
func (o *Object) MarshalJSON() ([]byte, error) {
	return appendJSON(nil, o)
}

// appendJSON appends v as JSON: objects and arrays here (so that encoding/
// json checks the nested output once, not once per level), the rest by
// encoding/json.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case *Object:
		b = append(b, '{')
		for i, k := range x.keys {
			if i > 0 {
				b = append(b, ',')
			}
			kb, err := json.Marshal(k)
			if err != nil {
				return nil, err
			}
			b = append(append(b, kb...), ':')
			if b, err = appendJSON(b, x.vals[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	vb, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, vb...), nil
}

// Plain returns v with every *Object replaced by a map[string]any (the
// form the rest of Hushflow and expr-lang read). Maps and arrays are
// copied only when they hold an Object, at any depth. An Object converts
// once: later calls return the same maps, which the caller must not
// modify.
func Plain(v any) any {
	p, _ := plain(v)
	return p
}

// plain returns v's plain form and whether it differs from v.
func plain(v any) (any, bool) {
	switch x := v.(type) {
	case *Object:
		return x.Plain(), true
	case []any:
		var out []any
		for i, e := range x {
			p, changed := plain(e)
			if changed && out == nil {
				out = slices.Clone(x)
			}
			if out != nil {
				out[i] = p
			}
		}
		if out == nil {
			return v, false
		}
		return out, true
	case map[string]any:
		var out map[string]any
		for k, e := range x {
			p, changed := plain(e)
			if !changed {
				continue
			}
			if out == nil {
				out = maps.Clone(x)
			}
			out[k] = p
		}
		if out == nil {
			return v, false
		}
		return out, true
	}
	return v, false
}

// Plain returns the object as a map[string]any whose nested objects are
// maps too; it is computed once and shared: do not modify it.
func (o *Object) Plain() map[string]any {
	o.plainOnce.Do(func() {
		o.plain = make(map[string]any, len(o.vals))
		for k, v := range o.vals {
			o.plain[k] = Plain(v)
		}
	})
	return o.plain
}

// Builder builds an Object key by key.
type Builder struct{ o *Object }

// Set sets key k to v: a new key takes its place in JavaScript's order, an
// existing one keeps its place.
func (b *Builder) Set(k string, v any) {
	if b.o == nil {
		b.o = &Object{vals: map[string]any{}}
	}
	if _, ok := b.o.vals[k]; !ok {
		b.o.keys, b.o.idx = InsertKey(b.o.keys, b.o.idx, k)
	}
	b.o.vals[k] = v
}

// Object returns the object built; the Builder must not be used after.
func (b *Builder) Object() *Object {
	if b.o == nil {
		return &Object{vals: map[string]any{}}
	}
	return b.o
}

// ArrayIndex reports whether k is an array index: the canonical decimal
// form of an integer from 0 to 2^32-2.
func ArrayIndex(k string) (uint32, bool) {
	if k == "" || len(k) > 10 || k[0] < '0' || k[0] > '9' || (len(k) > 1 && k[0] == '0') {
		return 0, false
	}
	n, err := strconv.ParseUint(k, 10, 32)
	if err != nil || n == 1<<32-1 {
		return 0, false
	}
	return uint32(n), true
}

// InsertKey adds k, which keys does not hold, to keys in JavaScript's
// order, where keys[:idx] are the array indices, and returns the new keys
// and idx.
func InsertKey(keys []string, idx int, k string) ([]string, int) {
	n, ok := ArrayIndex(k)
	if !ok {
		return append(keys, k), idx
	}
	// Indices come first, ascending.
	i, _ := slices.BinarySearchFunc(keys[:idx], n, func(e string, n uint32) int {
		m, _ := ArrayIndex(e)
		return cmp.Compare(m, n)
	})
	return slices.Insert(keys, i, k), idx + 1
}

// SortKeys sorts the keys of a map that has no order of its own as the
// engine presents them: indices first, ascending, then the other keys in
// byte order (what encoding/json writes).
func SortKeys(keys []string) {
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(indicesFirst(a, b), strings.Compare(a, b))
	})
}

// indicesFirst orders array indices before other keys and indices by
// value; two other keys compare equal.
func indicesFirst(a, b string) int {
	n, aok := ArrayIndex(a)
	m, bok := ArrayIndex(b)
	switch {
	case aok && bok:
		return cmp.Compare(n, m)
	case aok:
		return -1
	case bok:
		return 1
	}
	return 0
}

// maxDepth bounds the nesting Decode accepts (encoding/json's own bound).
const maxDepth = 10000

// Decode decodes one JSON value as json.Unmarshal into an `any` would
// (nil, bool, float64, string, []any; invalid UTF-8 in strings replaced by
// U+FFFD), except that objects are *Object with their keys in order.
func Decode(data []byte) (any, error) {
	return DecodeNumbers(data, nil)
}

// DecodeNumbers is Decode with numbers converted by num (nil: float64, as
// json.Unmarshal gives them).
func DecodeNumbers(data []byte, num func(json.Number) any) (any, error) {
	d := decoder{s: data, num: num}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.i != len(d.s) {
		return nil, d.fail("data after the value")
	}
	return v, nil
}

// decoder reads JSON text (RFC 8259) by recursive descent: about as fast
// as json.Unmarshal into an `any`, where json.Decoder's tokens were four
// to five times slower.
type decoder struct {
	s   []byte
	i   int
	num func(json.Number) any
	// pairs is a stack of the members of the objects being read: an
	// object's map and keys are made once, at the right size, when it
	// ends.
	pairs []pair
}

type pair struct {
	k string
	v any
}

func (d *decoder) fail(what string) error {
	if d.i >= len(d.s) {
		return fmt.Errorf("ordered: invalid JSON: unexpected end of input")
	}
	return fmt.Errorf("ordered: invalid JSON at byte %d: %s", d.i, what)
}

func (d *decoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// ErrTooDeep is Decode's error for JSON whose objects and arrays nest
// deeper than 10,000 levels (encoding/json's bound, which would refuse to
// encode it again).
var ErrTooDeep = errors.New("ordered: JSON nested deeper than 10000 levels")

func (d *decoder) value(depth int) (any, error) {
	d.space()
	if d.i >= len(d.s) {
		return nil, d.fail("")
	}
	if c := d.s[d.i]; (c == '{' || c == '[') && depth >= maxDepth {
		return nil, ErrTooDeep
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		return d.str()
	case c == 't':
		return d.lit("true", true)
	case c == 'f':
		return d.lit("false", false)
	case c == 'n':
		return d.lit("null", nil)
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	}
	return nil, d.fail(fmt.Sprintf("unexpected %q", d.s[d.i]))
}

func (d *decoder) lit(word string, v any) (any, error) {
	if !bytes.HasPrefix(d.s[d.i:], []byte(word)) {
		return nil, d.fail("invalid literal")
	}
	d.i += len(word)
	return v, nil
}

func (d *decoder) object(depth int) (any, error) {
	d.i++ // {
	base := len(d.pairs)
	d.space()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return &Object{vals: map[string]any{}}, nil
	}
	for {
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return nil, d.fail("expected a key")
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return nil, d.fail("expected ':'")
		}
		d.i++
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		d.pairs = append(d.pairs, pair{k.(string), v})
		d.space()
		if d.i >= len(d.s) {
			return nil, d.fail("")
		}
		switch d.s[d.i] {
		case ',':
			d.i++
			continue
		case '}':
			d.i++
		default:
			return nil, d.fail("expected ',' or '}'")
		}
		break
	}
	members := d.pairs[base:]
	o := &Object{keys: make([]string, 0, len(members)), vals: make(map[string]any, len(members))}
	index := false
	for _, m := range members {
		if _, dup := o.vals[m.k]; !dup {
			o.keys = append(o.keys, m.k)
			if _, ok := ArrayIndex(m.k); ok {
				index = true
			}
		}
		o.vals[m.k] = m.v // a repeated key keeps its place, takes the last value
	}
	clear(members)
	d.pairs = d.pairs[:base]
	if index {
		// Indices first, ascending, then the other keys in order.
		slices.SortStableFunc(o.keys, indicesFirst)
		for o.idx < len(o.keys) {
			if _, ok := ArrayIndex(o.keys[o.idx]); !ok {
				break
			}
			o.idx++
		}
	}
	return o, nil
}

func (d *decoder) array(depth int) (any, error) {
	d.i++ // [
	a := []any{}
	d.space()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		return a, nil
	}
	for {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		d.space()
		if d.i >= len(d.s) {
			return nil, d.fail("")
		}
		switch d.s[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return a, nil
		default:
			return nil, d.fail("expected ',' or ']'")
		}
	}
}

// str reads a string. One without escapes and of valid UTF-8 is the text
// itself; otherwise encoding/json decodes it (escapes, U+FFFD for invalid
// UTF-8), as json.Unmarshal would.
func (d *decoder) str() (any, error) {
	start := d.i
	d.i++ // "
	plain := true
	for d.i < len(d.s) {
		switch c := d.s[d.i]; {
		case c == '"':
			d.i++
			raw := d.s[start+1 : d.i-1]
			if plain && utf8.Valid(raw) {
				return string(raw), nil
			}
			var s string
			if err := json.Unmarshal(d.s[start:d.i], &s); err != nil {
				d.i = start
				return nil, d.fail("invalid string")
			}
			return s, nil
		case c == '\\':
			plain = false
			d.i += 2
		case c < 0x20:
			return nil, d.fail("control character in a string")
		default:
			d.i++
		}
	}
	return nil, d.fail("")
}

// number reads a number with JSON's grammar.
func (d *decoder) number() (any, error) {
	start := d.i
	if d.s[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.s) && d.s[d.i] == '0':
		d.i++
	case !d.digits():
		return nil, d.fail("invalid number")
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if !d.digits() {
			return nil, d.fail("invalid number")
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if !d.digits() {
			return nil, d.fail("invalid number")
		}
	}
	text := string(d.s[start:d.i])
	if d.num != nil {
		return d.num(json.Number(text)), nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return nil, fmt.Errorf("ordered: number %s out of range", text)
	}
	return f, nil
}

func (d *decoder) digits() bool {
	start := d.i
	for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
		d.i++
	}
	return d.i > start
}

// New returns an Object of keys, which must be distinct and in
// JavaScript's order, and their values. It keeps both: do not modify them.
func New(keys []string, vals map[string]any) *Object {
	idx := 0
	for idx < len(keys) {
		if _, ok := ArrayIndex(keys[idx]); !ok {
			break
		}
		idx++
	}
	return &Object{keys: keys, idx: idx, vals: vals}
}
