package security_test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/apptest"
)

// Engine sandbox: cases 11-17 of SECURITY.md, through code blocks run by
// the API (apptest's sandbox pool is real: it re-executes the test
// binary). Deeper unit tests: engine/engine_test.go, engine/sandbox_test.go
// and engine/sandbox/sandbox_test.go.

// monitor polls /healthz every 50ms until stop is called and reports the
// slowest answer and the number of failures.
func monitor(url string) (stop func() (slowest time.Duration, failed int)) {
	done := make(chan struct{})
	var mu sync.Mutex
	var slow time.Duration
	var fails int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
			start := time.Now()
			r, err := c.Get(url + "/healthz")
			d := time.Since(start)
			mu.Lock()
			if err != nil || r.StatusCode != 200 {
				fails++
			}
			slow = max(slow, d)
			mu.Unlock()
			if err == nil {
				r.Body.Close()
			}
		}
	}()
	return func() (time.Duration, int) {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return slow, fails
	}
}

// rss is this process's resident set size in bytes (the server runs in
// the test process; sandboxes are child processes).
func rss(t *testing.T) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func TestCase11_InfiniteLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("five endless loops, each to its deadline: skipped in -short mode")
	}
	e := sqlite(t, noRateLimit)
	k := canary("c11")
	e.secret("K", k)
	stop := monitor(e.s.URL)
	for name, src := range map[string]string{
		"plain":    "const k = secrets.K; while (true) {}",
		"catch":    "const k = secrets.K; try { while (true) {} } catch (e) { console.log('swallowed ' + k) } return 'escaped'",
		"finally":  "for (;;) { try { while (true) {} } catch (e) {} finally { continue } }",
		"recatch":  "while (true) { try { while (true) {} } catch (e) {} }",
		"promises": "async function f() { while (true) { await null } } await f()",
	} {
		e.flowDef(map[string]any{"name": "loop-" + name, "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "c", "type": "code", "timeout": "1s", "config": map[string]any{"code": src}}}})
		start := time.Now()
		_, msg := e.runStatus("loop-"+name, "failed", nil)
		took := time.Since(start)
		if !strings.Contains(msg, "timed out") && !strings.Contains(msg, "exceeded its deadline") {
			t.Errorf("%s: not a clear timeout error: %s", name, msg)
		}
		if took > 10*time.Second {
			t.Errorf("%s: stopped after %s", name, took)
		}
	}
	slow, fails := stop()
	if fails > 0 || slow > 2*time.Second {
		t.Errorf("/healthz during the loops: %d failures, slowest %s", fails, slow)
	}
	// The runtime that looped is gone: a fresh run works.
	e.flow("after", code("c", "return 1 + 1"))
	if _, out := e.runStatus("after", "succeeded", nil); out != "2" {
		t.Errorf("after the loops: %s", out)
	}
	e.sweep(nil)
}

func TestCase12_ResourceBombs(t *testing.T) {
	if testing.Short() {
		t.Skip("six resource bombs, each to the memory limit or its deadline: skipped in -short mode")
	}
	e := sqlite(t, noRateLimit)
	k := canary("c12")
	e.secret("K", k)
	e.flow("quick", map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'still here'"}})
	base := rss(t)
	stop := monitor(e.s.URL)
	bombs := map[string]string{
		"repeat":   "const k = secrets.K; return 'x'.repeat(1e9).length",
		"doubling": "let s = secrets.K; while (true) s += s; return s.length",
		"join":     "return new Array(2e7).fill('ab').join(',').length",
		"regex":    "return /(a*)*b\\1/.test('a'.repeat(40))",
		"regex2":   "return /^(a+)+$/.test('a'.repeat(40) + '!')",
		"array":    "const a = []; while (true) a.push({x: new Array(1000).fill(secrets.K)}); return a.length",
	}
	for name, src := range bombs {
		e.flowDef(map[string]any{"name": "bomb-" + name, "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "c", "type": "code", "timeout": "2s", "config": map[string]any{"code": src}}}})
	}
	var quickSlowest atomic.Int64
	results := make(map[string]map[string]any)
	var mu sync.Mutex
	// Two at a time: the server has two sandbox workers, and every bomb
	// must really run (not time out waiting for a worker).
	names := []string{"repeat", "doubling", "join", "regex", "regex2", "array"}
	for i := 0; i < len(names); i += 2 {
		var wg sync.WaitGroup
		for _, name := range names[i : i+2] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.s.Do("POST", "/api/v1/projects/p/flows/bomb-"+name+"/runs?wait=60s", map[string]any{"environment": "development"})
				mu.Lock()
				defer mu.Unlock()
				e.record("POST", "bomb-"+name, r)
				results[name] = r.JSON(t)
			}()
		}
		// Other runs go on while the bombs are running: wait until a
		// worker has claimed both.
		apptest.Eventually(t, 30*time.Second, "the bombs "+strings.Join(names[i:i+2], " and ")+" to start", func() error {
			for _, name := range names[i : i+2] {
				l := e.must(200, "GET", "/api/v1/projects/p/runs?flow=bomb-"+name, nil)
				runs, _ := l["runs"].([]any)
				if len(runs) == 0 {
					return fmt.Errorf("bomb %s: no run yet", name)
				}
				if st := runs[0].(map[string]any)["status"]; st == "queued" {
					return fmt.Errorf("bomb %s: %v", name, st)
				}
			}
			return nil
		})
		start := time.Now()
		e.runStatus("quick", "succeeded", nil)
		if d := time.Since(start); int64(d) > quickSlowest.Load() {
			quickSlowest.Store(int64(d))
		}
		wg.Wait()
	}
	grown := rss(t) - base
	slow, fails := stop()
	for name, r := range results {
		e.runs = append(e.runs, r["id"].(string))
		// A bomb fails (timeout, memory) or, for a pattern the engine
		// can bound, finishes: never a crash, never a hang.
		if r["status"] != "failed" && r["status"] != "succeeded" || strings.Contains(fmt.Sprint(r["error"]), "waiting for a sandbox worker") {
			t.Errorf("bomb %s: %v", name, r)
		}
		t.Logf("bomb %s: %s %v", name, r["status"], r["error"])
	}
	if results["repeat"]["status"] != "failed" || results["doubling"]["status"] != "failed" || results["array"]["status"] != "failed" {
		t.Errorf("a memory bomb succeeded: repeat %v, doubling %v, array %v", results["repeat"]["status"], results["doubling"]["status"], results["array"]["status"])
	}
	t.Logf("server RSS grew by %d MiB; /healthz slowest %s; a quick run took at most %s", grown>>20, slow, time.Duration(quickSlowest.Load()))
	if grown > 200<<20 {
		t.Errorf("server RSS grew by %d MiB during the bombs", grown>>20)
	}
	if fails > 0 || slow > 2*time.Second {
		t.Errorf("/healthz during the bombs: %d failures, slowest %s", fails, slow)
	}
	if time.Duration(quickSlowest.Load()) > 8*time.Second {
		t.Errorf("other runs were slowed: %s", time.Duration(quickSlowest.Load()))
	}
	e.sweep(nil)
}

func TestCase13_DeepRecursion(t *testing.T) {
	if testing.Short() {
		t.Skip("recursion bombs: skipped in -short mode")
	}
	e := sqlite(t, noRateLimit)
	k := canary("c13")
	e.secret("K", k)
	for name, src := range map[string]string{
		"direct": "function f(n) { return f(n + 1) + secrets.K } return f(0)",
		"mutual": "function a(n) { return b(n) } function b(n) { return a(n + 1) } return a(0)",
		"caught": "function f() { try { return f() } catch (e) { return f() } } return f()",
		"json":   "let o = {}; for (let i = 0; i < 1e5; i++) o = {o}; return JSON.stringify(o).length",
	} {
		e.flowDef(map[string]any{"name": "rec-" + name, "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "c", "type": "code", "timeout": "3s", "config": map[string]any{"code": src}}}})
		start := time.Now()
		r := e.run("rec-"+name, nil)
		if r["status"] == "failed" {
			t.Logf("%s: %s in %s", name, r["error"], time.Since(start))
		}
		if name != "json" && name != "caught" {
			if r["status"] != "failed" || !strings.Contains(strings.ToLower(fmt.Sprint(r["error"])), "stack") {
				t.Errorf("%s: want a stack overflow error, got %v %v", name, r["status"], r["error"])
			}
			if d := time.Since(start); d > 2500*time.Millisecond {
				t.Errorf("%s: the stack overflow took %s (not quick)", name, d)
			}
		}
		healthy(t, e.s, 2*time.Second)
	}
	e.sweep(nil)
}

func TestCase14_PrototypePollution(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k := canary("c14")
	e.secret("K", k)
	e.flow("pollute", code("c", `Object.prototype.polluted = secrets.K; Array.prototype.push = function () { return secrets.K };
String.prototype.trim = function () { return 'owned' }; JSON.stringify = () => 'owned'; globalThis.leak = secrets.K;
Object.defineProperty(Object.prototype, 'sticky', {value: 1, writable: false, configurable: false});
console.log = () => {}; return 'done'`))
	e.flow("check", code("c", `const a = []; a.push(1);
return {polluted: typeof ({}).polluted, push: a.length, trim: ' x '.trim(), json: JSON.stringify({a: 1}),
  leak: typeof globalThis.leak, sticky: typeof ({}).sticky}`))
	want := `{"json":"{\"a\":1}","leak":"undefined","polluted":"undefined","push":1,"sticky":"undefined","trim":"x"}`
	// Runtimes are pooled: pollute and check several times so that a
	// check lands on a runtime that served a polluting run.
	for i := range 6 {
		e.runStatus("pollute", "succeeded", nil)
		if _, out := e.runStatus("check", "succeeded", nil); out != want {
			t.Fatalf("round %d: pollution visible to the next evaluation: %s", i, out)
		}
	}
	// Fields too (they may use another engine path).
	prev := e.must(200, "POST", "/api/v1/projects/p/evaluate", map[string]any{"expression": "typeof ({}).polluted + ',' + typeof leak", "environment": "development"})
	if prev["value"] != "undefined,undefined" {
		t.Errorf("preview sees pollution: %v", prev)
	}
	e.sweep(nil)
}

func TestCase15_SecretsReadOnly(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k := canary("c15")
	e.secret("K", k)
	n := len(k)
	e.flow("ro", code("c", `const before = secrets.K;
const tries = {};
const attempt = (name, f) => { try { f(); tries[name] = 'no error' } catch (e) { tries[name] = 'threw' } };
attempt('assign', () => { secrets.K = 'x' });
attempt('delete', () => { delete secrets.K });
attempt('add', () => { secrets.NEW = 1 });
attempt('define', () => Object.defineProperty(secrets, 'K', {value: 'y'}));
attempt('proto', () => Object.setPrototypeOf(secrets, {K: 'z'}));
attempt('getter', () => { secrets.__proto__.get = () => 'w' });
let newVisible; try { newVisible = secrets.NEW } catch (e) { newVisible = 'unknown' }
return {same: secrets.K === before, len: secrets.K.length, newVisible: String(newVisible),
  keys: JSON.stringify(Object.keys(secrets)), get: (await secrets.get('K')) === before, tries}`))
	r, _ := e.runStatus("ro", "succeeded", nil)
	o := r["output"].(map[string]any)
	if o["same"] != true || o["len"] != float64(n) || o["get"] != true || o["newVisible"] == "1" {
		t.Errorf("secrets changed by the script: %v", o)
	}
	if strings.Contains(fmt.Sprint(o["keys"]), "[REDACTED") {
		t.Errorf("Object.keys(secrets) exposes values: %v", o["keys"])
	}
	t.Logf("attempts: %v; Object.keys(secrets) = %v", o["tries"], o["keys"])
	// The next run sees the stored value, unchanged.
	e.flow("after", code("c", "return secrets.K.length"))
	if _, out := e.runStatus("after", "succeeded", nil); out != strconv.Itoa(n) {
		t.Errorf("next run sees %s, want length %d", out, n)
	}
	e.sweep(nil)
}

// TestCase16_EnginePanics feeds the engine inputs that stress its Go
// boundary (exotic values as output, throwing getters and toJSON,
// proxies, symbols, BigInt, host-object probing). No input known to us
// makes goja or the adapter panic; the recover at Program.Run (engine
// package, covered by engine/engine_test.go) and at the block boundary
// (flows/executor.go runBlock) is therefore proven by unit tests only.
// Here each input must end as a clean success or a clean error, and the
// server must keep serving.
func TestCase16_EnginePanics(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k := canary("c16")
	e.secret("K", k)
	inputs := map[string]string{
		"proxy":     "return new Proxy({}, {get() { throw new Error(secrets.K) }, ownKeys() { throw new Error('keys') }})",
		"tojson":    "return {toJSON() { throw new Error('boom ' + secrets.K) }}",
		"symbol":    "return {s: Symbol('x'), [Symbol('y')]: 1}",
		"bigint":    "return {b: 10n ** 30n}",
		"getter":    "const o = {}; Object.defineProperty(o, 'x', {get() { throw new Error(secrets.K) }, enumerable: true}); return o",
		"date":      "return new Date(NaN)",
		"function":  "return function () {}",
		"map":       "return new Map([[{}, secrets.K]])",
		"typed":     "return new Uint8Array(16)",
		"nan":       "return [NaN, Infinity, -0, undefined, null]",
		"reject":    "await Promise.reject(secrets.K)",
		"throwobj":  "throw {message: secrets.K, toString() { throw new Error('x') }}",
		"hostprobe": "return [typeof require, typeof process, typeof Java, typeof fetch, typeof globalThis.__go, Object.getOwnPropertyNames(secrets).length]",
	}
	for name, src := range inputs {
		e.flowDef(map[string]any{"name": "p-" + name, "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "c", "type": "code", "timeout": "3s", "config": map[string]any{"code": src}}}})
		r := e.run("p-"+name, nil)
		if r["status"] != "failed" && r["status"] != "succeeded" {
			t.Errorf("%s: %v", name, r)
		}
		if strings.Contains(fmt.Sprint(r["error"]), "goroutine ") || strings.Contains(fmt.Sprint(r["error"]), ".go:") {
			t.Errorf("%s: error shows Go internals: %v", name, r["error"])
		}
		t.Logf("%s: %v %.120v %.200v", name, r["status"], js(r["output"]), r["error"])
	}
	healthy(t, e.s, 2*time.Second)
	if strings.Contains(e.s.Logs.String(), "goroutine ") {
		t.Errorf("server log holds a Go stack")
	}
	e.sweep(nil)
}

func TestCase17_OutputBombs(t *testing.T) {
	if testing.Short() {
		t.Skip("output bombs: skipped in -short mode")
	}
	e := sqlite(t, noRateLimit)
	// The random part first: a truncation before redaction would leave a
	// prefix of it, which the check below looks for.
	var b [16]byte
	_, _ = rand.Read(b[:])
	k := hex.EncodeToString(b[:]) + `&<>"%\c17`
	e.secret("K", k)
	bombs := map[string]string{
		"huge":  "return 'x'.repeat(5e8)",
		"deep":  "let o = {}; for (let i = 0; i < 1e6; i++) o = {o}; return o",
		"cycle": "const a = {k: secrets.K}; a.self = a; return a",
		"wide":  "return new Array(3e6).fill(secrets.K)",
	}
	for name, src := range bombs {
		e.flowDef(map[string]any{"name": "out-" + name, "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "c", "type": "code", "timeout": "5s", "config": map[string]any{"code": src}}}})
		start := time.Now()
		_, msg := e.runStatus("out-"+name, "failed", nil)
		t.Logf("%s: %s (%s)", name, msg, time.Since(start).Round(time.Millisecond))
		if time.Since(start) > 15*time.Second {
			t.Errorf("%s took %s", name, time.Since(start))
		}
	}
	// Truncation after redaction: log lines and an output that cross the
	// 64 KiB event bound and the output bound with the value at every
	// offset around the cut.
	e.flow("cut", code("c", `for (let i = 0; i < 80; i++) console.log('y'.repeat(65536 - 60 - i) + secrets.K + 'tail');
const out = []; for (let i = 0; i < 8; i++) out.push('z'.repeat(120000 - i * 7) + secrets.K);
return out`))
	e.run("cut", nil)
	healthy(t, e.s, 2*time.Second)
	prefix := k[:12]
	for _, id := range e.runs {
		st, stream := e.events(id)
		for where, text := range map[string]string{"events": st, "stream": stream, "run": string(e.do("GET", "/api/v1/runs/"+id, nil).Body)} {
			if strings.Contains(text, prefix) {
				t.Errorf("%s of %s holds a cut piece of the value", where, id)
			}
		}
	}
	if strings.Contains(dumpTables(t, e), prefix) {
		t.Errorf("database holds a cut piece of the value")
	}
	e.sweep(nil)
}
