package jsvm

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// sameAsParse is a JavaScript deep comparison: the same types, Object.is
// on primitives (so -0 differs from 0), the same prototypes, the same own
// keys in the same order with the same descriptors, recursively.
const sameAsParse = `(function same(a, b) {
	if (typeof a !== typeof b) return false;
	if (a === null || typeof a !== 'object') return Object.is(a, b);
	if (b === null || Array.isArray(a) !== Array.isArray(b)) return false;
	if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
	const ka = Reflect.ownKeys(a), kb = Reflect.ownKeys(b);
	if (ka.length !== kb.length) return false;
	for (let i = 0; i < ka.length; i++) {
		if (ka[i] !== kb[i]) return false;
		const da = Object.getOwnPropertyDescriptor(a, ka[i]), db = Object.getOwnPropertyDescriptor(b, kb[i]);
		if (da.writable !== db.writable || da.enumerable !== db.enumerable || da.configurable !== db.configurable) return false;
		if (ka[i] !== 'length' && !same(da.value, db.value)) return false;
	}
	return true;
})`

// checkJSON builds text both ways in one fresh runtime and compares.
func checkJSON(t *testing.T, text string) {
	t.Helper()
	rt := goja.New()
	st := &state{rt: rt}
	var built, parsed goja.Value
	var builtErr, parseErr any
	func() {
		defer func() { builtErr = recover() }()
		built = st.jsonValue(text)
	}()
	func() {
		defer func() { parseErr = recover() }()
		parsed = st.parseJSON(text)
	}()
	if (builtErr != nil) != (parseErr != nil) {
		t.Fatalf("%q: builder panicked %v, JSON.parse %v", text, builtErr, parseErr)
	}
	if builtErr != nil {
		return
	}
	same, err := rt.RunString(sameAsParse)
	if err != nil {
		t.Fatal(err)
	}
	fn, _ := goja.AssertFunction(same)
	ok, err := fn(goja.Undefined(), built, parsed)
	if err != nil || !ok.ToBoolean() {
		t.Fatalf("%q: built %v, JSON.parse %v (%v)", text, built.Export(), parsed.Export(), err)
	}
}

func TestJSONValueMatchesParse(t *testing.T) {
	// The comparison itself tells order, -0 and own __proto__ apart.
	rt := goja.New()
	for _, pair := range [][2]string{
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`}, {`[0]`, `[-0]`}, {`{"__proto__":{}}`, `{}`}, {`[1]`, `{"0":1}`}, {`"1"`, `1`},
	} {
		v, err := rt.RunString("(" + sameAsParse + ")(JSON.parse('" + pair[0] + "'), JSON.parse('" + pair[1] + "'))")
		if err != nil || v.ToBoolean() {
			t.Fatalf("same(%s, %s) = %v, %v", pair[0], pair[1], v, err)
		}
	}
	for _, text := range []string{
		`null`, `true`, `false`, `0`, `-0`, `1.5`, `-1e300`, `1e400`, `123456789012345678901234567890`,
		`"x"`, `""`, `"h\u00e9llo \ud83d\ude00"`, `"\ud800"`, `"a\"b\\c\/\b\f\n\r\t"`, "\"a\xffb\"", "\"\u2028\"",
		`{}`, `[]`, `[1,"a",null,true,{"b":[]}]`, `{"b":1,"a":2,"1":3,"0":4}`, `{"__proto__":{"x":1}}`,
		`{"toString":1,"constructor":2,"hasOwnProperty":3}`, `{"a":1,"a":2}`, ` { "a" : [ 1 , 2 ] } `,
		`{"a":1,}`, `[1,]`, `01`, `1.`, `-`, `.5`, `1e`, `tru`, `nul`, `{"a"}`, `{"a":1`, `[`, `"abc`, "\"a\nb\"",
		`{"text":"hello"}`, `{"id":"r1","flow":"notify","project":"billing","environment":"production","block":"code"}`,
		strings.Repeat("[", 1200) + strings.Repeat("]", 1200),
	} {
		checkJSON(t, text)
	}
	// json.Marshal of random values, as the sandbox pool sends globals.
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b, err := json.Marshal(randomJSON(r, 4))
		if err != nil {
			t.Fatal(err)
		}
		checkJSON(t, string(b))
	}
}

func randomJSON(r *rand.Rand, depth int) any {
	strs := []string{"", "a", "héllo", "😀", "<&>", "a\"b\\c", "\x00\x1f", "a\xffb", "\u2028", "__proto__", "0", "10", "constructor"}
	switch n := r.IntN(9); {
	case n == 0 || depth == 0 && n < 4:
		return nil
	case n == 1 || depth == 0 && n < 6:
		return strs[r.IntN(len(strs))]
	case n == 2 || depth == 0:
		return []any{r.Float64() * 1e6, float64(r.IntN(100)), -r.Float64(), math.MaxFloat64, 1e-300, float64(1 << 53)}[r.IntN(6)]
	case n == 3:
		return r.IntN(2) == 0
	case n < 6:
		m := map[string]any{}
		for range r.IntN(5) {
			m[strs[r.IntN(len(strs))]] = randomJSON(r, depth-1)
		}
		return m
	}
	l := make([]any, r.IntN(4))
	for i := range l {
		l[i] = randomJSON(r, depth-1)
	}
	return l
}

// A global the script cannot name is not built, and one it reaches
// through arguments, eval or an escaped name is.
func TestObservedGlobals(t *testing.T) {
	g := Globals{Input: JSON(`{"text":"hello"}`), Steps: JSON(`{"s":1}`), Run: JSON(`{"id":"r1"}`), Env: JSON(`{"E":"e"}`)}
	for src, want := range map[string]any{
		`return input.text`:                  "hello",
		`return arguments[2].s`:              int64(1),
		`return eval("st" + "eps").s`:        int64(1),
		`return \u0065nv.E`:                  "e",
		`return typeof input + typeof steps`: "objectobject",
		`return run.id`:                      "r1",
	} {
		s, err := Compile(Code, src)
		if err != nil {
			t.Fatal(src, err)
		}
		got, err := s.RunIn(context.Background(), NewRuntime(), g, nopHost{}, Limits{})
		if err != nil || got != want {
			t.Errorf("%s: %v %v, want %v", src, got, err, want)
		}
	}
	s, _ := Compile(Code, `return input.text`)
	if s.observes != [4]bool{true, false, false, false} {
		t.Errorf("observes %v", s.observes)
	}
	// A runtime runs one script once.
	rt := NewRuntime()
	if _, err := s.RunIn(context.Background(), rt, g, nopHost{}, Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunIn(context.Background(), rt, g, nopHost{}, Limits{}); err == nil {
		t.Error("a runtime ran twice")
	}
}
