package ordered

import (
	"encoding/json"
	"reflect"
	"slices"
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
}
