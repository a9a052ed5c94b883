package engine

import (
	"context"

	"github.com/hushflow/hushflow/engine/fastpath"
)

// The fast path: fields in the subset package fastpath proves equal to
// JavaScript are evaluated by Go closures, without a goja runtime. This
// file is what Compile calls for a field (compileFast) and adapts Env.

// fastProgram is the FastEvaluator of one field.
type fastProgram struct{ p *fastpath.Program }

func compileFast(kind Kind, src string) (FastEvaluator, bool) {
	if kind != Field {
		return nil, false
	}
	p, ok := fastpath.Compile(src)
	if !ok {
		return nil, false
	}
	return &fastProgram{p}, true
}

// envSecrets is the fast path's SecretSource over an Env: a conversion of
// the caller's *Env, so that an evaluation allocates no adapter.
type envSecrets Env

// Secret implements fastpath.SecretSource.
func (e *envSecrets) Secret(ctx context.Context, name string) (string, error) {
	if e.Secrets == nil {
		return "", ErrUnknownSecret
	}
	return e.Secrets.Resolve(ctx, name, Scope{})
}

// Eval implements FastEvaluator. Secrets are resolved as the expression
// reads them (once per name), and reported through env.OnSecret, in read
// order, when the evaluation has succeeded and before the value is
// returned. Anything the fast path does not handle, including a secret that
// does not resolve, falls back to goja (ok=false), which then produces the
// error with its position and stack; OnSecret is never called twice for a
// read. The evaluation's state (fastpath.Env, with the values read) lives on
// this function's stack.
func (f *fastProgram) Eval(ctx context.Context, env *Env, maxOutput int) (any, bool, error) {
	if ctx.Err() != nil {
		return nil, false, nil
	}
	var in fastpath.Env
	in.Ctx, in.Input, in.Steps, in.Vars = ctx, env.Input, env.Steps, env.Vars
	in.Run, in.Secrets = (*fastpath.Run)(&env.Run), (*envSecrets)(env)
	in.Failure = (*fastpath.Failure)(env.Failure)
	v, ok, err := f.p.Eval(&in, maxOutput)
	if ok && err == nil && env.OnSecret != nil {
		for i := range in.NumReads() {
			name, v := f.p.Read(&in, i)
			env.OnSecret(name, Scope{}, v)
		}
	}
	in.ClearReads() // secret values do not outlive the evaluation
	if err != nil {
		return nil, false, nil
	}
	return v, ok, nil
}

// Constant returns the value of a field that reads nothing (a literal such
// as '2h', or literals combined): what every run gives it, so that a flow
// can be checked when it is saved. ok is false for any other program.
func (p *Program) Constant() (v any, ok bool) {
	if fp, isFast := p.c.fast.(*fastProgram); isFast {
		return fp.p.Constant()
	}
	return nil, false
}
