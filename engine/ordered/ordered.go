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
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	if k == "" || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
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
		return strings.Compare(a, b)
	})
}

// maxDepth bounds the nesting Decode accepts (encoding/json's own bound).
const maxDepth = 10000

// Decode decodes one JSON value as json.Unmarshal into an `any` would
// (nil, bool, float64, string, []any), except that objects are *Object
// with their keys in order.
func Decode(data []byte) (any, error) {
	return DecodeNumbers(data, nil)
}

// DecodeNumbers is Decode with numbers converted by num (nil: float64, as
// json.Unmarshal gives them).
func DecodeNumbers(data []byte, num func(json.Number) any) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	if num != nil {
		d.UseNumber()
	}
	v, err := decodeValue(d, num, 0)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("ordered: invalid JSON: data after the value")
	}
	return v, nil
}

func decodeValue(d *json.Decoder, num func(json.Number) any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("ordered: JSON nested too deeply")
	}
	t, err := d.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("ordered: invalid JSON: %w", err)
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			var b Builder
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, fmt.Errorf("ordered: invalid JSON: %w", err)
				}
				k, _ := kt.(string) // the decoder accepts only strings here
				v, err := decodeValue(d, num, depth+1)
				if err != nil {
					return nil, err
				}
				b.Set(k, v)
			}
			if _, err := d.Token(); err != nil { // }
				return nil, fmt.Errorf("ordered: invalid JSON: %w", err)
			}
			return b.Object(), nil
		case '[':
			a := []any{}
			for d.More() {
				v, err := decodeValue(d, num, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := d.Token(); err != nil { // ]
				return nil, fmt.Errorf("ordered: invalid JSON: %w", err)
			}
			return a, nil
		}
		return nil, fmt.Errorf("ordered: invalid JSON: unexpected %v", t)
	case json.Number:
		return num(t), nil
	}
	return t, nil
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
