package ordered

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	v, err := Decode([]byte(` {"b":1,"10":[{"y":true,"x":null}],"a":"s","9":2,"b":3,"4294967295":0} `))
	if err != nil {
		t.Fatal(err)
	}
	o := v.(*Object)
	// Indices first, ascending; a repeated key keeps its place and takes
	// its last value; 2^32-1 is not an index.
	if want := []string{"9", "10", "b", "a", "4294967295"}; !slices.Equal(o.Keys(), want) {
		t.Fatalf("keys %q, want %q", o.Keys(), want)
	}
	b, err := json.Marshal(o)
	if err != nil || string(b) != `{"9":2,"10":[{"y":true,"x":null}],"b":3,"a":"s","4294967295":0}` {
		t.Fatalf("%s %v", b, err)
	}
	want := map[string]any{"9": 2.0, "10": []any{map[string]any{"y": true, "x": nil}}, "b": 3.0, "a": "s", "4294967295": 0.0}
	if p := Plain(o); !reflect.DeepEqual(p, want) {
		t.Fatalf("plain %#v", p)
	}
	for _, bad := range []string{``, `{`, `{"a":1}x`, `[1,]`, `{"a" 1}`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// Nesting: 10,000 levels, as encoding/json, which encodes them again.
	for depth, want := range map[int]error{10_000: nil, 10_001: ErrTooDeep} {
		for _, doc := range []string{
			strings.Repeat("[", depth) + strings.Repeat("]", depth),
			strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth),
		} {
			v, err := Decode([]byte(doc))
			if !errors.Is(err, want) {
				t.Errorf("%d levels (%.5s...): %v, want %v", depth, doc, err, want)
			}
			if err == nil {
				if _, err := json.Marshal(v); err != nil {
					t.Errorf("%d levels (%.5s...) do not encode again: %v", depth, doc, err)
				}
			}
		}
	}
}

// FuzzDecode checks Decode against json.Unmarshal: the same values (as
// maps), the same verdict on validity.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1,2,{"c":"\u00e9\n"}],"2":null,"1":true}`, `[]`, `{}`, `"x"`, `-0.5e-3`, `1e400`,
		`{"a":1,"a":2}`, "\"\xff\"", `"\ud800"`, `{"a" : [ 1 , 2 ] }`, `01`, `[1,]`, `{"a":1,}`, `nul`, "\"a\tb\"", `"\x"`, ` 1 `, `1 2`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want any
		werr := json.Unmarshal(data, &want)
		got, err := Decode(data)
		if (werr == nil) != (err == nil) {
			t.Fatalf("%q: Unmarshal %v, Decode %v", data, werr, err)
		}
		if err != nil {
			return
		}
		if p := Plain(got); !reflect.DeepEqual(p, want) {
			t.Fatalf("%q: %#v, want %#v", data, p, want)
		}
		check(t, got)
	})
}

// check verifies that an Object's keys are its map's, in JavaScript's
// order.
func check(t *testing.T, v any) {
	switch x := v.(type) {
	case *Object:
		if len(x.keys) != len(x.vals) {
			t.Fatalf("keys %q for %d values", x.keys, len(x.vals))
		}
		for i, k := range x.keys {
			if _, ok := x.vals[k]; !ok {
				t.Fatalf("key %q has no value", k)
			}
			if i > 0 {
				n, aok := ArrayIndex(x.keys[i-1])
				m, bok := ArrayIndex(k)
				if !aok && bok || aok && bok && n >= m {
					t.Fatalf("keys out of order: %q", x.keys)
				}
			}
			check(t, x.vals[k])
		}
	case []any:
		for _, e := range x {
			check(t, e)
		}
	}
}
