package engine

// Benchmarks beside their baselines (issue 4). Run the figures of
// docs/performance.md with:
//
//	go test ./engine -run '^$' -bench . -benchmem -cpu 1,2 -count 5
//
// Each group compares the engine with what it replaces: a fresh goja
// runtime per evaluation (what a naive implementation does), a warm goja
// runtime (the best goja can do), expr with a reused VM, and hand-written
// Go (the floor).

import (
	"context"
	"testing"

	"github.com/dop251/goja"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

const (
	benchTemplate  = "`Bearer ${secrets.API_TOKEN}`"
	benchCondition = "steps.call.output.status == 200"
)

// benchResolver is a read-only map Resolver, safe for parallel use.
type benchResolver map[string]string

func (r benchResolver) Resolve(_ context.Context, name string, _ Scope) (string, error) {
	v, ok := r[name]
	if !ok {
		return "", ErrUnknownSecret
	}
	return v, nil
}

func (r benchResolver) Names(context.Context) ([]string, error) { return nil, nil }

func benchEnv() *Env {
	return &Env{
		Secrets:  benchResolver{"API_TOKEN": "tok-0123456789abcdef"},
		Steps:    map[string]any{"call": map[string]any{"output": map[string]any{"status": float64(200)}}},
		OnSecret: func(string, Scope, string) {},
	}
}

// lazySecrets is the baselines' secrets object: it resolves through the
// Resolver and reports the read, as the engine does.
type lazySecrets struct {
	rt  *goja.Runtime
	env *Env
}

func (s *lazySecrets) Get(key string) goja.Value {
	v, err := s.env.Secrets.Resolve(context.Background(), key, Scope{})
	if err != nil {
		panic(s.rt.NewGoError(err))
	}
	s.env.OnSecret(key, Scope{}, v)
	return s.rt.ToValue(v)
}
func (s *lazySecrets) Set(string, goja.Value) bool { return false }
func (s *lazySecrets) Has(string) bool             { return true }
func (s *lazySecrets) Delete(string) bool          { return false }
func (s *lazySecrets) Keys() []string              { return nil }

// gojaNoFast returns p's goja-only twin (the fast path disabled).
func gojaNoFast(p *Program) *Program {
	q := *p
	c := *p.c
	c.fast = nil
	q.c = &c
	q.opts.inProcess = true
	return &q
}

func mustCompile(b *testing.B, src string) *Program {
	p, err := testEngine.Compile(Field, src)
	if err != nil {
		b.Fatal(err)
	}
	if p.c.fast == nil {
		b.Fatalf("%s: not on the fast path", src)
	}
	return p
}

func BenchmarkTemplate(b *testing.B) {
	const want = "Bearer tok-0123456789abcdef"
	ctx := context.Background()
	b.Run("engine-fast-warm-cache", func(b *testing.B) {
		// What the executor does per field: Compile (a cache hit) and Run.
		mustCompile(b, benchTemplate)
		env := benchEnv()
		b.ReportAllocs()
		for b.Loop() {
			p, err := testEngine.Compile(Field, benchTemplate)
			if err != nil {
				b.Fatal(err)
			}
			if v, err := p.Run(ctx, env); err != nil || v != want {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("engine-fast-run", func(b *testing.B) {
		p := mustCompile(b, benchTemplate)
		env := benchEnv()
		b.ReportAllocs()
		for b.Loop() {
			if v, err := p.Run(ctx, env); err != nil || v != want {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("engine-goja", func(b *testing.B) {
		// The engine without the fast path: a fresh runtime per Run.
		p := gojaNoFast(mustCompile(b, benchTemplate))
		env := benchEnv()
		b.ReportAllocs()
		for b.Loop() {
			if v, err := p.Run(ctx, env); err != nil || v != want {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("baseline-fresh-goja", func(b *testing.B) {
		env := benchEnv()
		b.ReportAllocs()
		for b.Loop() {
			rt := goja.New()
			_ = rt.Set("secrets", rt.NewDynamicObject(&lazySecrets{rt: rt, env: env}))
			v, err := rt.RunString(benchTemplate)
			if err != nil || v.Export() != want {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("baseline-warm-goja", func(b *testing.B) {
		// One runtime reused, the program compiled once, secrets lazy.
		env := benchEnv()
		prg := goja.MustCompile("", benchTemplate, true)
		rt := goja.New()
		_ = rt.Set("secrets", rt.NewDynamicObject(&lazySecrets{rt: rt, env: env}))
		b.ReportAllocs()
		for b.Loop() {
			v, err := rt.RunProgram(prg)
			if err != nil || v.Export() != want {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("baseline-expr-vm", func(b *testing.B) {
		env := benchEnv()
		prg, err := expr.Compile(`"Bearer " + secret("API_TOKEN")`, expr.Function("secret",
			func(params ...any) (any, error) {
				v, err := env.Secrets.Resolve(ctx, params[0].(string), Scope{})
				env.OnSecret(params[0].(string), Scope{}, v)
				return v, err
			}, new(func(string) (string, error))))
		if err != nil {
			b.Fatal(err)
		}
		var m vm.VM
		b.ReportAllocs()
		for b.Loop() {
			if v, err := m.Run(prg, nil); err != nil || v != want {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("baseline-go", func(b *testing.B) {
		env := benchEnv()
		b.ReportAllocs()
		for b.Loop() {
			v, err := env.Secrets.Resolve(ctx, "API_TOKEN", Scope{})
			if err != nil {
				b.Fatal(err)
			}
			env.OnSecret("API_TOKEN", Scope{}, v)
			if s := "Bearer " + v; s != want {
				b.Fatal(s)
			}
		}
	})
}

func BenchmarkCondition(b *testing.B) {
	ctx := context.Background()
	b.Run("engine-expr", func(b *testing.B) {
		c, err := CompileCondition(benchCondition)
		if err != nil {
			b.Fatal(err)
		}
		env := benchEnv()
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := c.Eval(ctx, env); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("engine-js-fast", func(b *testing.B) {
		// The same condition as a JavaScript field, on the fast path.
		p := mustCompile(b, benchCondition)
		env := benchEnv()
		b.ReportAllocs()
		for b.Loop() {
			if v, err := p.Run(ctx, env); err != nil || v != true {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("engine-js-goja", func(b *testing.B) {
		p := gojaNoFast(mustCompile(b, benchCondition))
		env := benchEnv()
		b.ReportAllocs()
		for b.Loop() {
			if v, err := p.Run(ctx, env); err != nil || v != true {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("baseline-fresh-goja", func(b *testing.B) {
		env := benchEnv()
		b.ReportAllocs()
		for b.Loop() {
			rt := goja.New()
			_ = rt.Set("steps", env.Steps)
			v, err := rt.RunString(benchCondition)
			if err != nil || v.Export() != true {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("baseline-warm-goja", func(b *testing.B) {
		env := benchEnv()
		prg := goja.MustCompile("", benchCondition, true)
		rt := goja.New()
		_ = rt.Set("steps", env.Steps)
		b.ReportAllocs()
		for b.Loop() {
			v, err := rt.RunProgram(prg)
			if err != nil || v.Export() != true {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("baseline-go", func(b *testing.B) {
		env := benchEnv()
		b.ReportAllocs()
		for b.Loop() {
			call, _ := env.Steps["call"].(map[string]any)
			out, _ := call["output"].(map[string]any)
			if s, _ := out["status"].(float64); s != 200 {
				b.Fatal(s)
			}
		}
	})
}

// BenchmarkParallel measures throughput with every core busy (run with
// -cpu 1,2: ns/op is wall time per evaluation across all goroutines).
func BenchmarkParallel(b *testing.B) {
	ctx := context.Background()
	b.Run("template-fast", func(b *testing.B) {
		mustCompile(b, benchTemplate)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			env := benchEnv()
			for pb.Next() {
				p, err := testEngine.Compile(Field, benchTemplate)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Run(ctx, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("template-goja", func(b *testing.B) {
		p := gojaNoFast(mustCompile(b, benchTemplate))
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			env := benchEnv()
			for pb.Next() {
				if _, err := p.Run(ctx, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("condition-expr", func(b *testing.B) {
		c, err := CompileCondition(benchCondition)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			env := benchEnv()
			for pb.Next() {
				if _, err := c.Eval(ctx, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
