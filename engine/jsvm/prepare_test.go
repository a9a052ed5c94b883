package jsvm

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// recHost records what a run asks of its host.
type recHost struct{ calls []string }

func (h *recHost) Resolve(name string, s Scope) (string, error) {
	h.calls = append(h.calls, "resolve "+name+" "+s.Environment)
	if name == "MISSING" {
		return "", errors.New("secret MISSING not found")
	}
	return "v_" + name, nil
}
func (h *recHost) Names() ([]string, error) {
	h.calls = append(h.calls, "names")
	return []string{"A"}, nil
}
func (h *recHost) Mask(v string)   { h.calls = append(h.calls, "mask "+v) }
func (h *recHost) Log(l, m string) { h.calls = append(h.calls, "log "+l+" "+m) }

var prepareGlobals = Globals{
	Input: JSON(`{"text":"hello","items":[1,2,3]}`),
	Steps: JSON(`{"call":{"output":{"status":200,"body":{"id":"b1"}}}}`),
	Run:   JSON(`{"id":"r1","flow":"notify","project":"billing","environment":"production","block":"code"}`),
	Env:   JSON(`{"API_BASE":"https://api.example.com"}`),
}

var prepareCases = []struct {
	kind Kind
	src  string
}{
	{Code, "return input.text"},
	{Code, "return"},
	{Code, "const t = await secrets.get('A', {environment: 'production'}); console.log('got', t); return {t, id: steps.call.output.body.id, m: secrets.mask('x' + t)}"},
	{Code, "return input.items.map(x => x * 2).concat([run.id, env.API_BASE])"},
	{Code, "return arguments.length + typeof arguments[1]"},
	{Code, "const f = function () { return this }; return [typeof f(), typeof globalThis.input]"},
	{Code, "\n\nthrow new TypeError('bad ' + input.text)"},
	{Code, "await secrets.get('MISSING')"},
	{Code, "return await Promise.reject(new Error('no'))"},
	{Code, "return new Promise(() => {})"},
	{Code, "function r(n) { return r(n + 1) } return r(0)"},
	{Code, "return () => 1"},
	{Code, "return btoa(input.text)"},
	{Field, "`Bearer ${secrets.API_TOKEN}`.split(' ')[1]"},
	{Field, "steps.call.output.status == 200 && input.text"},
	{Field, "input.nope.deeper"},
}

func runOnce(t *testing.T, s *Script, prepare ...*Script) (any, error, []string) {
	t.Helper()
	r := NewRuntime()
	for _, p := range prepare {
		r.Prepare(p)
	}
	for _, p := range prepare {
		if !r.Prepared(p) {
			t.Fatalf("%q was not prepared", p.Source)
		}
	}
	h := &recHost{}
	v, err := s.RunIn(context.Background(), r, prepareGlobals, h, Limits{Timeout: time.Second})
	if _, err2 := s.RunIn(context.Background(), r, prepareGlobals, h, Limits{}); err2 == nil {
		t.Fatal("a runtime ran twice")
	}
	return v, err, h.calls
}

func compileAll(t *testing.T) []*Script {
	t.Helper()
	var ss []*Script
	for _, c := range prepareCases {
		s, err := Compile(c.kind, c.src)
		if err != nil {
			t.Fatalf("%q: %v", c.src, err)
		}
		if !s.plainWrapper {
			t.Fatalf("%q: the wrapper is not a plain function expression", c.src)
		}
		ss = append(ss, s)
	}
	return ss
}

// TestPreparedSameResults: a run whose wrapper function was prepared gives
// what a run without gives (value, error with its position and stack, host
// calls), whether the script was prepared alone or among others, and a
// script not prepared runs correctly in a runtime prepared for others.
func TestPreparedSameResults(t *testing.T) {
	ss := compileAll(t)
	for i, s := range ss {
		wantV, wantErr, wantCalls := runOnce(t, s)
		other := ss[(i+1)%len(ss)]
		for name, prep := range map[string][]*Script{
			"alone":      {s},
			"among":      {other, s, ss[(i+2)%len(ss)]},
			"not":        {other},
			"not, three": {other, ss[(i+2)%len(ss)], ss[(i+3)%len(ss)]},
		} {
			v, err, calls := runOnce(t, s, prep...)
			if !reflect.DeepEqual(v, wantV) || !reflect.DeepEqual(calls, wantCalls) {
				t.Errorf("%q prepared %s: got %#v %v, want %#v %v", s.Source, name, v, calls, wantV, wantCalls)
			}
			var e, we *Error
			if (err == nil) != (wantErr == nil) {
				t.Errorf("%q prepared %s: err %v, want %v", s.Source, name, err, wantErr)
			} else if err != nil {
				errors.As(err, &e)
				errors.As(wantErr, &we)
				if e == nil || we == nil || e.Code != we.Code || e.Message != we.Message || e.Line != we.Line ||
					e.Column != we.Column || e.Stack != we.Stack || e.Snippet != we.Snippet {
					t.Errorf("%q prepared %s: err %#v, want %#v", s.Source, name, e, we)
				}
			}
		}
	}
}

// TestPrepareRunsNothing: preparing a script runs none of its source, and
// a run in a runtime where other scripts were prepared sees nothing of them.
func TestPrepareRunsNothing(t *testing.T) {
	mk := func(kind Kind, src string) *Script {
		s, err := Compile(kind, src)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	loop := mk(Code, "while (true) {}")
	polluter := mk(Code, "globalThis.leak = 1; Object.prototype.polluted = 1; Array.prototype.map = null; await secrets.get('A')")
	field := mk(Field, "(globalThis.leak2 = 1, Object.prototype.polluted2 = 1)")
	observer := mk(Code, "return [typeof leak, typeof leak2, typeof ({}).polluted, typeof ({}).polluted2, typeof [].map]")
	start := time.Now()
	v, err, calls := runOnce(t, observer, loop, polluter, field)
	if err != nil || !reflect.DeepEqual(v, []any{"undefined", "undefined", "undefined", "undefined", "function"}) || len(calls) != 0 {
		t.Fatalf("got %v %v %v", v, err, calls)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Fatal("Prepare ran the loop")
	}
	// A used runtime is not prepared further.
	r := NewRuntime()
	if _, err := observer.RunIn(context.Background(), r, prepareGlobals, &recHost{}, Limits{}); err != nil {
		t.Fatal(err)
	}
	r.Prepare(loop)
	if r.Prepared(loop) {
		t.Fatal("a used runtime was prepared")
	}
}

// TestPreparedIsolation: what one evaluation changes (globals, prototypes,
// builtins) is not seen by the next, even when the
// next one's function (or the same script's) was prepared.
func TestPreparedIsolation(t *testing.T) {
	s, err := Compile(Code, `const seen = [typeof globalThis.count, typeof ({}).polluted, typeof [].map, JSON.stringify({a: 1}), typeof String.prototype.trim];
globalThis.count = (globalThis.count || 0) + 1;
Object.prototype.polluted = 1; Array.prototype.map = null; String.prototype.trim = null;
JSON.stringify = () => 'owned';
Object.defineProperty(Object.prototype, 'sticky', {value: 1, writable: false, configurable: false});
return seen`)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Compile(Code, `return [typeof count, typeof ({}).polluted, typeof ({}).sticky, typeof [].map, JSON.stringify({a: 1})]`)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"undefined", "undefined", "function", `{"a":1}`, "function"}
	for i := range 3 {
		v, err, _ := runOnce(t, s, s, other)
		if err != nil || !reflect.DeepEqual(v, want) {
			t.Fatalf("run %d: got %v %v", i, v, err)
		}
		v, err, _ = runOnce(t, other, s, other)
		if err != nil || !reflect.DeepEqual(v, []any{"undefined", "undefined", "undefined", "function", `{"a":1}`}) {
			t.Fatalf("run %d, other: got %v %v", i, v, err)
		}
	}
}
