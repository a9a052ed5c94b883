package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestConditionEval(t *testing.T) {
	tests := []struct {
		name, src string
		want      bool
		reports   []string // OnSecret calls
	}{
		{"status", `steps.call.output.status == 200`, true, nil},
		{"status int vs float", `steps.call.output.status >= 200 && steps.call.output.status < 300`, true, nil},
		{"input", `input.name == "Ada" and input.n > 2`, true, nil},
		{"not", `!input.flag`, false, nil},
		{"in", `input.name in ["Ada", "Grace"]`, true, nil},
		{"contains", `input.user.email contains "@example.com"`, true, nil},
		{"run", `run.environment == "production" && run.project == "p"`, true, nil},
		{"env", `env.API_BASE startsWith "https://"`, true, nil},
		{"secret", `secrets.API_TOKEN != ""`, true, []string{"API_TOKEN"}},
		{"secret bracket", `secrets["API_TOKEN"] == "tok-123"`, true, []string{"API_TOKEN"}},
		{"secret once", `secrets.API_TOKEN == "tok-123" && len(secrets.API_TOKEN) == 7`, true, []string{"API_TOKEN"}},
		{"lazy", `input.flag || secrets.API_TOKEN == ""`, true, nil},
		{"nil-safe", `input?.missing?.x == nil`, true, nil},
		{"multi-line", "steps.call.output.status == 200 &&\n  input.flag", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := CompileCondition(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			env, _, reports := newTestEnv()
			got, err := c.Eval(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if !reflect.DeepEqual(*reports, tt.reports) {
				t.Errorf("OnSecret %q, want %q", *reports, tt.reports)
			}
		})
	}
}

func TestConditionCompileErrors(t *testing.T) {
	tests := []struct {
		name, src    string
		line, column int
	}{
		{"unknown name", `stpes.call.output.status == 200`, 1, 1},
		{"run field", `run.nope == "x"`, 1, 5},
		{"type mismatch", `env.API_BASE + 1 == 2`, 1, 14},
		{"not boolean", `"yes"`, 0, 0},
		{"syntax", "input.a ==\n  == 2", 2, 3},
		{"bare secrets", `secrets == nil`, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileCondition(tt.src)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %v (%T), want *Error", err, err)
			}
			if e.Lang != Expr || !errors.Is(err, ErrSyntax) {
				t.Errorf("Lang %q, err %v: want expr and ErrSyntax", e.Lang, err)
			}
			if e.Line != tt.line || e.Column != tt.column {
				t.Errorf("at %d:%d, want %d:%d (%v)", e.Line, e.Column, tt.line, tt.column, err)
			}
			if tt.line > 0 && e.Snippet == "" {
				t.Errorf("no snippet: %v", err)
			}
		})
	}
	// run's fields are named as the author writes them, not as a Go type.
	for src, want := range map[string]string{
		`run.projet == "x"`:   `run has no field projet; did you mean "project"?`,
		`run.nope == "x"`:     "run has no field nope; its fields are id, flow, project, environment, block",
		`stpes.a.output == 1`: `unknown name stpes; did you mean "steps"?`,
		`input.a === 1`:       `unexpected token Operator("="): conditions compare with == and != (expr-lang, not JavaScript: no === or !==)`,
	} {
		_, err := CompileCondition(src)
		var e *Error
		if !errors.As(err, &e) || e.Message != want {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
}

func TestConditionRuntimeErrors(t *testing.T) {
	env, _, _ := newTestEnv()
	env.Run.Block = "report"

	c, err := CompileCondition(`secrets.NOPE == "x"`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Eval(context.Background(), env)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrUnknownSecret) || !errors.Is(err, ErrException) {
		t.Fatalf("err %v: want *Error wrapping ErrUnknownSecret and ErrException", err)
	}
	if e.Lang != Expr || e.Block != "report" || e.Line != 1 {
		t.Errorf("got %+v", e)
	}

	// A missing value is false (expr's cast of nil); another type fails.
	c, err = CompileCondition(`input.missing`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Eval(context.Background(), env); ok || err != nil {
		t.Errorf("missing value: %v, %v; want false, nil", ok, err)
	}
	c, err = CompileCondition(`input.name`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Eval(context.Background(), env); !errors.Is(err, ErrException) {
		t.Errorf("non-boolean result: err %v, want ErrException", err)
	}

	env.Secrets = nil
	c, _ = CompileCondition(`secrets.API_TOKEN == ""`)
	if _, err := c.Eval(context.Background(), env); !errors.Is(err, ErrUnknownSecret) {
		t.Errorf("no resolver: err %v, want ErrUnknownSecret", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Eval(ctx, env); !errors.Is(err, ErrCanceled) {
		t.Errorf("canceled: err %v, want ErrCanceled", err)
	}
}

func TestConditionReferences(t *testing.T) {
	c, err := CompileCondition(`steps.call.output.status == 200 && secrets.B != secrets["A"] && input.x > 1 && steps["prev"].output != nil`)
	if err != nil {
		t.Fatal(err)
	}
	want := Refs{Secrets: []string{"A", "B"}, Steps: []string{"call", "prev"}, Inputs: []string{"x"}}
	if got := c.References(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestConditionConcurrent(t *testing.T) {
	c, err := CompileCondition(`steps.call.output.status == 200 && secrets.API_TOKEN == "tok-123"`)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			for j := 0; j < 300; j++ {
				env, _, _ := newTestEnv()
				ok, err := c.Eval(context.Background(), env)
				if err != nil || !ok {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func ExampleCompileCondition() {
	c, err := CompileCondition(`steps.call.output.status == 200`)
	if err != nil {
		panic(err)
	}
	ok, err := c.Eval(context.Background(), &Env{
		Steps: map[string]any{"call": map[string]any{"output": map[string]any{"status": 200.0}}},
	})
	fmt.Println(ok, err)
	// Output: true <nil>
}
