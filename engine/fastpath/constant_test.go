package fastpath

import (
	"reflect"
	"testing"
)

// Constant gives the value of what reads nothing, and nothing for what
// reads the input, steps, env, run or a secret, however deep.
func TestConstant(t *testing.T) {
	for src, want := range map[string]any{
		`'2h'`:          "2h",
		`7200000`:       int64(7200000),
		`'2' + 'h'`:     "2h",
		"`${'1'}m`":     "1m",
		`{a: [1, 'b']}`: map[string]any{"a": []any{int64(1), "b"}},
	} {
		p, ok := Compile(src)
		if !ok {
			t.Fatalf("%s: not in the fast path", src)
		}
		v, ok := p.Constant()
		if !ok || !reflect.DeepEqual(v, want) {
			t.Errorf("%s: %#v %v, want %#v", src, v, ok, want)
		}
	}
	for _, src := range []string{`input.wait`, "`${run.id}`", `env.WAIT`, `secrets.K`, `'x' + steps.a.output`, `{a: [1, input.b]}`} {
		p, ok := Compile(src)
		if !ok {
			continue // not in the fast path: not constant either
		}
		if v, ok := p.Constant(); ok {
			t.Errorf("%s: constant %#v", src, v)
		}
	}
}
