package exprvm

import (
	"strings"

	"errors"
	"github.com/expr-lang/expr"
	"reflect"
	"testing"
)

type fakeSecrets struct {
	vals  map[string]string
	reads []string
}

func (f *fakeSecrets) Secret(name string) (string, error) {
	v, ok := f.vals[name]
	if !ok {
		return "", errors.New("unknown secret " + name)
	}
	f.reads = append(f.reads, name)
	return v, nil
}

func TestRun(t *testing.T) {
	steps := map[string]any{"call": map[string]any{"output": map[string]any{"status": float64(200), "ok": true}}}
	tests := []struct {
		name, src string
		want      any
		reads     []string
		wantErr   bool
	}{
		{"float status", `steps.call.output.status == 200`, true, nil, false},
		{"bool", `steps.call.output.ok`, true, nil, false},
		{"secret", `secrets.K == "v" && secrets["L"] == "w"`, true, []string{"K", "L"}, false},
		{"lazy", `false && secrets.K == "v"`, false, nil, false},
		{"dynamic", `secrets["K" + ""] == "v"`, true, []string{"K"}, false},
		{"missing secret", `secrets.NOPE == ""`, nil, nil, true},
		{"run", `run.project == "p" && env.X == "y"`, true, nil, false},
		{"input", `input.n > 1`, true, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			fs := &fakeSecrets{vals: map[string]string{"K": "v", "L": "w"}}
			got, err := p.Run(&Env{Input: map[string]any{"n": 2}, Steps: steps, Run: Run{Project: "p"}, Vars: map[string]string{"X": "y"}, Secrets: fs})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tt.wantErr && got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(fs.reads, tt.reads) {
				t.Fatalf("reads %v, want %v", fs.reads, tt.reads)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for _, src := range []string{`stepz.a == 1`, `run.nope == 1`, `1 +`, `secrets == nil`, `"a"`, `env.X + 1`} {
		_, err := Compile(src, Options{})
		if err == nil {
			t.Errorf("%s: no error", src)
			continue
		}
		t.Logf("%s: %v", src, err)
	}
}

func TestReferences(t *testing.T) {
	p, err := Compile(`steps.b.output.x == 1 && secrets.Z != secrets["A"] && input.q == steps["a"].output`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := p.References()
	want := Refs{Secrets: []string{"A", "Z"}, Steps: []string{"a", "b"}, Inputs: []string{"q"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func BenchmarkRun(b *testing.B) {
	p, err := Compile(`steps.call.output.status == 200`, Options{})
	if err != nil {
		b.Fatal(err)
	}
	e := &Env{Steps: map[string]any{"call": map[string]any{"output": map[string]any{"status": float64(200)}}}}
	b.ReportAllocs()
	for b.Loop() {
		if v, err := p.Run(e); err != nil || v != true {
			b.Fatal(v, err)
		}
	}
}

// TestPathParity checks that collapsing member paths into $path keeps
// expr's own meaning: same value, same error message.
func TestPathParity(t *testing.T) {
	env := map[string]any{
		"input": map[string]any{"a": map[string]any{"b": "x"}, "list": []any{1.0, "two"}, "n": nil, "s": "str"},
		"steps": map[string]any{"call": map[string]any{"output": map[string]any{"status": 200.0}}},
		"run":   &Run{ID: "r"},
		"env":   map[string]string{"K": "v"},
	}
	srcs := []string{
		`input.a.b == "x"`, `input.a.c == nil`, `input.zz.c == nil`, `input.n.x == nil`,
		`input.list[0] == 1`, `input.list[1] == "two"`, `input.s.x == 1`, `input?.zz?.c == nil`,
		`steps.call.output.status == 200`, `steps["call"]["output"].status >= 200.0`,
		`steps.none.output == nil`, `input.list.x == 1`, `input.a["b"] + "y" == "xy"`,
		`len(input.list) == 2`, `input.a.b.c == 1`,
	}
	for _, src := range srcs {
		p, err := Compile(src, Options{})
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		got, gotErr := p.Run(&Env{Input: env["input"], Steps: env["steps"].(map[string]any), Run: Run{ID: "r"}, Vars: map[string]string{"K": "v"}})
		ref, err := expr.Compile(src, expr.Env(checkEnv), expr.AsBool())
		if err != nil {
			t.Fatalf("%s: reference: %v", src, err)
		}
		want, wantErr := expr.Run(ref, env)
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%s: got %v, %v; want %v, %v", src, got, gotErr, want, wantErr)
			continue
		}
		if gotErr != nil && strings.SplitN(gotErr.Error(), " (", 2)[0] != strings.SplitN(wantErr.Error(), " (", 2)[0] {
			t.Errorf("%s: error %q, want %q", src, gotErr, wantErr)
		}
	}
}

func TestNoEnvAccess(t *testing.T) {
	if _, err := Compile(`$env["\x00hushflow"] != nil`, Options{}); err == nil {
		t.Error("$env[...]: no error")
	}
	_, err := Compile(`$env.input != nil`, Options{})
	if err == nil || !strings.Contains(err.Error(), "$env is not available") {
		t.Fatalf("err %v", err)
	}
}
