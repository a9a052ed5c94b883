package jsvm

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dop251/goja"
)

type nopHost struct{}

func (nopHost) Resolve(name string, _ Scope) (string, error) { return "v", nil }
func (nopHost) Names() ([]string, error)                     { return nil, nil }
func (nopHost) Mask(string)                                  {}
func (nopHost) Log(string, string)                           {}

func BenchmarkGojaNew(b *testing.B) {
	for b.Loop() {
		_ = goja.New()
	}
}

func benchRun(b *testing.B, kind Kind, src string) {
	s, err := Compile(kind, src)
	if err != nil {
		b.Fatal(err)
	}
	g := Globals{Input: map[string]any{"text": "hello"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(context.Background(), g, nopHost{}, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRunField(b *testing.B) { benchRun(b, Field, "`Bearer ${secrets.X}`") }
func BenchmarkRunCode(b *testing.B)  { benchRun(b, Code, "return input.text") }

// workerGlobals are a run's globals as the sandbox worker receives them:
// JSON text (the engine sends steps and env as objects and run with its
// five fields).
var workerGlobals = Globals{
	Input: JSON(`{"text":"hello"}`),
	Steps: JSON(`{}`),
	Run:   JSON(`{"id":"r1","flow":"notify","project":"billing","environment":"production","block":"code"}`),
	Env:   JSON(`{}`),
}

// BenchmarkRunCodeJSON is a trivial code block with the worker's JSON
// globals, in a runtime created for the evaluation (Run).
func BenchmarkRunCodeJSON(b *testing.B) {
	s, err := Compile(Code, "return input.text")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(context.Background(), workerGlobals, nopHost{}, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewRuntime is the preparation of one runtime, which the sandbox
// worker does after replying, between evaluations.
func BenchmarkNewRuntime(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewRuntime()
	}
}

// benchPrepared measures RunIn alone, as the sandbox worker runs an
// evaluation: in a runtime prepared just before (the worker prepares it
// after its previous reply). Preparation is outside the measured time;
// the metric ns/eval is the time of RunIn only, ns/op includes the
// preparation. With fn, the script's wrapper function is also
// instantiated ahead (Runtime.Prepare), as the worker does for the last
// scripts it ran.
func benchPrepared(b *testing.B, kind Kind, src string, g Globals, fn bool) {
	s, err := Compile(kind, src)
	if err != nil {
		b.Fatal(err)
	}
	var eval time.Duration
	b.ReportAllocs()
	for b.Loop() {
		rt := NewRuntime()
		if fn {
			rt.Prepare(s)
		}
		start := time.Now()
		_, err := s.RunIn(context.Background(), rt, g, nopHost{}, Limits{})
		eval += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(eval.Nanoseconds())/float64(b.N), "ns/eval")
}

func BenchmarkRunInPreparedCodeJSON(b *testing.B) {
	benchPrepared(b, Code, "return input.text", workerGlobals, false)
}

func BenchmarkRunInPreparedFieldJSON(b *testing.B) {
	benchPrepared(b, Field, "`Bearer ${secrets.API_TOKEN}`.split(' ')[1]", workerGlobals, false)
}

// BenchmarkRunInPreparedFnCodeJSON is BenchmarkRunInPreparedCodeJSON when
// the script's wrapper function was prepared too (the worker's hit path).
func BenchmarkRunInPreparedFnCodeJSON(b *testing.B) {
	benchPrepared(b, Code, "return input.text", workerGlobals, true)
}

func BenchmarkRunInPreparedFnFieldJSON(b *testing.B) {
	benchPrepared(b, Field, "`Bearer ${secrets.API_TOKEN}`.split(' ')[1]", workerGlobals, true)
}

// BenchmarkPrepare is the preparation the worker does between
// evaluations with its last n distinct scripts: NewRuntime and n
// Prepare calls (the metric ns/fn is the time of one Prepare).
func BenchmarkPrepare(b *testing.B) {
	srcs := []string{"return input.text", "const r = await secrets.get('A'); return {r, id: steps.call.output.body.id}",
		"return input.items.map(x => x * 2)", "console.log(run.id); return null"}
	var scripts []*Script
	for _, src := range srcs {
		s, err := Compile(Code, src)
		if err != nil {
			b.Fatal(err)
		}
		scripts = append(scripts, s)
	}
	for n := 0; n <= len(scripts); n++ {
		b.Run(fmt.Sprintf("scripts=%d", n), func(b *testing.B) {
			var prep time.Duration
			b.ReportAllocs()
			for b.Loop() {
				rt := NewRuntime()
				start := time.Now()
				for _, s := range scripts[:n] {
					rt.Prepare(s)
				}
				prep += time.Since(start)
			}
			if n > 0 {
				b.ReportMetric(float64(prep.Nanoseconds())/float64(b.N)/float64(n), "ns/fn")
			}
		})
	}
}
