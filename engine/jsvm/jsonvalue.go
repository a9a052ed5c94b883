package jsvm

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// jsonValue builds the value of JSON text in the run's runtime, with the
// result JSON.parse would give: ordinary objects with their keys as own
// enumerable properties in the text's order, arrays, strings, numbers
// (float64, as goja's JSON.parse reads them), booleans and null. It reads
// the JSON that encoding/json writes (the sandbox pool's globals) directly,
// which costs a fraction of goja's JSON.parse (a json.Decoder token by
// token); text it does not expect (white space is fine; anything
// malformed, escapes it leaves to encoding/json, numbers out of range,
// nesting over maxJSONDepth) goes to JSON.parse itself, errors included.
func (st *state) jsonValue(text string) goja.Value {
	p := jsonBuilder{rt: st.rt, s: text}
	v, ok := p.value(0)
	if ok {
		p.space()
		if p.i == len(p.s) {
			return v
		}
	}
	return st.parseJSON(text)
}

// maxJSONDepth bounds the builder's recursion.
const maxJSONDepth = 1000

type jsonBuilder struct {
	rt *goja.Runtime
	s  string
	i  int
}

func (p *jsonBuilder) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonBuilder) value(depth int) (goja.Value, bool) {
	if depth > maxJSONDepth {
		return nil, false
	}
	p.space()
	if p.i >= len(p.s) {
		return nil, false
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		return p.rt.ToValue(s), true
	case c == 't':
		return p.lit("true", p.rt.ToValue(true))
	case c == 'f':
		return p.lit("false", p.rt.ToValue(false))
	case c == 'n':
		return p.lit("null", goja.Null())
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return nil, false
}

func (p *jsonBuilder) lit(word string, v goja.Value) (goja.Value, bool) {
	if len(p.s)-p.i < len(word) || p.s[p.i:p.i+len(word)] != word {
		return nil, false
	}
	p.i += len(word)
	return v, true
}

func (p *jsonBuilder) object(depth int) (goja.Value, bool) {
	o := p.rt.NewObject()
	p.i++ // {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return o, true
	}
	for {
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, false
		}
		k, ok := p.str()
		if !ok {
			return nil, false
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, false
		}
		p.i++
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		var err error
		if k == "__proto__" {
			// An own property, as JSON.parse makes it, not the prototype.
			err = o.DefineDataProperty(k, v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE)
		} else {
			// The object is new and Object.prototype untouched (no script
			// has run in this runtime): [[Set]] creates the own data
			// property, as JSON.parse does.
			err = o.Set(k, v)
		}
		if err != nil {
			return nil, false
		}
		p.space()
		if p.i >= len(p.s) {
			return nil, false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return o, true
		default:
			return nil, false
		}
	}
}

func (p *jsonBuilder) array(depth int) (goja.Value, bool) {
	p.i++ // [
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return p.rt.NewArray(), true
	}
	var items []any
	for {
		v, ok := p.value(depth + 1)
		if !ok {
			return nil, false
		}
		items = append(items, v)
		p.space()
		if p.i >= len(p.s) {
			return nil, false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return p.rt.NewArray(items...), true
		default:
			return nil, false
		}
	}
}

// str reads a string. One without escapes, control characters and invalid
// UTF-8 is the text itself; otherwise encoding/json decodes it, as the
// json.Decoder of JSON.parse would.
func (p *jsonBuilder) str() (string, bool) {
	start := p.i
	p.i++ // "
	plain := true
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == '"':
			p.i++
			if plain {
				s := p.s[start+1 : p.i-1]
				if utf8.ValidString(s) {
					return s, true
				}
			}
			var s string
			if err := json.Unmarshal([]byte(p.s[start:p.i]), &s); err != nil {
				return "", false
			}
			return s, true
		case c == '\\':
			plain = false
			p.i += 2
		case c < 0x20:
			return "", false
		default:
			p.i++
		}
	}
	return "", false
}

// number reads a JSON number and converts it as encoding/json does.
func (p *jsonBuilder) number() (goja.Value, bool) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	if p.i >= len(p.s) {
		return nil, false
	}
	if p.s[p.i] == '0' {
		p.i++
	} else if !p.digits() {
		return nil, false
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if !p.digits() {
			return nil, false
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return nil, false
		}
	}
	f, err := strconv.ParseFloat(p.s[start:p.i], 64)
	if err != nil {
		return nil, false
	}
	return p.rt.ToValue(f), true
}

func (p *jsonBuilder) digits() bool {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}
