package engine

import (
	"fmt"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/token"

	"github.com/hushflow/hushflow/engine/jsvm"
)

// Static analysis: which fields may run in the server's own process.
//
// goja's Interrupt does not stop builtins and goja has no memory limit, so
// the server evaluates in-process only what this analysis proves bounded:
// time and memory linear in the size of the source and of the values it
// reads. Everything else runs in the sandbox pool.
//
// Bounded is an allowlist over the goja AST: literals; the identifiers
// secrets, input, steps, run, env, error, failed_block, undefined, NaN and
// Infinity; member
// access (also optional); template literals without a tag; object and array
// literals with plain properties and spread; unary, binary, logical,
// conditional and comma operators; and calls of a short list of linear-time
// functions. It excludes assignment (variables would let `s = s + s` double
// a string from a small source), ++/--, delete, function and class
// literals, `new`, `this`, regular expressions, await and yield. Code blocks
// are never bounded: a few const declarations double a string as well.

// maxBoundedRefs bounds how many values a bounded field reads, so that its
// result is at most maxBoundedRefs times its largest input value.
const maxBoundedRefs = 32

// boundedGlobals are the identifiers a bounded field may read.
var boundedGlobals = map[string]bool{
	"secrets": true, "input": true, "steps": true, "run": true, "env": true,
	"undefined": true, "NaN": true, "Infinity": true,
	"error": true, "failed_block": true, // strings, in on_error blocks
	"item": true, "index": true, // in the iterations of a block with each
}

// boundedFuncs are global functions a bounded field may call: each runs in
// time linear in its arguments and returns at most a constant factor more.
var boundedFuncs = map[string]bool{
	"encodeURIComponent": true, "encodeURI": true,
	"decodeURIComponent": true, "decodeURI": true,
	"String": true, "Number": true, "Boolean": true,
	"parseInt": true, "parseFloat": true, "isNaN": true, "isFinite": true,
}

// boundedStatics are Object.method calls a bounded field may make.
var boundedStatics = map[string]map[string]int{
	// JSON.stringify with one argument: an indent argument makes the output
	// quadratic in the depth. JSON.parse is recursive in the depth of its
	// input and stays out.
	"JSON": {"stringify": 1},
	"Math": {"abs": -1, "ceil": -1, "floor": -1, "round": -1, "trunc": -1,
		"sign": -1, "max": -1, "min": -1},
}

// boundedMethods are methods a bounded field may call on any value.
var boundedMethods = map[string]bool{
	"toUpperCase": true, "toLowerCase": true, "trim": true, "trimStart": true,
	"trimEnd": true, "startsWith": true, "endsWith": true, "includes": true,
	"indexOf": true, "slice": true, "substring": true, "at": true,
	"toString": true,
}

// analysis walks a field.
type analysis struct {
	refs   int
	reason string
}

// bounded reports whether s may run in-process, or why not.
func bounded(s *jsvm.Script) (bool, string) {
	if s.Kind != jsvm.Field {
		return false, "code blocks run in the sandbox"
	}
	a := &analysis{}
	ok := a.expr(s.Expr)
	if ok && a.refs > maxBoundedRefs {
		return false, fmt.Sprintf("reads more than %d values", maxBoundedRefs)
	}
	return ok, a.reason
}

func (a *analysis) no(format string, args ...any) bool {
	if a.reason == "" {
		a.reason = fmt.Sprintf(format, args...)
	}
	return false
}

func (a *analysis) exprs(list []ast.Expression) bool {
	for _, e := range list {
		if e != nil && !a.expr(e) {
			return false
		}
	}
	return true
}

func (a *analysis) expr(e ast.Expression) bool {
	switch e := e.(type) {
	case *ast.StringLiteral, *ast.NumberLiteral, *ast.BooleanLiteral, *ast.NullLiteral:
		return true
	case *ast.Identifier:
		if !boundedGlobals[string(e.Name)] {
			return a.no("reads %s", e.Name)
		}
		a.refs++
		return true
	case *ast.TemplateLiteral:
		if e.Tag != nil {
			return a.no("uses a tagged template")
		}
		return a.exprs(e.Expressions)
	case *ast.ArrayLiteral:
		return a.exprs(e.Value)
	case *ast.SpreadElement:
		return a.expr(e.Expression)
	case *ast.ObjectLiteral:
		for _, p := range e.Value {
			switch p := p.(type) {
			case *ast.PropertyKeyed:
				if p.Kind != ast.PropertyKindValue {
					return a.no("defines a %s property", p.Kind)
				}
				if p.Computed && !a.expr(p.Key) {
					return false
				}
				if !a.expr(p.Value) {
					return false
				}
			case *ast.PropertyShort:
				if p.Initializer != nil {
					return a.no("uses a property initializer")
				}
				if !a.expr(&p.Name) {
					return false
				}
			case *ast.SpreadElement:
				if !a.expr(p.Expression) {
					return false
				}
			default:
				return a.no("uses a %T property", p)
			}
		}
		return true
	case *ast.DotExpression:
		return a.expr(e.Left)
	case *ast.BracketExpression:
		return a.expr(e.Left) && a.expr(e.Member)
	case *ast.OptionalChain:
		return a.expr(e.Expression)
	case *ast.Optional:
		return a.expr(e.Expression)
	case *ast.UnaryExpression:
		switch e.Operator {
		case token.INCREMENT, token.DECREMENT, token.DELETE:
			return a.no("uses %s", e.Operator)
		}
		return a.expr(e.Operand)
	case *ast.BinaryExpression:
		return a.expr(e.Left) && a.expr(e.Right)
	case *ast.ConditionalExpression:
		return a.expr(e.Test) && a.expr(e.Consequent) && a.expr(e.Alternate)
	case *ast.SequenceExpression:
		return a.exprs(e.Sequence)
	case *ast.CallExpression:
		return a.call(e)
	case nil:
		return true
	}
	return a.no("uses %T", e)
}

func (a *analysis) call(c *ast.CallExpression) bool {
	switch f := c.Callee.(type) {
	case *ast.Identifier:
		if !boundedFuncs[string(f.Name)] {
			return a.no("calls %s", f.Name)
		}
		return a.exprs(c.ArgumentList)
	case *ast.DotExpression:
		name := string(f.Identifier.Name)
		if obj, ok := f.Left.(*ast.Identifier); ok {
			if methods, ok := boundedStatics[string(obj.Name)]; ok {
				n, ok := methods[name]
				if !ok {
					return a.no("calls %s.%s", obj.Name, name)
				}
				if n >= 0 && len(c.ArgumentList) > n {
					return a.no("calls %s.%s with %d arguments", obj.Name, name, len(c.ArgumentList))
				}
				return a.exprs(c.ArgumentList)
			}
		}
		if !boundedMethods[name] {
			return a.no("calls .%s()", name)
		}
		return a.expr(f.Left) && a.exprs(c.ArgumentList)
	}
	return a.no("calls a computed function")
}
