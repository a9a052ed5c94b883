package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hushflow/hushflow/engine/jsvm"
)

// TestMain doubles as the worker: the pool re-executes this test binary.
func TestMain(m *testing.M) {
	if os.Getenv(EnvWorker) == "1" {
		os.Exit(WorkerMain())
	}
	os.Exit(m.Run())
}

const testMemory = 256 << 20

var (
	poolOnce sync.Once
	pool     *Pool
	poolErr  error
)

func testPool(t testing.TB) *Pool {
	t.Helper()
	poolOnce.Do(func() {
		pool, poolErr = New(Config{Path: os.Args[0], Workers: 2, MemoryLimit: testMemory, Grace: 200 * time.Millisecond})
	})
	if poolErr != nil {
		t.Fatal(poolErr)
	}
	return pool
}

// host is a jsvm.Host over a map.
type host struct {
	mu       sync.Mutex
	secrets  map[string]string
	resolved []string
	logs     []string
	masks    []string
}

func newHost() *host {
	return &host{secrets: map[string]string{"API_TOKEN": "tok_123", "MY_CREDENTIAL@production": "prod"}}
}

func (h *host) Resolve(name string, scope jsvm.Scope) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.resolved = append(h.resolved, name)
	key := name
	if scope.Environment != "" {
		key += "@" + scope.Environment
	}
	v, ok := h.secrets[key]
	if !ok {
		env := scope.Environment
		if env == "" {
			env = "development"
		}
		return "", fmt.Errorf("secret %q is not defined in project billing, environment %s", name, env)
	}
	return v, nil
}

func (h *host) Names() ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for k := range h.secrets {
		if !strings.Contains(k, "@") {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names, nil
}

func (h *host) Mask(v string) { h.mu.Lock(); h.masks = append(h.masks, v); h.mu.Unlock() }
func (h *host) Log(level, msg string) {
	h.mu.Lock()
	h.logs = append(h.logs, level+": "+msg)
	h.mu.Unlock()
}

// signalHost is a host that sends the name of every secret it resolves
// to running, so that a test knows a script is running.
type signalHost struct {
	*host
	running chan<- string
}

func (h *signalHost) Resolve(name string, scope jsvm.Scope) (string, error) {
	h.running <- name
	return h.host.Resolve(name, scope)
}

var globals = jsvm.Globals{
	Input: map[string]any{"text": "hello", "items": []any{1, 2, 3}},
	Steps: map[string]any{"call": map[string]any{"output": map[string]any{"status": 200}}},
	Run:   map[string]any{"id": "run_1", "project": "billing"},
	Env:   map[string]string{"API_BASE": "https://api.example.com"},
}

func runCode(t testing.TB, src string, timeout time.Duration) (any, error, *host) {
	t.Helper()
	h := newHost()
	v, err := testPool(t).Run(context.Background(), jsvm.Code, src, globals, h, jsvm.Limits{Timeout: timeout})
	return v, err, h
}

func TestSandboxRun(t *testing.T) {
	tests := []struct {
		name string
		kind jsvm.Kind
		src  string
		want any
	}{
		{"field", jsvm.Field, "`Bearer ${secrets.API_TOKEN}`", "Bearer tok_123"},
		{"field object", jsvm.Field, "{\"Authorization\": `Bearer ${secrets.API_TOKEN}`}", map[string]any{"Authorization": "Bearer tok_123"}},
		{"regexp field", jsvm.Field, `/^hel/.test(input.text)`, true},
		{"secrets.get", jsvm.Code, `return await secrets.get("MY_CREDENTIAL", {environment: "production"})`, "prod"},
		{"globals", jsvm.Code, `return [input.items.length, steps.call.output.status, run.project, env.API_BASE]`, []any{int64(3), int64(200), "billing", "https://api.example.com"}},
		{"keys", jsvm.Code, `return Object.keys(secrets)`, []any{"API_TOKEN"}},
		{"mutation is local", jsvm.Code, `input.items.push(4); return input.items.length`, int64(4)},
		{"numbers", jsvm.Code, `return {i: 1, f: 1.5, big: 2**60, neg: -3}`, map[string]any{"i": int64(1), "f": 1.5, "big": float64(1 << 60), "neg": int64(-3)}},
		{"no return", jsvm.Code, `const x = 1`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost()
			got, err := testPool(t).Run(context.Background(), tt.kind, tt.src, globals, h, jsvm.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestSandboxConsoleAndMask(t *testing.T) {
	got, err, h := runCode(t, "console.log('a', {b: 1}); console.error('e');\nreturn secrets.mask('runtime-' + secrets.API_TOKEN)", time.Second)
	if err != nil || got != "runtime-tok_123" {
		t.Fatalf("got %v %v", got, err)
	}
	if !slices.Equal(h.logs, []string{`log: a {"b":1}`, "error: e"}) || !slices.Equal(h.masks, []string{"runtime-tok_123"}) {
		t.Fatalf("logs %q masks %q", h.logs, h.masks)
	}
}

func TestSandboxLazySecrets(t *testing.T) {
	h := newHost()
	for i := range 100 {
		h.secrets["K"+strconv.Itoa(i)] = "v" + strconv.Itoa(i)
	}
	got, err := testPool(t).Run(context.Background(), jsvm.Code, `return secrets.K42 + secrets.K42`, globals, h, jsvm.Limits{})
	if err != nil || got != "v42v42" || !slices.Equal(h.resolved, []string{"K42"}) {
		t.Fatalf("got %v %v, resolved %q", got, err, h.resolved)
	}
}

func TestSandboxErrors(t *testing.T) {
	_, err, _ := runCode(t, `return secrets.NOPE`, time.Second)
	var e *jsvm.Error
	if !errors.As(err, &e) || e.Code != jsvm.CodeSecret || !strings.Contains(e.Message, `secret "NOPE" is not defined in project billing, environment development`) || e.Err == nil {
		t.Fatalf("unknown secret: %#v", err)
	}
	_, err, _ = runCode(t, "const a = 1;\nnull.x", time.Second)
	if !errors.As(err, &e) || e.Code != jsvm.CodeException || e.Line != 2 || !strings.Contains(e.Stack, "block:2:") {
		t.Fatalf("exception: %#v", err)
	}
	_, err, _ = runCode(t, "return (", time.Second)
	if !errors.As(err, &e) || e.Code != jsvm.CodeSyntax {
		t.Fatalf("syntax: %#v", err)
	}
}

// vmHWM is the peak resident set of this (the server's) process.
func vmHWM(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestSandboxAdversarial is SECURITY.md cases 11-16 through the pool.
func TestSandboxAdversarial(t *testing.T) {
	if testing.Short() {
		t.Skip("adversarial scripts that kill workers: skipped in -short mode")
	}
	p := testPool(t)
	before := vmHWM(t)
	const timeout = 500 * time.Millisecond
	tests := []struct {
		name  string
		src   string
		codes []jsvm.ErrorCode
	}{
		{"case11 while true", `while(true){}`, []jsvm.ErrorCode{jsvm.CodeTimeout}},
		{"case11 while true in try", `try { while(true){} } catch (e) {} return 'swallowed'`, []jsvm.ErrorCode{jsvm.CodeTimeout}},
		{"case13 deep recursion", `function f(n) { return f(n + 1) + 1 } return f(0)`, []jsvm.ErrorCode{jsvm.CodeStackOverflow}},
		{"case12 repeat", `return 'x'.repeat(2**30).length`, []jsvm.ErrorCode{jsvm.CodeMemory, jsvm.CodeException}},
		{"case12 doubling", `let s = 'xy'; for (let i = 0; i < 40; i++) s = s + s; return s.length`, []jsvm.ErrorCode{jsvm.CodeMemory, jsvm.CodeTimeout, jsvm.CodeException}},
		{"case12 array join", `return new Array(2e7).fill('ab').join(',').length`, []jsvm.ErrorCode{jsvm.CodeMemory, jsvm.CodeTimeout}},
		{"case12 backtracking", `return /(a*)*b\1/.test('a'.repeat(28))`, []jsvm.ErrorCode{jsvm.CodeTimeout, jsvm.CodeException}},
		{"case15 write secrets", `secrets.API_TOKEN = 'x'`, []jsvm.ErrorCode{jsvm.CodeException}},
		{"case15 delete secrets", `delete secrets.API_TOKEN`, []jsvm.ErrorCode{jsvm.CodeException}},
		{"case15 add secret", `secrets.NEW = 1`, []jsvm.ErrorCode{jsvm.CodeException}},
		{"host escape", `return this.constructor.constructor('return process')()`, []jsvm.ErrorCode{jsvm.CodeException}},
		{"function escape", `return Function('return process')()`, []jsvm.ErrorCode{jsvm.CodeException}},
		{"require", `return require('fs')`, []jsvm.ErrorCode{jsvm.CodeException}},
		{"case17 cycle", `const a = {}; a.a = a; return a`, []jsvm.ErrorCode{jsvm.CodeOutput}},
		{"case17 deep", `let o = {}; for (let i = 0; i < 1e4; i++) o = {o}; return o`, []jsvm.ErrorCode{jsvm.CodeOutput}},
		{"case17 big", `return 'x'.repeat(2e6)`, []jsvm.ErrorCode{jsvm.CodeOutput}},
		{"never settles", `await new Promise(() => {})`, []jsvm.ErrorCode{jsvm.CodeException}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A case that proves another limit than the deadline gets a
			// deadline a busy machine cannot reach (the 2 MB output once
			// hit 500ms under -race on a loaded machine).
			timeout := timeout
			if !slices.Contains(tt.codes, jsvm.CodeTimeout) {
				timeout = time.Minute
			}
			start := time.Now()
			_, err, _ := runCode(t, tt.src, timeout)
			took := time.Since(start)
			var e *jsvm.Error
			if !errors.As(err, &e) || !slices.Contains(tt.codes, e.Code) {
				t.Fatalf("err = %#v, want one of %v", err, tt.codes)
			}
			t.Logf("%s after %v: %v", e.Code, took.Round(time.Millisecond), e.Message)
			// Within the deadline plus the grace plus slack for a slow,
			// shared machine.
			if took > timeout+p.cfg.Grace+2*time.Second {
				t.Fatalf("took %v", took)
			}
			// The next evaluation is clean.
			got, err, _ := runCode(t, `return [typeof globalThis.polluted, Object.keys(globalThis).length, 1 + 1]`, time.Second)
			if err != nil || !reflect.DeepEqual(got, []any{"undefined", int64(0), int64(2)}) {
				t.Fatalf("next evaluation: %v %v", got, err)
			}
		})
	}
	if grew := vmHWM(t) - before; grew > 200<<20 {
		t.Fatalf("the server's peak memory grew by %d MiB", grew>>20)
	}
}

func TestSandboxSecretsReadOnly(t *testing.T) {
	got, err, _ := runCode(t, `for (const s of ["secrets.API_TOKEN = 'x'", "delete secrets.API_TOKEN", "secrets.NEW = 1"]) { try { Function('secrets', '"use strict";' + s)(secrets) } catch (e) {} }
return [secrets.API_TOKEN, 'NEW' in secrets, Object.keys(secrets)]`, time.Second)
	if err != nil || !reflect.DeepEqual(got, []any{"tok_123", false, []any{"API_TOKEN"}}) {
		t.Fatalf("got %v %v", got, err)
	}
}

func TestSandboxPrototypePollution(t *testing.T) {
	for range 3 { // both workers see a polluter
		if _, err, _ := runCode(t, `Object.prototype.polluted = 'yes'; Array.prototype.map = null; globalThis.leak = secrets.API_TOKEN`, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		got, err, _ := runCode(t, `return [typeof ({}).polluted, typeof [].map, typeof leak]`, time.Second)
		if err != nil || !reflect.DeepEqual(got, []any{"undefined", "function", "undefined"}) {
			t.Fatalf("got %v %v", got, err)
		}
	}
}

func TestSandboxNoHostGlobals(t *testing.T) {
	got, err, _ := runCode(t, `const g = Function('return this')(); return Object.getOwnPropertyNames(g).filter(n => !/^[A-Z]|^(globalThis|escape|unescape|eval|isNaN|isFinite|parseInt|parseFloat|decodeURI|decodeURIComponent|encodeURI|encodeURIComponent|undefined|NaN|Infinity)$/.test(n))`, time.Second)
	if err != nil || !reflect.DeepEqual(got, []any{}) {
		t.Fatalf("unexpected globals: %v %v", got, err)
	}
}

// TestSandboxBombDoesNotStarveOthers runs a memory bomb and an endless
// builtin while trivial evaluations go on.
func TestSandboxBombDoesNotStarveOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("memory bombs in three new workers: skipped in -short mode")
	}
	p, err := New(Config{Path: os.Args[0], Workers: 3, MemoryLimit: testMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	started := p.Started()
	// Each bomb reads a secret first: the host hears of it once the bomb
	// runs in a worker.
	running := make(chan string, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := p.Run(context.Background(), jsvm.Code, `secrets.API_TOKEN; let s = 'xy'; for (let i = 0; i < 40; i++) s = s + s; return s.length`, globals, &signalHost{newHost(), running}, jsvm.Limits{Timeout: 2 * time.Second})
		if err == nil {
			t.Error("bomb succeeded")
		}
	})
	wg.Go(func() {
		_, err := p.Run(context.Background(), jsvm.Code, `secrets.API_TOKEN; return new Array(2e7).fill('ab').join(',').length`, globals, &signalHost{newHost(), running}, jsvm.Limits{Timeout: 2 * time.Second})
		if err == nil {
			t.Log("array join finished within the limits")
		}
	})
	for range 2 {
		select {
		case <-running:
		case <-time.After(30 * time.Second):
			t.Fatal("the bombs did not start")
		}
	}
	var slowest time.Duration
	for range 50 {
		start := time.Now()
		got, err := p.Run(context.Background(), jsvm.Code, `return input.text`, globals, newHost(), jsvm.Limits{})
		if err != nil || got != "hello" {
			t.Fatalf("trivial: %v %v", got, err)
		}
		slowest = max(slowest, time.Since(start))
	}
	wg.Wait()
	t.Logf("slowest trivial evaluation next to the bombs: %v; workers started %d", slowest, p.Started()-started)
	if slowest > time.Second {
		t.Fatalf("a trivial evaluation took %v next to the bombs", slowest)
	}
	// The pool replaced what died and still has all its workers.
	for range 3 {
		if _, err := p.Run(context.Background(), jsvm.Field, `1`, globals, nil, jsvm.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSandboxCancel(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := testPool(t).Run(ctx, jsvm.Code, `return new Array(3e7).fill('ab').join(',').length`, globals, nil, jsvm.Limits{Timeout: 10 * time.Second})
	var e *jsvm.Error
	if !errors.As(err, &e) || e.Code != jsvm.CodeCanceled || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func BenchmarkSandboxTrivialCode(b *testing.B) {
	p := testPool(b)
	h := newHost()
	g := jsvm.Globals{Input: map[string]any{"text": "hello"}}
	b.ResetTimer()
	for b.Loop() {
		if _, err := p.Run(context.Background(), jsvm.Code, `return input.text`, g, h, jsvm.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSandboxFieldWithCall(b *testing.B) {
	p := testPool(b)
	h := newHost()
	g := jsvm.Globals{Input: map[string]any{"text": "hello"}}
	for b.Loop() {
		if _, err := p.Run(context.Background(), jsvm.Field, "`Bearer ${secrets.API_TOKEN}`.split(' ')[1]", g, h, jsvm.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInProcessTrivialCode(b *testing.B) {
	s, err := jsvm.Compile(jsvm.Code, `return input.text`)
	if err != nil {
		b.Fatal(err)
	}
	h := newHost()
	g := jsvm.Globals{Input: map[string]any{"text": "hello"}}
	for b.Loop() {
		if _, err := s.Run(context.Background(), g, h, jsvm.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWorkerPreparesRecentScripts: the worker instantiates, in the next
// runtime, the wrapper functions of its last maxPreparedScripts distinct
// scripts, the latest first, and nothing in the runtime an evaluation takes.
func TestWorkerPreparesRecentScripts(t *testing.T) {
	w := &workerState{scripts: map[scriptKey]*jsvm.Script{}}
	var ss []*jsvm.Script
	for i := range maxPreparedScripts + 2 {
		s, err := jsvm.Compile(jsvm.Code, fmt.Sprintf("return %d", i))
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	for _, s := range ss {
		w.ran(s)
	}
	w.ran(ss[3]) // again: moves first, evicts nothing
	want := []*jsvm.Script{ss[3], ss[5], ss[4], ss[2]}
	if !slices.Equal(w.recent, want) {
		t.Fatalf("recent = %v, want %v", w.recent, want)
	}
	w.prepare()
	rt := w.runtime()
	for i, s := range ss {
		if got := rt.Prepared(s); got != slices.Contains(want, s) {
			t.Errorf("script %d prepared = %v", i, got)
		}
	}
	if w.next != nil {
		t.Fatal("the runtime was not handed over")
	}
	// Without a prepared runtime, the evaluation gets a fresh one with
	// nothing instantiated (no work on the request's path).
	if rt := w.runtime(); rt == nil || rt.Prepared(ss[3]) {
		t.Fatal("runtime() on the request's path prepared scripts")
	}
}

// TestSandboxPreparedScripts runs scripts through the workers in an order
// that makes them hit and miss the prepared functions: every result is
// right, and no evaluation sees what another changed.
func TestSandboxPreparedScripts(t *testing.T) {
	p := testPool(t)
	polluter := `const seen = [typeof globalThis.count, typeof ({}).polluted, typeof [].map, JSON.stringify({a: input.n})];
globalThis.count = 1; Object.prototype.polluted = 1; Array.prototype.map = null; JSON.stringify = () => 'owned';
Object.defineProperty(Object.prototype, 'sticky', {value: 1, writable: false, configurable: false});
return seen`
	observer := `return [typeof count, typeof ({}).polluted, typeof ({}).sticky, typeof [].map, input.n]`
	for i := range 40 {
		g := jsvm.Globals{Input: map[string]any{"n": i}}
		var src string
		var want any
		switch {
		case i%5 == 4: // a script seen once: never prepared
			src, want = fmt.Sprintf("return input.n + %d", i), float64(2*i)
		case i%2 == 0:
			src, want = polluter, []any{"undefined", "undefined", "function", fmt.Sprintf(`{"a":%d}`, i)}
		default:
			src, want = observer, []any{"undefined", "undefined", "undefined", "function", float64(i)}
		}
		got, err := p.Run(context.Background(), jsvm.Code, src, g, newHost(), jsvm.Limits{Timeout: time.Second})
		if n, ok := got.(int64); ok {
			got = float64(n)
		}
		if arr, ok := got.([]any); ok {
			for j, v := range arr {
				if n, ok := v.(int64); ok {
					arr[j] = float64(n)
				}
			}
		}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("evaluation %d (%.20q): got %#v %v, want %#v", i, src, got, err, want)
		}
	}
}

// A stop signal sent to every process of the server (systemd's
// KillMode=control-group, Ctrl-C in a terminal) does not end its workers,
// which the server stops itself once its runs have drained; a worker that
// died while idle is replaced, not handed out; and a script whose worker
// was killed by a signal the pool did not send (the kernel's OOM killer,
// an operator) is evaluated again in another worker.
func TestWorkersOutliveSignalsAndDeaths(t *testing.T) {
	p, err := New(Config{Path: os.Args[0], Workers: 2, MemoryLimit: testMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	each := func(sig syscall.Signal) {
		p.mu.Lock()
		defer p.mu.Unlock()
		for w := range p.all {
			_ = w.cmd.Process.Signal(sig)
		}
	}
	run := func(h jsvm.Host, src string) (any, error) {
		return p.Run(context.Background(), jsvm.Code, src, globals, h, jsvm.Limits{Timeout: 10 * time.Second})
	}
	started := p.Started()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		each(sig)
	}
	for range 4 {
		if v, err := run(newHost(), "return 1 + 1"); err != nil || v != int64(2) {
			t.Fatalf("after stop signals: %v, %v", v, err)
		}
	}
	if p.Started() != started {
		t.Fatalf("stop signals ended workers: %d started, %d before", p.Started(), started)
	}

	// Dead while idle: never handed out.
	p.mu.Lock()
	var dead []*worker
	for w := range p.all {
		dead = append(dead, w)
	}
	p.mu.Unlock()
	each(syscall.SIGKILL)
	for _, w := range dead {
		<-w.done
	}
	for range 4 {
		if v, err := run(newHost(), "return 'alive'"); err != nil || v != "alive" {
			t.Fatalf("after idle workers died: %v, %v", v, err)
		}
	}

	// Killed while it runs the script, with the other worker: run again
	// in a fresh one (the other, killed too, never ran it).
	running := make(chan string, 2)
	h := &signalHost{host: newHost(), running: running}
	done := make(chan error, 1)
	go func() {
		v, err := run(h, "const t = secrets.API_TOKEN\nconst s = Date.now()\nwhile (Date.now() - s < 300) {}\nreturn t")
		if err == nil && v != "tok_123" {
			err = fmt.Errorf("result %v", v)
		}
		done <- err
	}()
	<-running
	each(syscall.SIGKILL)
	if err := <-done; err != nil {
		t.Fatalf("a script whose worker was killed: %v", err)
	}
	if len(running) != 1 {
		t.Fatalf("the script ran %d more times, want 1", len(running))
	}
	// The pool's own kill (a timeout) is the script's failure: not again.
	if _, err := p.Run(context.Background(), jsvm.Code, "while (true) {}", globals, newHost(), jsvm.Limits{Timeout: 100 * time.Millisecond}); err == nil ||
		!strings.Contains(err.Error(), "deadline") {
		t.Fatalf("an endless script: %v", err)
	}
}

// nested returns a JSON value nested depth levels deep ({"a":{"a":...1}}).
func nested(depth int) json.RawMessage {
	return json.RawMessage(strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth))
}

// nestedMaps returns a Go value nested depth levels deep, which
// json.Marshal encodes whatever its depth.
func nestedMaps(depth int) any {
	var v any = 1
	for range depth {
		v = map[string]any{"a": v}
	}
	return v
}

// Data nested as deep as encoding/json reads (a webhook's body of 10,000
// levels, a service's deep response) failed the worker, which could not
// decode its request and exited: "sandbox worker died (exit status 0)".
// Now a global deeper than MaxDepth fails the evaluation with its name,
// and the worker stays.
func TestSandboxDeepData(t *testing.T) {
	p, err := New(Config{Path: os.Args[0], Workers: 1, MemoryLimit: testMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	started := p.Started()
	depth := `let d = 0; for (let v = input; typeof v === "object"; v = v.a) d++; return d`
	g := globals
	g.Input = nested(MaxDepth)
	if v, err := p.Run(context.Background(), jsvm.Code, depth, g, newHost(), jsvm.Limits{}); err != nil || v != int64(MaxDepth) {
		t.Fatalf("input %d deep: %v %v", MaxDepth, v, err)
	}
	for _, tt := range []struct {
		name string
		g    jsvm.Globals
	}{
		{"input", jsvm.Globals{Input: nested(MaxDepth + 1)}},
		{"steps", jsvm.Globals{Steps: map[string]any{"call": map[string]any{"output": nested(MaxDepth - 1)}}}},
		{"item", jsvm.Globals{Each: &jsvm.Each{Item: nestedMaps(20_000)}}},
	} {
		_, err := p.Run(context.Background(), jsvm.Code, "return 1", tt.g, newHost(), jsvm.Limits{})
		var e *jsvm.Error
		if !errors.As(err, &e) || e.Code != jsvm.CodeInput || e.Message != tt.name+" is nested deeper than 9999 levels, more than a code block takes" {
			t.Errorf("%s too deep: %#v", tt.name, err)
		}
	}
	// Strings count for nothing, whatever brackets they hold.
	g.Input = json.RawMessage(`["` + strings.Repeat(`{[\"`, 20_000) + `"]`)
	if v, err := p.Run(context.Background(), jsvm.Code, "return input[0].length", g, newHost(), jsvm.Limits{}); err != nil || v != int64(60_000) {
		t.Fatalf("brackets in a string: %v %v", v, err)
	}

	// A request that reaches a worker with data too deep (the check
	// above keeps the pool from sending one) fails its evaluation, not
	// the worker: the worker checks the data it is given too.
	w, err := p.take(context.Background(), jsvm.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	req := &message{T: "eval", Kind: jsvm.Code, Src: "return 1", Input: nested(10_000)}
	_, err = p.exchange(w, req, newHost(), jsvm.Limits{})
	var e *jsvm.Error
	if !errors.As(err, &e) || e.Code != jsvm.CodeInput || !strings.Contains(e.Message, "input is nested deeper than") {
		t.Fatalf("a request with data too deep: %#v", err)
	}
	// And so does a frame that does not decode: its fields cut short, or
	// its data.
	for _, frame := range [][]byte{
		{0, 0, 0, 7, 0, 0, 0, 3, '{', '"', 't'},
		{0, 0, 0, 6, 0, 0, 0, 2, '{', '}'},
	} {
		if _, err := w.in.Write(frame); err != nil {
			t.Fatal(err)
		}
		if err := w.in.Flush(); err != nil {
			t.Fatal(err)
		}
		var m message
		if err := readFrame(w.out, 1<<20, &m); err != nil {
			t.Fatal(err)
		}
		if m.T != "error" || m.Error == nil || m.Error.Code != jsvm.CodeInput {
			t.Fatalf("a frame that does not decode: %+v", m)
		}
	}
	p.put(w)
	if v, err := p.Run(context.Background(), jsvm.Code, "return 2", globals, newHost(), jsvm.Limits{}); err != nil || v != int64(2) {
		t.Fatalf("after a request that did not decode: %v %v", v, err)
	}
	if p.Started() != started {
		t.Fatalf("deep data cost workers: %d started, %d before", p.Started(), started)
	}
}

// TestWorkerWaitsAsleep checks how a worker waits for its requests: on
// the Go runtime's poller, with system calls the runtime does not see
// (rawPipe). Two threads at most wake for them: the one that runs a
// request, and the one of the worker's second processor, which waits on
// the poller for the request's deadline timer (and does the garbage
// collector's share of the work). A worker that blocked in read(2) woke
// a spare thread at each request and its monitor, three threads in all. It also checks that descriptor 1, which the server
// reads frames from, is no longer the worker's stdout.
func TestWorkerWaitsAsleep(t *testing.T) {
	p, err := New(Config{Path: os.Args[0], Workers: 1, MemoryLimit: testMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	run := func() {
		t.Helper()
		if v, err := p.Run(context.Background(), jsvm.Code, "return 1 + 1", globals, newHost(), jsvm.Limits{Timeout: 10 * time.Second}); err != nil || v != int64(2) {
			t.Fatalf("run: %v, %v", v, err)
		}
	}
	for range 20 {
		run()
	}
	p.mu.Lock()
	var pid int
	for w := range p.all {
		pid = w.cmd.Process.Pid
	}
	p.mu.Unlock()
	// switches counts each of the worker's threads' voluntary context
	// switches so far.
	switches := func() map[string]int {
		t.Helper()
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
			if err != nil {
				continue // the thread ended
			}
			for line := range strings.SplitSeq(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
					n[task.Name()], _ = strconv.Atoi(strings.TrimSpace(v))
				}
			}
		}
		return n
	}
	// Requests arrive 2 ms apart, as a server's runs do at a low rate:
	// the worker is idle between them.
	const runs = 100
	before := switches()
	for range runs {
		time.Sleep(2 * time.Millisecond)
		run()
	}
	// Threads that switched at a fifth of the requests or more: the one
	// that waits for requests and runs them, and the second processor's.
	var busy []string
	for task, n := range switches() {
		busy = append(busy, fmt.Sprintf("thread %s: %d", task, n-before[task]))
		if n-before[task] < runs/5 {
			busy = busy[:len(busy)-1]
		}
	}
	t.Logf("threads that switched at a fifth of %d requests or more: %v", runs, busy)
	if len(busy) > 2 {
		t.Errorf("%d of the worker's threads woke at its requests (%v): it wakes threads while it waits, want two at most", len(busy), busy)
	}

	out, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/1", pid))
	if err != nil {
		t.Fatal(err)
	}
	if errOut, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/2", pid)); out != errOut {
		t.Errorf("the worker's descriptor 1 is %s, not its stderr (%s): a stray write to stdout would reach the server's frames", out, errOut)
	}
}

// TestPoolReusesTheLastWorker checks that the worker back last is taken
// first: requests that come one at a time all go to one warm worker, and
// the others sleep. A pool that took its workers in turn woke each of
// them in turn, cold.
func TestPoolReusesTheLastWorker(t *testing.T) {
	p, err := New(Config{Path: os.Args[0], Workers: 3, MemoryLimit: testMemory})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	served := map[*worker]int{}
	for range 10 {
		if v, err := p.Run(context.Background(), jsvm.Code, "return 1 + 1", globals, newHost(), jsvm.Limits{Timeout: 10 * time.Second}); err != nil || v != int64(2) {
			t.Fatalf("run: %v, %v", v, err)
		}
		p.idleMu.Lock()
		served[p.idle[len(p.idle)-1]]++
		p.idleMu.Unlock()
	}
	if len(served) != 1 {
		t.Errorf("10 requests one at a time went to %d workers, want 1", len(served))
	}
}

// TestWorkerOnFiles starts a worker whose stdin and stdout are files, not
// the pool's pipes (a worker started by hand, on a terminal, whose mode
// its shell shares): it reads and answers them as they are, and leaves
// them blocking.
func TestWorkerOnFiles(t *testing.T) {
	dir := t.TempDir()
	in, err := os.Create(dir + "/in")
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(in)
	if err := writeFrame(bw, &message{T: "eval", Kind: jsvm.Code, Src: "return input.n + 1", Input: json.RawMessage(`{"n":41}`)}); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dir + "/out")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), EnvWorker+"=1")
	var stderr strings.Builder
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("worker: %v: %s", err, stderr.String())
	}
	// The worker shares its stdin's open file (its mode) with whoever
	// started it: it must leave it blocking.
	for _, f := range []*os.File{in, out} {
		rc, err := f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var flags int
		if err := rc.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil {
			t.Fatal(err)
		}
		if err != nil || flags&unix.O_NONBLOCK != 0 {
			t.Errorf("the worker left %s in non-blocking mode (flags %#x, %v)", f.Name(), flags, err)
		}
	}
	if _, err := out.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	var ready, result message
	if err := readFrame(r, 1<<20, &ready); err != nil || ready.T != "ready" {
		t.Fatalf("first frame: %+v, %v", ready, err)
	}
	if err := readFrame(r, 1<<20, &result); err != nil || result.T != "result" || string(result.Result) != "42" {
		t.Fatalf("answer: %+v (%s), %v", result, result.Result, err)
	}
}

// TestWorkerStopsItsOwnScript checks that a worker that waited asleep
// (rawPipe lets its runtime's monitor thread sleep) still stops a script
// that runs past its deadline itself, on time, and lives on: the
// script holds one of the worker's two processors, and its deadline's
// timer, armed as it starts, fires on the other. With one processor only
// the monitor could preempt the script, asleep; the pool killed the
// worker at the deadline plus the grace and started another.
func TestWorkerStopsItsOwnScript(t *testing.T) {
	p, err := New(Config{Path: os.Args[0], Workers: 1, MemoryLimit: testMemory, Grace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	run := func(src string) (any, error) {
		return p.Run(context.Background(), jsvm.Code, src, globals, newHost(), jsvm.Limits{Timeout: 200 * time.Millisecond})
	}
	if v, err := run("return 1 + 1"); err != nil || v != int64(2) {
		t.Fatalf("warm-up: %v, %v", v, err)
	}
	// The worker idles long enough for its monitor to fall asleep (it
	// polls for a few milliseconds after the last request at most).
	time.Sleep(100 * time.Millisecond)
	started := p.Started()
	_, err = run("while (true) {}")
	var e *jsvm.Error
	if !errors.As(err, &e) || e.Code != jsvm.CodeTimeout || strings.Contains(e.Message, "killed") {
		t.Fatalf("a script past its deadline: %v (want the worker's own timeout, not a kill)", err)
	}
	if p.Started() != started {
		t.Errorf("a script past its deadline cost the worker: %d started, %d before", p.Started(), started)
	}
	if v, err := run("return 1 + 1"); err != nil || v != int64(2) {
		t.Fatalf("after the timeout: %v, %v", v, err)
	}
	// A script that runs on right after a quick one, with no idle moment
	// between them: the thread that took the request was the one waiting
	// on the poller, so nothing waits for the deadline unless the
	// evaluation arms it itself (a watchdog armed by the quick one, and
	// left sleeping, was never run: the pool killed the worker).
	started = p.Started()
	_, err = run("while (true) {}")
	if !errors.As(err, &e) || e.Code != jsvm.CodeTimeout || strings.Contains(e.Message, "killed") {
		t.Fatalf("a script past its deadline right after another: %v (want the worker's own timeout, not a kill)", err)
	}
	if p.Started() != started {
		t.Errorf("a script past its deadline right after another cost the worker: %d started, %d before", p.Started(), started)
	}
}
