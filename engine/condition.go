package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/expr-lang/expr/file"

	"github.com/hushflow/hushflow/engine/exprvm"

	"github.com/hushflow/hushflow/engine/ordered"
	"github.com/hushflow/hushflow/internal/suggest"
)

// Condition is a compiled expr-lang condition: a block's `if` or an event
// trigger's `filter`. It is compiled and type-checked when the flow is
// saved (CompileCondition) and evaluated many times, concurrently (Eval).
//
// A condition sees the same names as a field: `input`, `steps`, `run`,
// `env` and `secrets`. Secrets are lazy: a name is resolved only when the
// condition reads it.
type Condition struct {
	src  string
	prog *exprvm.Program
}

// CompileCondition parses and type-checks src as an expr-lang expression
// that must evaluate to a boolean. Errors are *Error with Lang Expr, a
// 1-based Line and Column and the source line as Snippet, wrapping
// ErrSyntax: unknown names (`stpes.call`), unknown `run` fields, type
// mismatches (`env.X + 1`) and non-boolean results are caught here, before
// anything runs.
func CompileCondition(src string, opts ...ConditionOption) (*Condition, error) {
	var co conditionOptions
	for _, opt := range opts {
		opt(&co)
	}
	o := exprvm.Options{Failure: co.onError, Each: co.each}
	if len(src) > DefaultMaxFieldSource {
		return nil, &Error{Lang: Expr, Err: ErrSourceTooLarge,
			Message: fmt.Sprintf("the condition is %d bytes, over the limit of %d bytes", len(src), DefaultMaxFieldSource)}
	}
	p, err := exprvm.Compile(src, o)
	if err != nil {
		return nil, exprError(src, err, ErrSyntax)
	}
	return &Condition{src: src, prog: p}, nil
}

// ConditionOption configures CompileCondition.
type ConditionOption func(*conditionOptions)

type conditionOptions struct{ onError, each bool }

// InEach compiles the condition of a block with each, evaluated per
// iteration: `item` (any JSON value) and `index` (an int, Env.Each) are in
// scope. Without it they are unknown names, caught at compile time.
func InEach() ConditionOption { return func(o *conditionOptions) { o.each = true } }

// InOnError compiles the condition of a block of a flow's on_error
// handler: `error` and `failed_block` (strings, Env.Failure) are in scope.
// Without it they are unknown names, caught at compile time.
func InOnError() ConditionOption { return func(o *conditionOptions) { o.onError = true } }

// Source returns the condition's source.
func (c *Condition) Source() string { return c.src }

// References returns the names the condition reads, as References does for
// JavaScript.
func (c *Condition) References() Refs {
	r := c.prog.References()
	return Refs{Secrets: r.Secrets, Steps: r.Steps, Inputs: r.Inputs}
}

// Eval evaluates the condition. Secrets resolve through env.Secrets with
// the run's scope, once per name and evaluation, and each read is reported
// through env.OnSecret before the condition uses the value. Errors are
// *Error with Lang Expr wrapping ErrException (and the Resolver's error
// for a secret that does not resolve), or ErrCanceled when ctx is done.
func (c *Condition) Eval(ctx context.Context, env *Env) (bool, error) {
	if env == nil {
		env = &Env{}
	}
	if err := ctx.Err(); err != nil {
		return false, &Error{Lang: Expr, Block: env.Run.Block, Message: "evaluation canceled: " + err.Error(),
			Err: &joined{ErrCanceled, err}}
	}
	st := condStates.Get().(*condState)
	st.ctx, st.env = ctx, env
	st.in = exprvm.Env{
		Input:   plainInput(env.Input),
		Steps:   env.Steps,
		Run:     exprvm.Run(env.Run),
		Vars:    env.Vars,
		Secrets: st,
	}
	if f := env.Failure; f != nil {
		st.in.Error, st.in.FailedBlock = f.Error, f.FailedBlock
	}
	if e := env.Each; e != nil {
		st.in.Item, st.in.Index = plainInput(e.Item), e.Index
	}
	out, err := c.prog.RunWith(&st.ev, &st.in)
	st.reset()
	condStates.Put(st)
	if err != nil {
		e := exprError(c.src, err, ErrException)
		e.Block = env.Run.Block
		return false, e
	}
	b, ok := out.(bool)
	if !ok {
		return false, &Error{Lang: Expr, Block: env.Run.Block, Err: ErrException,
			Message: fmt.Sprintf("the condition evaluated to %s, not a boolean", describe(out))}
	}
	return b, nil
}

func describe(v any) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("a value of type %T", v)
}

// condState is one evaluation's environment and secret reads; pooled.
type condState struct {
	ctx   context.Context
	env   *Env
	in    exprvm.Env
	ev    exprvm.Evaluator
	names []string
	vals  []string
}

var condStates = sync.Pool{New: func() any { return new(condState) }}

func (st *condState) reset() {
	clear(st.vals) // secret values do not outlive the evaluation
	st.names, st.vals = st.names[:0], st.vals[:0]
	st.ctx, st.env, st.in = nil, nil, exprvm.Env{}
}

// Secret implements exprvm.SecretSource.
func (st *condState) Secret(name string) (string, error) {
	for i, n := range st.names {
		if n == name {
			return st.vals[i], nil
		}
	}
	if st.env.Secrets == nil {
		return "", fmt.Errorf("secret %q is not defined: this evaluation has no secrets: %w", name, ErrUnknownSecret)
	}
	v, err := st.env.Secrets.Resolve(st.ctx, name, Scope{})
	if err != nil {
		return "", err
	}
	if st.env.OnSecret != nil {
		st.env.OnSecret(name, Scope{}, v)
	}
	st.names = append(st.names, name)
	st.vals = append(st.vals, v)
	return v, nil
}

// exprError converts an expr error into an *Error wrapping sentinel (and
// the Go cause, when there is one).
func exprError(src string, err error, sentinel error) *Error {
	e := &Error{Lang: Expr, Message: err.Error(), Err: sentinel}
	var fe *file.Error
	if errors.As(err, &fe) {
		e.Message = conditionMessage(fe.Message)
		if fe.Snippet != "" || fe.Line > 0 {
			e.Line, e.Column = fe.Line, fe.Column+1
			e.Snippet = sourceLine(src, fe.Line)
		}
		if cause := fe.Unwrap(); cause != nil {
			e.Err = &joined{sentinel, cause}
		}
	}
	return e
}

// runFields are the fields of `run` in a condition (exprvm.Run), and
// conditionNames the names a condition may start with.
var (
	runFields      = []string{"id", "flow", "project", "environment", "block"}
	conditionNames = []string{"steps", "input", "secrets", "env", "run", "item", "index", "error", "failed_block"}
)

// conditionMessage rewrites expr-lang's messages that name its internals
// or miss a likely fix: "type exprvm.Run has no field projet" (a Go type
// the author never wrote) says "run has no field projet; did you mean
// \"project\"?", "unknown name stpes" adds "did you mean \"steps\"?", and
// `===` says that conditions compare with `==`.
func conditionMessage(msg string) string {
	if name, ok := strings.CutPrefix(msg, "type exprvm.Run has no field "); ok {
		out := "run has no field " + name
		if near := suggest.Nearest(name, runFields); near != "" {
			return out + fmt.Sprintf("; did you mean %q?", near)
		}
		return out + "; its fields are " + strings.Join(runFields, ", ")
	}
	if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
		if near := suggest.Nearest(name, conditionNames); near != "" {
			return msg + fmt.Sprintf("; did you mean %q?", near)
		}
	}
	if msg == `unexpected token Operator("=")` {
		return msg + ": conditions compare with == and != (expr-lang, not JavaScript: no === or !==)"
	}
	return msg
}

// sourceLine returns line n (1-based) of src, cut to 200 bytes.
func sourceLine(src string, n int) string {
	lines := strings.SplitN(src, "\n", n+1)
	if n < 1 || n > len(lines) {
		return ""
	}
	s := lines[n-1]
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// plainInput is the input as expr-lang reads it: an *Object (DecodeJSON)
// as maps, converted once per Object; anything else as it is, unless it
// is an array (which DecodeJSON may fill with Objects).
func plainInput(v any) any {
	switch x := v.(type) {
	case *ordered.Object:
		return x.Plain()
	case []any:
		return ordered.Plain(x)
	}
	return v
}
