package engine

import (
	"strings"
	"testing"
)

// A name a script reads that nothing defines is pointed out when the flow
// is saved, with its position and the likely name; valid scripts of every
// binding form get no warning.
func TestUnknownNamesWarned(t *testing.T) {
	for _, tt := range []struct {
		kind Kind
		src  string
		want []string
	}{
		{Field, "stpes.call.output", []string{`1:1: unknown name stpes: it is defined nowhere, so reading it fails when this line runs; did you mean "steps"?`}},
		{Field, "`Bearer ${secret.API_TOKEN}`", []string{`1:11: unknown name secret: it is defined nowhere, so reading it fails when this line runs; did you mean "secrets"?`}},
		{Code, "const n = 1\nreturn n + inptu.x + inptu.y", []string{`2:12: unknown name inptu`}},
		{Code, "total = 5\nreturn total", []string{"1:1: unknown name total"}},
		{Code, "return frobnicate(input)", []string{"1:8: unknown name frobnicate: it is defined nowhere, so reading it fails when this line runs"}},
		{Code, "if (input.rare) { return helper(1) }\nreturn 0", []string{"1:26: unknown name helper"}},
		// Valid: every way a script binds or reaches a name.
		{Field, "input.x + steps.call.output.body.items.length + env.API + run.id", nil},
		{Field, "`${env.API}/items?token=${encodeURIComponent(secrets.API_TOKEN)}`", nil},
		{Field, "({Authorization: `Bearer ${secrets.API_TOKEN}`, 'X-Id': run.id, [input.k]: 1})", nil},
		{Code, "const {a, b: [c, d = 2], ...rest} = input\nlet [e, , f = 3, ...more] = [1, 2]\nreturn a + c + d + rest + e + f + more", nil},
		{Code, "function f(x, {y} = {}, ...ys) { return x + y + ys.length }\nreturn f(1, 2)", nil},
		{Code, "let total = 0\nfor (const v of input.list) { total += v }\nfor (const k in input) { total += k.length }\nreturn total", nil},
		{Code, "outer: for (let i = 0; i < 3; i++) { for (;;) { continue outer } }\nblock: { break block }\nreturn 1", nil},
		{Code, "try { JSON.parse('x') } catch (e) { return e.message } finally { console.log('done') }", nil},
		{Code, "try { x() } catch { return 1 }\nfunction x() {}", nil},
		{Code, "class A { constructor() { this.x = 1 } get y() { return 2 } static z() { return 3 } w = 4 }\nreturn new A().x + A.z()", nil},
		{Code, "return typeof maybe === 'undefined' ? 1 : 2", nil},
		{Code, "return {a: 1, 'b': 2, method() { return 1 }, get g() { return 2 }, ...input}", nil},
		{Code, "return Math.max(...[1, 2]) + parseInt('3') + Number.MAX_SAFE_INTEGER + Date.now() + NaN + Infinity + undefined", nil},
		{Code, "return btoa('x') + atob('eA==') + JSON.stringify(new Map()) + String(Symbol('s').description)", nil},
		{Code, "const r = await new Promise(resolve => resolve(1))\nreturn r + [1].map(function (v, i) { return v + i + arguments.length })[0]", nil},
		{Code, "return ((a, ...r) => a * r.length)(3) + (async (...z) => z)()", nil},
		{Code, "var hoisted\nreturn (function g() { return typeof g + hoisted })() + globalThis.Array.isArray([])", nil},
		{Code, "function F() { return new.target }\nreturn F", nil},
		{Code, "return [item, index]", nil}, // defined in a block with each: checked there
		{Code, "return error + failed_block", nil},
	} {
		p, err := testEngine.Compile(tt.kind, tt.src)
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		got := p.Warnings()
		if len(got) != len(tt.want) {
			t.Errorf("%s: warnings %q, want %q", tt.src, got, tt.want)
			continue
		}
		for i := range got {
			if !strings.HasPrefix(got[i], tt.want[i]) {
				t.Errorf("%s: warning %q, want %q...", tt.src, got[i], tt.want[i])
			}
		}
	}
}
