package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSecrets is a Resolver over a map; it counts resolutions.
type fakeSecrets struct {
	mu       sync.Mutex
	values   map[string]string // name -> value in the run's scope
	scoped   map[Scope]map[string]string
	resolved []string
	run      Scope
}

func newFakeSecrets(kv ...string) *fakeSecrets {
	f := &fakeSecrets{values: map[string]string{}, scoped: map[Scope]map[string]string{}, run: Scope{Project: "billing", Environment: "development"}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.values[kv[i]] = kv[i+1]
	}
	return f
}

func (f *fakeSecrets) Resolve(ctx context.Context, name string, scope Scope) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resolved = append(f.resolved, name)
	values := f.values
	sc := f.run
	if scope != (Scope{}) {
		if scope.Project != "" {
			sc.Project = scope.Project
		}
		if scope.Environment != "" {
			sc.Environment = scope.Environment
		}
		values = f.scoped[sc]
	}
	v, ok := values[name]
	if !ok {
		return "", fmt.Errorf("secret %q is not defined in project %s, environment %s: %w", name, sc.Project, sc.Environment, ErrUnknownSecret)
	}
	return v, nil
}

func (f *fakeSecrets) Names(ctx context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for k := range f.values {
		names = append(names, k)
	}
	slices.Sort(names)
	return names, nil
}

func (f *fakeSecrets) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.resolved)
}

const (
	anthropicKey = "sk-ant-api03-canary&<>\"%\\"
	apiToken     = "tok_9f8e7d6c5b4a"
)

func testEnv() (*Env, *fakeSecrets, *[]LogRecord, *[]string) {
	sec := newFakeSecrets("ANTHROPIC_API_KEY", anthropicKey, "API_TOKEN", apiToken, "DEMO_BOT_SLACK_BOT_TOKEN", "xoxb-1")
	sec.scoped[Scope{Project: "billing", Environment: "production"}] = map[string]string{"MY_CREDENTIAL": "prod-cred"}
	var logs []LogRecord
	var reads []string
	env := &Env{
		Secrets: sec,
		Input:   map[string]any{"text": "hello", "n": int64(3), "items": []any{map[string]any{"name": "a"}, map[string]any{"name": "b"}}},
		Steps: map[string]any{"call": map[string]any{"output": map[string]any{
			"status": float64(200), "body": map[string]any{"id": "msg_1"}}}},
		Run:  RunInfo{ID: "run_1", Flow: "notify", Project: "billing", Environment: "development", Block: "call"},
		Vars: map[string]string{"API_BASE": "https://api.example.com"},
		OnSecret: func(name string, scope Scope, value string) {
			reads = append(reads, name)
		},
		OnLog: func(r LogRecord) { logs = append(logs, r) },
	}
	return env, sec, &logs, &reads
}

func run(t *testing.T, kind Kind, src string, opts ...Option) (any, error) {
	t.Helper()
	env, _, _, _ := testEnv()
	p, err := testEngine.Compile(kind, src, opts...)
	if err != nil {
		return nil, err
	}
	return p.Run(context.Background(), env)
}

func TestSeedExpressions(t *testing.T) {
	tests := []struct {
		name, src string
		want      any
	}{
		{"secret", `secrets.ANTHROPIC_API_KEY`, anthropicKey},
		{"secret bracket", `secrets["API_TOKEN"]`, apiToken},
		{"bearer template", "`Bearer ${secrets.ANTHROPIC_API_KEY}`", "Bearer " + anthropicKey},
		{"header object bare", "{\"Authorization\": `Bearer ${secrets.ANTHROPIC_API_KEY}`}", map[string]any{"Authorization": "Bearer " + anthropicKey}},
		{"header object parens", "({\"Authorization\": `Bearer ${secrets.API_TOKEN}`})", map[string]any{"Authorization": "Bearer " + apiToken}},
		{"url token", "`https://api.example.com/data?token=${secrets.API_TOKEN}`", "https://api.example.com/data?token=" + apiToken},
		{"slack token", `secrets.DEMO_BOT_SLACK_BOT_TOKEN`, "xoxb-1"},
		{"string literal", `'POST'`, "POST"},
		{"input", `input.text`, "hello"},
		{"input int", `input.n`, int64(3)},
		{"input array", `input.items[1].name`, "b"},
		{"input object", `({text: input.text})`, map[string]any{"text": "hello"}},
		{"steps status", `steps.call.output.status == 200`, true},
		{"steps body", `steps.call.output.body`, map[string]any{"id": "msg_1"}},
		{"run", `run.project + "/" + run.environment`, "billing/development"},
		{"env", "`${env.API_BASE}/messages`", "https://api.example.com/messages"},
		{"encode", `encodeURIComponent(input.text + " w")`, "hello%20w"},
		{"json", `JSON.stringify({a: input.n})`, `{"a":3}`},
		{"optional", `input.missing?.x ?? "none"`, "none"},
		{"array", `[1, 2.5, "x", null, true]`, []any{int64(1), 2.5, "x", nil, true}},
		{"comment at end", "input.text // the text", "hello"},
	}
	for _, tt := range tests {
		for _, mode := range []string{"compiled", "in-process"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				var opts []Option
				if mode == "in-process" {
					opts = append(opts, WithInProcess())
				}
				got, err := run(t, Field, tt.src, opts...)
				if err != nil {
					t.Fatalf("Run(%q): %v", tt.src, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Run(%q) = %#v, want %#v", tt.src, got, tt.want)
				}
			})
		}
	}
}

func TestCodeBlocks(t *testing.T) {
	tests := []struct {
		name, src string
		want      any
		logs      []LogRecord
	}{
		{"secrets.get", `return await secrets.get("MY_CREDENTIAL", {environment: "production"})`, "prod-cred", nil},
		{"await chain", "const a = await Promise.resolve(input.text);\nconst b = await (async () => a + '!')();\nreturn b", "hello!", nil},
		{"no return", `let x = 1`, nil, nil},
		{"steps", `return {status: steps.call.output.status, id: steps.call.output.body.id}`, map[string]any{"status": int64(200), "id": "msg_1"}, nil},
		{"console", "console.log('sent', steps.call.output.body.id, {a: 1});\nconsole.info(1);console.warn('w');console.error(new Error('e').message);console.debug([1]);return 1", int64(1),
			[]LogRecord{{"log", `sent msg_1 {"a":1}`}, {"info", "1"}, {"warn", "w"}, {"error", "e"}, {"debug", "[1]"}}},
		{"loop", "let s = 0; for (const it of input.items) s += it.name.length; return s", int64(2), nil},
		{"keys", `return Object.keys(secrets)`, []any{"ANTHROPIC_API_KEY", "API_TOKEN", "DEMO_BOT_SLACK_BOT_TOKEN"}, nil},
		{"mask", `return secrets.mask("runtime-token")`, "runtime-token", nil},
		{"btoa", `return btoa("user:" + secrets.API_TOKEN)`, "dXNlcjp0b2tfOWY4ZTdkNmM1YjRh", nil},
		{"atob", `return atob(btoa("héllo"))`, "héllo", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, logs, _ := testEnv()
			var masks []string
			env.OnMask = func(v string) { masks = append(masks, v) }
			p, err := testEngine.Compile(Code, tt.src, WithInProcess())
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Run(context.Background(), env)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
			if tt.logs != nil && !reflect.DeepEqual(*logs, tt.logs) {
				t.Fatalf("logs = %q, want %q", *logs, tt.logs)
			}
			if tt.name == "mask" && !slices.Equal(masks, []string{"runtime-token"}) {
				t.Fatalf("masks = %q", masks)
			}
		})
	}
}

func TestJSONConversion(t *testing.T) {
	ok := []struct {
		src  string
		want any
	}{
		{`null`, nil},
		{`true`, true},
		{`42`, int64(42)},
		{`-0.5`, -0.5},
		{`2**53`, int64(1 << 53)},
		{`1e300`, 1e300},
		{`"s"`, "s"},
		{`[]`, []any{}},
		{`({})`, map[string]any{}},
		{`({a: {b: [1, {c: null}]}})`, map[string]any{"a": map[string]any{"b": []any{int64(1), map[string]any{"c": nil}}}}},
		{`new Date(0)`, "1970-01-01T00:00:00.000Z"},
		{`new String("x")`, "x"},
		{`new Number(2)`, int64(2)},
		{`input.items`, []any{map[string]any{"name": "a"}, map[string]any{"name": "b"}}},
		{`env`, map[string]any{"API_BASE": "https://api.example.com"}},
	}
	for _, tt := range ok {
		t.Run(tt.src, func(t *testing.T) {
			got, err := run(t, Field, tt.src, WithInProcess())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	bad := []struct{ src, msg string }{
		{`undefined`, "the result is undefined"},
		{`input.missing`, "the result is undefined"},
		{`({a: undefined})`, "result.a is undefined"},
		{`(() => 1)`, "is a function"},
		{`Symbol("s")`, "Symbol"},
		{`10n`, "BigInt"},
		{`(() => { const a = {}; a.self = a; return a })()`, "result.self contains a cycle"},
		{`NaN`, "NaN"},
		{`new Map()`, "Map"},
		{`Promise.resolve(1)`, "Promise"},
		{`"x".repeat(2 << 20)`, "output limit"},
		{`[/re/]`, "RegExp"},
	}
	for _, tt := range bad {
		t.Run(tt.src, func(t *testing.T) {
			// A deadline far off: building a 4 MiB string under the race
			// detector on a loaded machine took over the default 1s; what
			// is tested is the kind of error, not the time.
			_, err := run(t, Field, tt.src, WithInProcess(), WithTimeout(30*time.Second))
			if !errors.Is(err, ErrOutput) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want ErrOutput with %q", err, tt.msg)
			}
		})
	}
}

func TestSecretsLazy(t *testing.T) {
	sec := newFakeSecrets()
	for i := range 100 {
		sec.values[fmt.Sprintf("KEY_%02d", i)] = fmt.Sprintf("value-%02d", i)
	}
	var reads []string
	env := &Env{Secrets: sec, OnSecret: func(name string, _ Scope, _ string) { reads = append(reads, name) }}
	for _, src := range []string{"`x${secrets.KEY_42}`", "secrets.KEY_42 + secrets.KEY_42"} {
		p, err := testEngine.Compile(Field, src)
		if err != nil {
			t.Fatal(err)
		}
		sec.resolved, reads = nil, nil
		if _, err := p.Run(context.Background(), env); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sec.resolved, []string{"KEY_42"}) || !slices.Equal(reads, []string{"KEY_42"}) {
			t.Fatalf("%s: resolved %q, reported %q; want exactly KEY_42", src, sec.resolved, reads)
		}
	}
	// Listing names resolves nothing.
	sec.resolved = nil
	p, _ := testEngine.Compile(Code, `return Object.keys(secrets).length`, WithInProcess())
	got, err := p.Run(context.Background(), env)
	if err != nil || got != int64(100) || sec.count() != 0 {
		t.Fatalf("Object.keys: %v %v, resolved %d", got, err, sec.count())
	}
}

func TestSecretReportedBeforeUse(t *testing.T) {
	env, _, logs, _ := testEnv()
	var order []string
	env.OnSecret = func(name string, _ Scope, _ string) { order = append(order, "secret "+name) }
	env.OnLog = func(r LogRecord) { order = append(order, "log "+r.Message) }
	p, _ := testEngine.Compile(Code, `console.log("before"); const v = secrets.API_TOKEN; console.log("after"); return v.length`, WithInProcess())
	if _, err := p.Run(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	_ = logs
	if !slices.Equal(order, []string{"log before", "secret API_TOKEN", "log after"}) {
		t.Fatalf("order = %q", order)
	}
}

func TestUnknownSecret(t *testing.T) {
	for _, src := range []string{`secrets.NOPE`, "`Bearer ${secrets.NOPE}`"} {
		_, err := run(t, Field, src)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrUnknownSecret) {
			t.Fatalf("%s: err = %v, want *Error wrapping ErrUnknownSecret", src, err)
		}
		if !strings.Contains(e.Message, `secret "NOPE" is not defined in project billing, environment development`) || e.Block != "call" {
			t.Fatalf("%s: error %q does not name the key and scope", src, e)
		}
	}
	// In code, through secrets.get with an explicit scope.
	_, err := run(t, Code, `return await secrets.get("NOPE", {environment: "production"})`, WithInProcess())
	if !errors.Is(err, ErrUnknownSecret) || !strings.Contains(err.Error(), "environment production") || !strings.Contains(err.Error(), " 1:") {
		t.Fatalf("err = %v", err)
	}
	// Caught by the script, it is an ordinary Error.
	got, err := run(t, Code, `try { return secrets.NOPE } catch (e) { return e.message }`, WithInProcess())
	if err != nil || !strings.Contains(got.(string), `"NOPE"`) {
		t.Fatalf("caught: %v %v", got, err)
	}
}

func TestSecretsReadOnly(t *testing.T) {
	for _, src := range []string{`secrets.API_TOKEN = 'x'`, `delete secrets.API_TOKEN`, `secrets.NEW = 1`, `Object.defineProperty(secrets, 'API_TOKEN', {value: 'x'})`} {
		t.Run(src, func(t *testing.T) {
			code := "try { " + src + " } catch (e) {}\nreturn [secrets.API_TOKEN, Object.keys(secrets).includes('NEW')]"
			got, err := run(t, Code, code, WithInProcess())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, []any{apiToken, false}) {
				t.Fatalf("got %v", got)
			}
			// Uncaught, the write is an error (strict mode).
			if _, err := run(t, Code, src, WithInProcess()); !errors.Is(err, ErrException) {
				t.Fatalf("uncaught write: err = %v", err)
			}
		})
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		kind       Kind
		src        string
		line, col  int
		msg        string
		snippetHas string
	}{
		{Field, "input.(", 1, 7, "Unexpected", "input.("},
		{Field, "`Bearer ${secrets.X`", 1, 0, "", "Bearer"},
		{Field, "1); while(true){}; (1", 1, 0, "single expression", ""},
		{Field, "input.a;\ninput.b", 1, 0, "", ""},
		{Code, "let x = 1;\nlet y = ;", 2, 9, "Unexpected", "let y = ;"},
		{Code, "}); while(true){}; (function(){", 1, 0, "", ""},
		{Code, "let a = 1;\nlet a = 2;", 2, 0, "already been declared", ""},
		{Code, "return (", 1, 0, "", ""},
		{Field, "(1 +", 1, 5, "Unexpected end of input", "(1 +"},
		{Field, "secrets.", 1, 9, "Unexpected end of input", "secrets."},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := testEngine.Compile(tt.kind, tt.src, WithField("url"))
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrSyntax) {
				t.Fatalf("err = %v, want a syntax *Error", err)
			}
			if e.Line != tt.line || (tt.col != 0 && e.Column != tt.col) || e.Column < 1 {
				t.Fatalf("position %d:%d, want %d:%d (%v)", e.Line, e.Column, tt.line, tt.col, e)
			}
			if !strings.Contains(e.Message, tt.msg) || !strings.Contains(e.Snippet, tt.snippetHas) || e.Field != "url" {
				t.Fatalf("error %+v", e)
			}
		})
	}
}

func TestRuntimeErrors(t *testing.T) {
	env, _, _, _ := testEnv()
	p, err := testEngine.Compile(Field, "input.text +\n  input.nope.deeper", WithField("body"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(context.Background(), env)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrException) {
		t.Fatalf("err = %v", err)
	}
	if e.Block != "call" || e.Field != "body" || e.Line != 2 || !strings.Contains(e.Message, "TypeError") || e.Snippet != "  input.nope.deeper" {
		t.Fatalf("error %+v", e)
	}
	if got := e.Error(); !strings.HasPrefix(got, `block "call" field "body" 2:`) {
		t.Fatalf("Error() = %q", got)
	}
	r := e.Redacted(func(s string) string { return strings.ReplaceAll(s, "nope", "****") })
	if strings.Contains(r.Message+r.Snippet+r.Stack, "nope") || !errors.Is(r, ErrException) {
		t.Fatalf("redacted %+v", r)
	}

	// A thrown Error in a code block keeps its stack, in user positions.
	p, _ = testEngine.Compile(Code, "function f() {\n  throw new Error('boom')\n}\nf()", WithInProcess())
	_, err = p.Run(context.Background(), env)
	if !errors.As(err, &e) || e.Line != 2 || e.Message != "Error: boom" || !strings.Contains(e.Stack, "block:2:") || !strings.Contains(e.Stack, "block:4:") {
		t.Fatalf("code error %+v", e)
	}
	// Throwing a non-Error.
	_, err = run(t, Code, `throw "plain"`, WithInProcess())
	if !errors.As(err, &e) || !strings.Contains(e.Message, "plain") {
		t.Fatalf("throw string: %v", err)
	}
}

func TestSourceLimit(t *testing.T) {
	_, err := testEngine.Compile(Field, strings.Repeat("1+", 40<<10)+"1")
	if !errors.Is(err, ErrSourceTooLarge) {
		t.Fatalf("err = %v", err)
	}
	_, err = testEngine.Compile(Field, "'"+strings.Repeat("a", 100)+"'", WithMaxSource(50))
	if !errors.Is(err, ErrSourceTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestBoundedAnalysis(t *testing.T) {
	tests := []struct {
		src     string
		bounded bool
	}{
		{`secrets.A`, true},
		{"`Bearer ${secrets.A}`", true},
		{`{"a": [1, input.b, ...steps.x.output]}`, true},
		{`input.a?.b ?? "x"`, true},
		{`encodeURIComponent(input.q)`, true},
		{`JSON.stringify(input)`, true},
		{`input.s.toUpperCase().trim()`, true},
		{`Math.max(1, input.n)`, true},
		{`typeof input.x === "string" ? 1 : 2`, true},
		{`JSON.stringify(input, null, 10)`, false},
		{`JSON.parse(input.s)`, false},
		{`'x'.repeat(2**30)`, false},
		{`input.a = 1`, false},
		{`(input = input + input, input)`, false},
		{`input.n++`, false},
		{`delete input.a`, false},
		{`(() => 1)()`, false},
		{`/a/.test(input.s)`, false},
		{`new Array(10)`, false},
		{`this.constructor`, false},
		{`console.log(1)`, false},
		{`globalThis`, false},
		{`input.arr.join(input.sep)`, false},
		{`input.a[input.f]()`, false},
		{"String.raw`x`", false},
		{`({get a() { return 1 }})`, false},
		{`[` + strings.Repeat("input,", 40) + `]`, false},
	}
	for _, tt := range tests {
		p, err := testEngine.Compile(Field, tt.src)
		if err != nil {
			t.Fatalf("%s: %v", tt.src, err)
		}
		isolated, why := p.Isolated()
		if isolated == tt.bounded {
			t.Errorf("%s: isolated = %v (%s), want %v", tt.src, isolated, why, !tt.bounded)
		}
	}
	if p, _ := testEngine.Compile(Code, `return 1`); func() bool { i, _ := p.Isolated(); return !i }() {
		t.Error("code blocks must be isolated")
	}
}

func TestNoSandboxConfigured(t *testing.T) {
	_, err := run(t, Code, `return 1`)
	if !errors.Is(err, ErrSandbox) || !strings.Contains(err.Error(), "no sandbox") {
		t.Fatalf("err = %v", err)
	}
}

func TestInProcessLimits(t *testing.T) {
	tests := []struct {
		name, src string
		want      error
	}{
		{"loop", `while(true){}`, ErrTimeout},
		{"loop in try", `try { while(true){} } catch (e) {} return 1`, ErrTimeout},
		{"loop in finally", `try { while(true){} } finally { return 1 }`, ErrTimeout},
		{"recursion", `function f(n) { return f(n+1) + 1 } return f(0)`, ErrStackOverflow},
		{"recursion caught", `function f(n) { return f(n+1) + 1 } try { return f(0) } catch (e) { return 'caught' }`, ErrStackOverflow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := run(t, Code, tt.src, WithInProcess(), WithTimeout(50*time.Millisecond))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	p, _ := testEngine.Compile(Code, `while(true){}`, WithInProcess())
	if _, err := p.Run(ctx, nil); !errors.Is(err, ErrCanceled) {
		t.Fatalf("canceled: err = %v", err)
	}
}

func TestIsolationBetweenRuns(t *testing.T) {
	tests := []struct{ first, second string }{
		{`Object.prototype.polluted = 'yes'; return 1`, `return ({}).polluted === undefined && [].polluted === undefined`},
		{`Array.prototype.push = null; return 1`, `const a = []; a.push(1); return a.length === 1`},
		{`globalThis.leak = secrets.API_TOKEN; return 1`, `return typeof leak === 'undefined'`},
		{`JSON.stringify = () => 'x'; return 1`, `return JSON.stringify(1) === '1'`},
	}
	for _, tt := range tests {
		if _, err := run(t, Code, tt.first, WithInProcess()); err != nil {
			t.Fatal(err)
		}
		got, err := run(t, Code, tt.second, WithInProcess())
		if err != nil || got != true {
			t.Fatalf("%s then %s: %v %v", tt.first, tt.second, got, err)
		}
	}
}

func TestNoHostAccess(t *testing.T) {
	for _, src := range []string{
		`return this.constructor.constructor('return process')()`,
		`return require('fs')`,
		`return process.env`,
		`return Function('return process')()`,
		`return typeof Function('return this')().secrets === 'undefined' ? undefined.x : 1`,
	} {
		_, err := run(t, Code, src, WithInProcess())
		if !errors.Is(err, ErrException) {
			t.Errorf("%s: err = %v, want a script error", src, err)
		}
	}
}

func TestCache(t *testing.T) {
	l := newProgramCache(2, 1<<20)
	a := l.add(&compiled{kind: Field, src: "a"})
	l.add(&compiled{kind: Field, src: "b"})
	if l.get(Field, "a") != a {
		t.Fatal("a missing")
	}
	l.add(&compiled{kind: Field, src: "c"}) // evicts b, the least recent
	if l.get(Field, "b") != nil || l.get(Field, "a") == nil || l.get(Field, "c") == nil {
		t.Fatal("wrong eviction")
	}
	l = newProgramCache(10, 3)
	l.add(&compiled{kind: Field, src: "aa"})
	l.add(&compiled{kind: Field, src: "bb"})
	if l.get(Field, "aa") != nil || l.bytes.Load() != 2 {
		t.Fatalf("byte bound: %d", l.bytes.Load())
	}
	p1, _ := testEngine.Compile(Field, `input.cached`)
	p2, _ := testEngine.Compile(Field, `input.cached`, WithField("other"))
	if p1.c != p2.c {
		t.Fatal("same source compiled twice")
	}
}

func TestConcurrentRuns(t *testing.T) {
	p, err := testEngine.Compile(Field, "`Bearer ${secrets.API_TOKEN} ${input.text}`")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				env, _, _, _ := testEnv()
				got, err := p.Run(context.Background(), env)
				if err != nil || got != "Bearer "+apiToken+" hello" {
					t.Errorf("got %v %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func ExampleEngine_Compile() {
	p, err := testEngine.Compile(Field, "{\"Authorization\": `Bearer ${secrets.API_TOKEN}`}")
	if err != nil {
		panic(err)
	}
	env := &Env{Secrets: newFakeSecrets("API_TOKEN", "t0k")}
	out, err := p.Run(context.Background(), env)
	fmt.Println(out, err)
	// Output: map[Authorization:Bearer t0k] <nil>
}
