package engine

import (
	"context"
	"sync"

	"github.com/hushflow/hushflow/engine/fastpath"
)

// The fast path: fields in the subset package fastpath proves equal to
// JavaScript are evaluated by Go closures, without a goja runtime. This
// file wires it into Compile (fastCompile) and adapts Env.

func init() { fastCompile = compileFast }

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

// fastRun is one evaluation's state; pooled so that the hot path does not
// allocate it.
type fastRun struct {
	ctx   context.Context
	env   *Env
	in    fastpath.Env
	names []string
	vals  []string
}

var fastRuns = sync.Pool{New: func() any { return new(fastRun) }}

// Eval implements FastEvaluator. Secrets are resolved as the expression
// reads them (once per name), and reported through env.OnSecret, in read
// order, when the evaluation has succeeded and before the value is
// returned. Anything the fast path does not handle, including a secret that
// does not resolve, falls back to goja (ok=false), which then produces the
// error with its position and stack; OnSecret is never called twice for a
// read.
func (f *fastProgram) Eval(ctx context.Context, env *Env, maxOutput int) (any, bool, error) {
	if ctx.Err() != nil {
		return nil, false, nil
	}
	r := fastRuns.Get().(*fastRun)
	r.ctx, r.env = ctx, env
	r.in = fastpath.Env{Input: env.Input, Steps: env.Steps, Vars: env.Vars, Run: (*fastpath.Run)(&env.Run), Secrets: r}
	v, ok, err := f.p.Eval(&r.in, maxOutput)
	if ok && err == nil && env.OnSecret != nil {
		for i, name := range r.names {
			env.OnSecret(name, Scope{}, r.vals[i])
		}
	}
	clear(r.vals) // secret values do not outlive the evaluation
	r.names, r.vals = r.names[:0], r.vals[:0]
	r.ctx, r.env, r.in = nil, nil, fastpath.Env{}
	fastRuns.Put(r)
	if err != nil {
		return nil, false, nil
	}
	return v, ok, nil
}

// Secret implements fastpath.SecretSource.
func (r *fastRun) Secret(name string) (string, error) {
	for i, n := range r.names {
		if n == name {
			return r.vals[i], nil
		}
	}
	if r.env.Secrets == nil {
		return "", ErrUnknownSecret
	}
	v, err := r.env.Secrets.Resolve(r.ctx, name, Scope{})
	if err != nil {
		return "", err
	}
	r.names = append(r.names, name)
	r.vals = append(r.vals, v)
	return v, nil
}
