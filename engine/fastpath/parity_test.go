package fastpath_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/engine/fastpath"
	"github.com/hushflow/hushflow/engine/jsvm"
)

// The parity harness: every expression the fast path accepts is also run
// by goja, through engine/jsvm exactly as package engine runs a field (the
// same wrapper, globals and export), and both must agree on the value, on
// failing, and on the secrets read (in order).

var errUnknown = errors.New("unknown secret")

// secrets is a map Resolver for both sides; it records reads in order.
type secrets struct {
	vals  map[string]string
	reads []string
}

func (s *secrets) Secret(_ context.Context, name string) (string, error) {
	for _, r := range s.reads {
		if r == name {
			return s.vals[name], nil // engine's adapter resolves once per name
		}
	}
	v, ok := s.vals[name]
	if !ok {
		return "", fmt.Errorf("secret %q is not defined in project p: %w", name, errUnknown)
	}
	s.reads = append(s.reads, name)
	return v, nil
}

// host is the goja side's jsvm.Host.
type host struct{ s *secrets }

func (h host) Resolve(name string, _ jsvm.Scope) (string, error) {
	return h.s.Secret(context.Background(), name)
}
func (h host) Names() ([]string, error) { return nil, nil }
func (h host) Mask(string)              {}
func (h host) Log(string, string)       {}

type result struct {
	v     any
	err   error
	reads []string
}

func runGoja(t testing.TB, src string, env *fastpath.Env, vals map[string]string) result {
	t.Helper()
	s, err := jsvm.Compile(jsvm.Field, src)
	if err != nil {
		return result{err: err}
	}
	sec := &secrets{vals: vals}
	g := jsvm.Globals{Input: env.Input, Steps: map[string]any{}, Env: map[string]string{}}
	if env.Steps != nil {
		g.Steps = env.Steps
	}
	if env.Vars != nil {
		g.Env = env.Vars
	}
	r := env.Run
	if r == nil {
		r = &fastpath.Run{}
	}
	g.Run = map[string]any{"id": r.ID, "flow": r.Flow, "project": r.Project, "environment": r.Environment, "block": r.Block}
	v, err := s.Run(context.Background(), g, host{sec}, jsvm.Limits{})
	return result{v: v, err: err, reads: sec.reads}
}

// check runs src both ways. It returns whether the fast path took it.
func check(t testing.TB, src string, env fastpath.Env, vals map[string]string, maxOutput int) bool {
	t.Helper()
	p, ok := fastpath.Compile(src)
	if !ok {
		return false
	}
	sec := &secrets{vals: vals}
	env.Secrets = sec
	v, ok, err := p.Eval(&env, maxOutput)
	if !ok {
		return false
	}
	g := runGoja(t, src, &env, vals)
	if err != nil {
		if g.err == nil {
			t.Fatalf("%s: fast path failed (%v), goja returned %#v", src, err, g.v)
		}
		var je *jsvm.Error
		if !errors.As(g.err, &je) || je.Code != jsvm.CodeSecret || !errors.Is(g.err, errUnknown) {
			t.Fatalf("%s: fast path: secret error %v; goja: %v", src, err, g.err)
		}
	} else {
		if g.err != nil {
			t.Fatalf("%s: fast path returned %#v, goja failed: %v", src, v, g.err)
		}
		if !same(v, g.v) {
			t.Fatalf("%s:\n fast path %#v\n goja      %#v", src, v, g.v)
		}
	}
	if !reflect.DeepEqual(sec.reads, g.reads) {
		t.Fatalf("%s: secrets read %q, goja read %q", src, sec.reads, g.reads)
	}
	// Program.Read, which the engine reports,, lists the same reads once each.
	var reads []string
	for i := range env.NumReads() {
		name, v := p.Read(&env, i)
		if v != vals[name] {
			t.Fatalf("%s: read %s = %q, want %q", src, name, v, vals[name])
		}
		reads = append(reads, name)
	}
	if !reflect.DeepEqual(reads, sec.reads) {
		t.Fatalf("%s: Program.Read %q, resolved %q", src, reads, sec.reads)
	}
	return true
}

// same is deep equality that also tells int64 from float64 and -0 from 0.
func same(a, b any) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	switch a := a.(type) {
	case float64:
		bf := b.(float64)
		return a == bf && math.Signbit(a) == math.Signbit(bf)
	case []any:
		bs := b.([]any)
		if len(a) != len(bs) {
			return false
		}
		for i := range a {
			if !same(a[i], bs[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		bm := b.(map[string]any)
		if len(a) != len(bm) {
			return false
		}
		for k, v := range a {
			w, ok := bm[k]
			if !ok || !same(v, w) {
				return false
			}
		}
		return true
	}
	return a == b
}

func baseEnv() (fastpath.Env, map[string]string) {
	env := fastpath.Env{
		Input: map[string]any{
			"name": "Ada", "n": float64(3), "half": 1.5, "neg0": math.Copysign(0, -1),
			"i": 42, "i64": int64(7), "big": int64(1) << 60, "flag": true, "off": false,
			"null": nil, "uni": "héllo 😀", "bmp": "\uE000", "astral": "😀",
			"bad": "a\xffb", "nan": math.NaN(), "inf": math.Inf(1), "huge": 1e300,
			"user":  map[string]any{"email": "a@example.com", "age": float64(36)},
			"items": []any{"a", float64(2), map[string]any{"id": "x"}},
			"proto": map[string]any{"__proto__": "p", "constructor": "c"},
		},
		Steps: map[string]any{
			"call": map[string]any{"output": map[string]any{"status": float64(200), "body": map[string]any{"id": "m1"}, "ok": true}},
		},
		Vars: map[string]string{"API_BASE": "https://api.example.com", "EMPTY": ""},
		Run:  &fastpath.Run{ID: "r1", Flow: "notify", Project: "p", Environment: "production", Block: "call"},
	}
	vals := map[string]string{
		"API_TOKEN": "tok-123", "UNI": "sécret😀", "EMPTY": "", "BAD": "x\xfe",
		"QUOTE": `a"b\c`, "NUM": "200",
	}
	return env, vals
}

func TestParity(t *testing.T) {
	tests := []struct {
		name, src string
		fast      bool // the fast path must take it with the base env
	}{
		{"template secret", "`Bearer ${secrets.API_TOKEN}`", true},
		{"bracket secret", `secrets["API_TOKEN"]`, true},
		{"secret twice", "`${secrets.API_TOKEN}:${secrets.API_TOKEN}`", true},
		{"unicode secret", "`x${secrets.UNI}`", true},
		{"empty secret", "`${secrets.EMPTY}`", true},
		{"missing secret", "`Bearer ${secrets.NOPE}`", true},
		{"missing after read", "`${secrets.API_TOKEN}${secrets.NOPE}`", true},
		{"invalid utf8 secret", "`${secrets.BAD}`", false},
		{"header object", "({\"Authorization\": `Bearer ${secrets.API_TOKEN}`})", true},
		{"object unparenthesized", "{Authorization: `Bearer ${secrets.API_TOKEN}`, n: 1}", true},
		{"nested object", "({a: {b: [1, 1.5, -0, 'x', null, true]}, c: input.name})", true},
		{"url", "`https://api.example.com/data?token=${secrets.API_TOKEN}`", true},
		{"env template", "`${env.API_BASE}/messages`", true},
		{"run", "run.project + '/' + run.environment", true},
		{"input path", "input.user.email", true},
		{"input index", "input.items[0]", true},
		{"input index obj", "input.items[2].id", true},
		{"number path float int", "input.n", true},
		{"number path half", "input.half", true},
		{"number path -0", "input.neg0", true},
		{"number int", "input.i", true},
		{"number int64", "input.i64", true},
		{"number big", "input.big", false},
		{"nan result", "input.nan", false},
		{"inf result", "input.inf", false},
		{"huge result", "input.huge", true},
		{"null result", "input.null", true},
		{"missing key", "input.nope", false},
		{"through undefined", "input.nope.x", false},
		{"through null", "input.null.x", false},
		{"string property", "input.name.length", false},
		{"proto key", "input.proto.constructor", false},
		{"template number", "`n=${input.n} i=${input.i} -0=${input.neg0} b=${input.flag} z=${input.null}`", true},
		{"template half", "`${input.half}`", false},
		{"template object", "`${input.user}`", false},
		{"concat", "'Bearer ' + secrets.API_TOKEN", true},
		{"concat paths", "input.name + input.uni", true},
		{"concat number path", "input.name + input.n", false},
		{"concat two numbers", "input.n + input.i", false},
		{"eq status", "steps.call.output.status == 200", true},
		{"eq status strict", "steps.call.output.status === 200", true},
		{"eq string vs number", "secrets.NUM == 200", false},
		{"strict string vs number", "secrets.NUM === 200", true},
		{"neq", "input.name != 'Ada'", true},
		{"eq null", "input.null == null", true},
		{"eq null num", "input.n == null", true},
		{"lt", "input.n < 10", true},
		{"ge", "200 >= steps.call.output.status", true},
		{"lt strings", "input.bmp < input.astral", false}, // no literal
		{"lt string literal", "input.astral < '\uE000'", true},
		{"lt string literal 2", "input.bmp > '😀'", true},
		{"lt mixed", "input.name < 5", false},
		{"nan compare", "input.nan < 1", true},
		{"nan eq", "input.nan === input.nan", false},
		{"and", "steps.call.output.ok && input.flag", true},
		{"or", "input.off || !input.flag", true},
		{"not", "!input.off", true},
		{"and compare", "input.n > 1 && input.name === 'Ada'", true},
		{"and not bool", "input.name && input.flag", false},
		{"short circuit secret", "input.off && secrets.API_TOKEN === 'x'", true},
		{"short circuit missing", "input.off && secrets.NOPE === 'x'", true},
		{"secret compare", "secrets.API_TOKEN === 'tok-123'", true},
		{"literal", "'plain'", true},
		{"literal number", "42", true},
		{"literal float", "1.0", true},
		{"literal exp", "1e3", true},
		{"literal big", "9007199254740993", false},
		{"literal neg", "-5", true},
		{"literal neg0", "-0", true},
		{"literal hex", "0x1F", true},
		{"array", "[secrets.API_TOKEN, input.n, 'x']", true},
		{"secrets method", "secrets.get", false},
		{"secrets toString", "secrets.toString", false},
		{"secret prop", "secrets.API_TOKEN.length", false},
		{"ternary", "input.flag ? 'a' : 'b'", false},
		{"call", "encodeURIComponent(secrets.API_TOKEN)", false},
		{"steps missing", "steps.nope.output", false},
		{"env missing", "env.NOPE", false},
		{"run unknown", "run.nope", false},
		{"comment", "secrets.API_TOKEN // the token", true},
		{"escape", "'a\\u00e9\\n'", true},
		{"lone surrogate", "'\\uD800'", false},
		{"template escape", "`a\\u{1F600}${input.name}`", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, vals := baseEnv()
			got := check(t, tt.src, env, vals, 1<<20)
			if got != tt.fast {
				t.Errorf("fast path took it: %v, want %v", got, tt.fast)
			}
			// Goja must accept every source of the table (these are valid
			// fields); the fast path must fall back on missing data.
			env.Input, env.Steps, env.Vars = nil, nil, nil
			check(t, tt.src, env, vals, 1<<20)
		})
	}
}

func TestOutputLimit(t *testing.T) {
	env, vals := baseEnv()
	if check(t, "`${secrets.API_TOKEN}`", env, vals, 5) {
		t.Error("a result over the limit must fall back")
	}
	if !check(t, "`${secrets.API_TOKEN}`", env, vals, 9) {
		t.Error("a result within the limit must not fall back")
	}
}

// Generators for the differential fuzz test.

var (
	genStrings = []string{"", "a", "Ada", "é", "😀", "\uE000", "a\"b", "tok-123", "200", "null", "true", " 1 ", "\\", "\n"}
	genNumbers = []string{"0", "-0", "1", "200", "1.5", "-2.5", "1e21", "1e-7", "9007199254740992", "9007199254740993", "0x10", ".5", "1e400"}
	genKeys    = []string{"a", "b", "s", "n", "flag", "list", "obj", "x", "__proto__", "length", "toString", "0"}
	genSecrets = []string{"API_TOKEN", "UNI", "EMPTY", "NOPE", "BAD", "get", "mask", "toString", "then", "0"}
	genOps     = []string{"==", "!=", "===", "!==", "<", "<=", ">", ">=", "&&", "||", "+", "-", "*"}
)

func quote(r *rand.Rand, s string) string {
	switch r.IntN(3) {
	case 0:
		return strconv.Quote(s)
	case 1:
		return "'" + strings.ReplaceAll(strings.ReplaceAll(s, "\\", "\\\\"), "'", "\\'") + "'"
	}
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`", "$", "\\$").Replace(s) + "`"
}

func genPath(r *rand.Rand) string {
	var b strings.Builder
	switch r.IntN(10) {
	case 0, 1:
		b.WriteString("secrets")
		name := genSecrets[r.IntN(len(genSecrets))]
		if r.IntN(2) == 0 {
			fmt.Fprintf(&b, "[%q]", name)
		} else {
			b.WriteString("." + name)
		}
		return b.String()
	case 2:
		return "env." + []string{"API_BASE", "EMPTY", "NOPE", "N"}[r.IntN(4)]
	case 3:
		return "run." + []string{"id", "project", "flow", "block", "nope"}[r.IntN(5)]
	case 4:
		b.WriteString("steps.call.output")
	default:
		b.WriteString("input")
	}
	for i := r.IntN(3); i >= 0; i-- {
		k := genKeys[r.IntN(len(genKeys))]
		switch r.IntN(4) {
		case 0:
			fmt.Fprintf(&b, "[%d]", r.IntN(3))
		case 1:
			fmt.Fprintf(&b, "[%q]", k)
		default:
			if k == "0" {
				k = "a"
			}
			b.WriteString("." + k)
		}
	}
	return b.String()
}

func genExpr(r *rand.Rand, depth int) string {
	n := 12
	if depth <= 0 {
		n = 4
	}
	switch r.IntN(n) {
	case 0:
		return quote(r, genStrings[r.IntN(len(genStrings))])
	case 1:
		return genNumbers[r.IntN(len(genNumbers))]
	case 2:
		return []string{"true", "false", "null"}[r.IntN(3)]
	case 3:
		return genPath(r)
	case 4, 5:
		var b strings.Builder
		b.WriteByte('`')
		for i := r.IntN(3); i >= 0; i-- {
			b.WriteString(strings.NewReplacer("`", "\\`", "$", "\\$", "\\", "\\\\").Replace(genStrings[r.IntN(len(genStrings))]))
			b.WriteString("${" + genExpr(r, depth-1) + "}")
		}
		b.WriteByte('`')
		return b.String()
	case 6, 7, 8:
		op := genOps[r.IntN(len(genOps))]
		return "(" + genExpr(r, depth-1) + " " + op + " " + genExpr(r, depth-1) + ")"
	case 9:
		return "!" + genExpr(r, depth-1)
	case 10:
		var b strings.Builder
		b.WriteString("({")
		for i := r.IntN(3); i >= 0; i-- {
			if i > 0 || r.IntN(2) == 0 {
				fmt.Fprintf(&b, "%s: %s, ", quote(r, genKeys[r.IntN(len(genKeys))])[0:0]+strconv.Quote(genKeys[r.IntN(len(genKeys))]), genExpr(r, depth-1))
			}
		}
		b.WriteString("})")
		return b.String()
	}
	return "[" + genExpr(r, depth-1) + ", " + genExpr(r, depth-1) + "]"
}

func genValue(r *rand.Rand, depth int) any {
	n := 16
	if depth <= 0 {
		n = 13
	}
	switch r.IntN(n) {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2, 3:
		return genStrings[r.IntN(len(genStrings))]
	case 4:
		return "a\xffb"
	case 5:
		return []float64{0, math.Copysign(0, -1), 1, 200, 1.5, -2.5, 1e21, 1e300, math.NaN(), math.Inf(-1), 9007199254740994}[r.IntN(11)]
	case 6:
		return r.IntN(400) - 200
	case 7:
		return int64(1) << (r.IntN(64))
	case 8:
		return float32(1.5)
	case 9:
		return int32(-7)
	case 10:
		return uint(3)
	case 11:
		return map[string]string{"a": "x"}
	case 12:
		return float64(r.IntN(300))
	case 13, 14:
		m := map[string]any{}
		for i := r.IntN(4); i >= 0; i-- {
			m[genKeys[r.IntN(len(genKeys))]] = genValue(r, depth-1)
		}
		return m
	}
	l := make([]any, r.IntN(4))
	for i := range l {
		l[i] = genValue(r, depth-1)
	}
	return l
}

func genEnv(r *rand.Rand) (fastpath.Env, map[string]string) {
	env, vals := baseEnv()
	env.Input = genValue(r, 3)
	if r.IntN(4) > 0 {
		m := map[string]any{}
		for i := r.IntN(5); i >= 0; i-- {
			m[genKeys[r.IntN(len(genKeys))]] = genValue(r, 3)
		}
		env.Input = m
	}
	env.Steps = map[string]any{"call": map[string]any{"output": genValue(r, 3)}}
	if r.IntN(5) == 0 {
		env.Steps = nil
	}
	if r.IntN(5) == 0 {
		env.Vars = nil
	}
	return env, vals
}

func FuzzFastPathParity(f *testing.F) {
	f.Add(uint64(1), uint64(2), "")
	f.Add(uint64(3), uint64(4), "`Bearer ${secrets.API_TOKEN}`")
	f.Add(uint64(5), uint64(6), "({\"Authorization\": `Bearer ${secrets.API_TOKEN}`, n: input.n})")
	f.Add(uint64(7), uint64(8), "steps.call.output.status == 200 && !input.flag")
	f.Add(uint64(9), uint64(10), "input.s + input.a")
	f.Add(uint64(11), uint64(12), "input.list[1] < 'é'")
	f.Fuzz(func(t *testing.T, exprSeed, envSeed uint64, src string) {
		r := rand.New(rand.NewPCG(exprSeed, envSeed))
		if src == "" {
			src = genExpr(r, 3)
		}
		env, vals := genEnv(r)
		check(t, src, env, vals, 1<<20)
	})
}

// TestGeneratedParity runs the fuzz generators for a fixed number of seeds
// in every `go test`, so that parity is checked without -fuzz too.
func TestGeneratedParity(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	taken := 0
	for i := 0; i < n; i++ {
		r := rand.New(rand.NewPCG(uint64(i), uint64(i)*7919))
		src := genExpr(r, 3)
		env, vals := genEnv(r)
		if check(t, src, env, vals, 1<<20) {
			taken++
		}
	}
	t.Logf("fast path took %d of %d generated evaluations", taken, n)
	if taken < n/20 {
		t.Errorf("the generator exercises the fast path too rarely: %d of %d", taken, n)
	}
}
