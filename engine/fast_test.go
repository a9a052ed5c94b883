package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/hushflow/hushflow/engine/fastpath"
)

// mapResolver is a map-backed Resolver that records every Resolve call.
type mapResolver struct {
	mu    sync.Mutex
	vals  map[string]string
	calls []string
}

func (m *mapResolver) Resolve(_ context.Context, name string, scope Scope) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, name)
	v, ok := m.vals[name]
	if !ok {
		return "", fmt.Errorf("secret %q is not defined in project %q: %w", name, scope.Project, ErrUnknownSecret)
	}
	return v, nil
}

func (m *mapResolver) Names(context.Context) ([]string, error) {
	var names []string
	for k := range m.vals {
		names = append(names, k)
	}
	return names, nil
}

// evalTrace is what one evaluation did.
type evalTrace struct {
	out     any
	err     error
	calls   []string // Resolve calls
	reports []string // OnSecret calls
}

func newTestEnv() (*Env, *mapResolver, *[]string) {
	res := &mapResolver{vals: map[string]string{"API_TOKEN": "tok-123", "OTHER": "o"}}
	var reports []string
	env := &Env{
		Secrets: res,
		Input:   map[string]any{"name": "Ada", "n": float64(3), "flag": true, "user": map[string]any{"email": "a@example.com"}},
		Steps:   map[string]any{"call": map[string]any{"output": map[string]any{"status": float64(200)}}},
		Run:     RunInfo{ID: "r1", Flow: "notify", Project: "p", Environment: "production"},
		Vars:    map[string]string{"API_BASE": "https://api.example.com"},
		OnSecret: func(name string, _ Scope, _ string) {
			reports = append(reports, name)
		},
	}
	return env, res, &reports
}

// evalBoth runs src with the fast path and with goja only.
func evalBoth(t *testing.T, src string, mutate func(*Env)) (fast, slow evalTrace, took bool) {
	t.Helper()
	p, err := testEngine.Compile(Field, src)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	trace := func(p *Program) evalTrace {
		env, res, reports := newTestEnv()
		if mutate != nil {
			mutate(env)
		}
		out, err := p.Run(context.Background(), env)
		return evalTrace{out: out, err: err, calls: res.calls, reports: *reports}
	}
	fast = trace(p)
	goja := *p
	c := *p.c
	c.fast = nil
	goja.c = &c
	slow = trace(&goja)
	return fast, slow, p.c.fast != nil
}

func TestFastPathThroughEngine(t *testing.T) {
	tests := []struct {
		name, src string
		mutate    func(*Env)
		fast      bool // compiled to the fast path
	}{
		{"template", "`Bearer ${secrets.API_TOKEN}`", nil, true},
		{"header", "({\"Authorization\": `Bearer ${secrets.API_TOKEN}`})", nil, true},
		{"url", "`${env.API_BASE}/data?token=${secrets.API_TOKEN}`", nil, true},
		{"twice", "secrets.API_TOKEN + ':' + secrets.API_TOKEN", nil, true},
		{"two secrets", "[secrets.OTHER, secrets.API_TOKEN]", nil, true},
		{"path", "input.user.email", nil, true},
		{"condition-like", "steps.call.output.status == 200 && input.flag", nil, true},
		{"missing secret", "`Bearer ${secrets.NOPE}`", nil, true},
		{"missing after read", "`${secrets.API_TOKEN}${secrets.NOPE}`", nil, true},
		{"no resolver", "`${secrets.API_TOKEN}`", func(e *Env) { e.Secrets = nil }, true},
		{"undefined parent", "`${input.nope.x}`", nil, true},
		{"wrong type", "`${input.user}`", nil, true},
		{"number to string", "`n=${input.n}`", nil, true},
		{"NaN result", "input.n", func(e *Env) { e.Input = map[string]any{"n": math.NaN()} }, true},
		{"not in subset", "input.name.toUpperCase()", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fast, slow, took := evalBoth(t, tt.src, tt.mutate)
			if took != tt.fast {
				t.Errorf("fast path compiled: %v, want %v", took, tt.fast)
			}
			if !reflect.DeepEqual(fast.out, slow.out) {
				t.Errorf("out %#v, goja %#v", fast.out, slow.out)
			}
			if (fast.err == nil) != (slow.err == nil) || fast.err != nil && fast.err.Error() != slow.err.Error() {
				t.Errorf("err %v, goja %v", fast.err, slow.err)
			}
			if fast.err != nil {
				var fe, se *Error
				if !errors.As(fast.err, &fe) || !errors.As(slow.err, &se) || !reflect.DeepEqual(*fe, *se) {
					t.Errorf("error %#v, goja %#v", fe, se)
				}
			}
			if !reflect.DeepEqual(fast.reports, slow.reports) {
				t.Errorf("OnSecret %q, goja %q", fast.reports, slow.reports)
			}
		})
	}
}

// TestFastPathSecretReads pins the adapter's promises: one Resolve per
// name, OnSecret before the value is returned, and no OnSecret twice when
// a later read fails and goja takes over.
func TestFastPathSecretReads(t *testing.T) {
	fast, _, _ := evalBoth(t, "`${secrets.API_TOKEN}:${secrets.API_TOKEN}:${secrets.OTHER}`", nil)
	if want := []string{"API_TOKEN", "OTHER"}; !reflect.DeepEqual(fast.calls, want) || !reflect.DeepEqual(fast.reports, want) {
		t.Errorf("Resolve %q, OnSecret %q, want %q", fast.calls, fast.reports, want)
	}
	fast, _, _ = evalBoth(t, "`${secrets.API_TOKEN}${secrets.NOPE}`", nil)
	if want := []string{"API_TOKEN"}; !reflect.DeepEqual(fast.reports, want) {
		t.Errorf("OnSecret %q, want %q", fast.reports, want)
	}
	if !errors.Is(fast.err, ErrUnknownSecret) || !errors.Is(fast.err, ErrException) {
		t.Errorf("err %v: want ErrUnknownSecret and ErrException", fast.err)
	}
}

func TestFastPathOutputLimit(t *testing.T) {
	p, err := testEngine.Compile(Field, "`${secrets.API_TOKEN}`", WithMaxOutput(5))
	if err != nil {
		t.Fatal(err)
	}
	env, _, _ := newTestEnv()
	if _, err := p.Run(context.Background(), env); !errors.Is(err, ErrOutput) {
		t.Errorf("err %v, want ErrOutput", err)
	}
}

func TestFastPathCanceled(t *testing.T) {
	p, err := testEngine.Compile(Field, "`${secrets.API_TOKEN}`")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env, res, _ := newTestEnv()
	if _, err := p.Run(ctx, env); !errors.Is(err, ErrCanceled) {
		t.Errorf("err %v, want ErrCanceled", err)
	}
	if len(res.calls) != 0 {
		t.Errorf("resolved %q after cancel", res.calls)
	}
}

func TestFastPathConcurrent(t *testing.T) {
	p, err := testEngine.Compile(Field, "({a: `Bearer ${secrets.API_TOKEN}`, b: input.name})")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				env, _, _ := newTestEnv()
				out, err := p.Run(context.Background(), env)
				want := map[string]any{"a": "Bearer tok-123", "b": "Ada"}
				if err != nil || !reflect.DeepEqual(out, want) {
					t.Errorf("got %v, %v", out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// A field that reads more distinct secrets than the fast path keeps
// (fastpath.MaxSecrets) is left to goja, with the same result and reads.
func TestFastPathManySecrets(t *testing.T) {
	var src strings.Builder
	src.WriteString("`")
	vals := map[string]string{}
	var want []string
	for i := range fastpath.MaxSecrets + 1 {
		name := fmt.Sprintf("S%d", i)
		vals[name] = "v" + name
		want = append(want, name)
		fmt.Fprintf(&src, "${secrets.%s}", name)
	}
	src.WriteString("`")
	for _, n := range []int{fastpath.MaxSecrets, fastpath.MaxSecrets + 1} {
		s := strings.Join(strings.SplitAfter(src.String(), "}")[:n], "") + "`"
		p, err := testEngine.Compile(Field, s)
		if err != nil {
			t.Fatal(err)
		}
		if took := p.c.fast != nil; took != (n <= fastpath.MaxSecrets) {
			t.Errorf("%d secrets: fast path %v", n, took)
		}
		var reports []string
		env := &Env{Secrets: &mapResolver{vals: vals}, OnSecret: func(name string, _ Scope, _ string) { reports = append(reports, name) }}
		out, err := p.Run(context.Background(), env)
		wantOut := ""
		for _, name := range want[:n] {
			wantOut += vals[name]
		}
		if err != nil || out != wantOut || !reflect.DeepEqual(reports, want[:n]) {
			t.Errorf("%d secrets: %v %v, reads %q", n, out, err, reports)
		}
	}
}

// The fast path's allocations, pinned (not its time): a template with a
// secret allocates its string and the interface that holds it; the
// evaluation's own state stays on the stack.
func TestFastPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	p, err := testEngine.Compile(Field, "`Bearer ${secrets.API_TOKEN}`")
	if err != nil {
		t.Fatal(err)
	}
	env, _, _ := newTestEnv()
	env.OnSecret = func(string, Scope, string) {}
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { _, _ = p.Run(ctx, env) }); n > 2 {
		t.Errorf("%v allocations per Run, want at most 2", n)
	}
}
