package engine

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The blocks of an on_error handler see `error` and `failed_block`: in a
// field on the fast path and in goja, in a code block in the sandbox, and
// in a condition; elsewhere the names are not defined.
func TestFailureInScope(t *testing.T) {
	failure := &Failure{Error: `block "boom": Error: bad [REDACTED:API_TOKEN]`, FailedBlock: "boom"}
	withFailure := func(e *Env) { e.Failure = failure }

	t.Run("field", func(t *testing.T) {
		for _, src := range []string{"failed_block", "`${failed_block}: ${error}`", "({error, failed_block, status: steps.call.output.status})"} {
			fast, slow, took := evalBoth(t, src, withFailure)
			if fast.err != nil || slow.err != nil || !reflect.DeepEqual(fast.out, slow.out) {
				t.Fatalf("%s: fast %v %v, goja %v %v", src, fast.out, fast.err, slow.out, slow.err)
			}
			if src == "failed_block" && (!took || fast.out != "boom") {
				t.Fatalf("%s: fast path %v, %v", src, took, fast.out)
			}
			if m, ok := fast.out.(map[string]any); ok && (m["error"] != failure.Error || m["failed_block"] != "boom") {
				t.Fatalf("%s: %v", src, m)
			}
			// In-process (bounded): the fields read only strings.
			p, _ := testEngine.Compile(Field, src)
			if iso, why := p.Isolated(); iso {
				t.Errorf("%s needs the sandbox: %s", src, why)
			}
			// Outside a handler the names are not defined.
			fast, slow, _ = evalBoth(t, src, nil)
			if fast.err == nil || slow.err == nil || !strings.Contains(slow.err.Error(), "is not defined") {
				t.Fatalf("%s outside on_error: %v %v / %v %v", src, fast.out, fast.err, slow.out, slow.err)
			}
		}
	})

	t.Run("sandbox", func(t *testing.T) {
		sb := WithSandbox(testSandbox(t))
		src := `return {error, failed_block, upper: error.toUpperCase().length > 0}`
		p, err := testEngine.Compile(Code, src, sb)
		if err != nil {
			t.Fatal(err)
		}
		env, _, _ := newTestEnv()
		env.Failure = failure
		out, err := p.Run(context.Background(), env)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"error": failure.Error, "failed_block": "boom", "upper": true}
		if !reflect.DeepEqual(out, want) {
			t.Fatalf("got %v", out)
		}
		env.Failure = nil
		if _, err := p.Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "error is not defined") {
			t.Fatalf("outside on_error: %v", err)
		}
	})

	t.Run("code declares its own error", func(t *testing.T) {
		// Code written before on_error existed keeps compiling and
		// running: the globals are shadowed, not parameters.
		src := "const error = 'mine'; try { JSON.parse('{') } catch (e) { return error + ' ' + typeof failed_block }"
		for _, f := range []*Failure{nil, failure} {
			p, err := testEngine.Compile(Code, src, WithInProcess())
			if err != nil {
				t.Fatal(err)
			}
			env, _, _ := newTestEnv()
			env.Failure = f
			out, err := p.Run(context.Background(), env)
			want := "mine undefined"
			if f != nil {
				want = "mine string"
			}
			if err != nil || out != want {
				t.Fatalf("failure %v: %v %v", f, out, err)
			}
		}
	})

	t.Run("read-only", func(t *testing.T) {
		p, err := testEngine.Compile(Code, "error = 'x'; return error", WithInProcess())
		if err != nil {
			t.Fatal(err)
		}
		env, _, _ := newTestEnv()
		env.Failure = failure
		if out, err := p.Run(context.Background(), env); err == nil {
			t.Fatalf("assigned error: %v", out)
		}
	})

	t.Run("condition", func(t *testing.T) {
		c, err := CompileCondition(`failed_block == "boom" && error contains "REDACTED" && steps.call.output.status == 200`, InOnError())
		if err != nil {
			t.Fatal(err)
		}
		env, _, _ := newTestEnv()
		env.Failure = failure
		if ok, err := c.Eval(context.Background(), env); err != nil || !ok {
			t.Fatalf("got %v %v", ok, err)
		}
		_, err = CompileCondition(`error != ""`)
		var ee *Error
		if !errors.As(err, &ee) || !strings.Contains(ee.Message, "on_error") || ee.Line != 1 {
			t.Fatalf("outside on_error: %v", err)
		}
	})
}
