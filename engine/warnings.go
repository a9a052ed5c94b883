package engine

import (
	"fmt"
	"sync"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/token"

	"github.com/hushflow/hushflow/internal/suggest"
)

// relational are the operators goja chains right to left: it reads
// `a < b < c` as `a < (b < c)`, where JavaScript reads `(a < b) < c`.
var relational = map[token.Token]bool{
	token.LESS: true, token.GREATER: true, token.LESS_OR_EQUAL: true, token.GREATER_OR_EQUAL: true,
	token.IN: true, token.INSTANCEOF: true,
}

// Warnings lists what the editor should point out when the flow is saved,
// each with its line and column: names the program reads that nothing
// defines (unknownNames), and what goja evaluates differently from other
// JavaScript engines (docs/engine.md, "Differences from JavaScript"):
// chained comparisons without parentheses (`3 > 2 > 1` is true here,
// false in V8).
func (p *Program) Warnings() []string {
	out := p.unknownNames()
	s := p.c.script
	seen := map[*ast.BinaryExpression]bool{} // walkAST meets a node as an interface and as a pointer
	visit := func(n ast.Node) {
		b, ok := n.(*ast.BinaryExpression)
		if !ok || !relational[b.Operator] || seen[b] {
			return
		}
		seen[b] = true
		r, ok := b.Right.(*ast.BinaryExpression)
		if !ok || !relational[r.Operator] || s.Before(r.Idx0()) == '(' {
			return // `a < (b < c)` means what it says
		}
		line, col := s.Pos(b.Idx0())
		out = append(out, fmt.Sprintf("%d:%d: a chained comparison (a %s b %s c) is evaluated right to left, as a %s (b %s c), unlike JavaScript engines: write (a %s b) %s c, or a %s b && b %s c",
			line, col, b.Operator, r.Operator, b.Operator, r.Operator, b.Operator, r.Operator, b.Operator, r.Operator))
	}
	p.walk(visit)
	return out
}

// unknownNames warns of each name the program reads that nothing defines:
// not a global of the runtime (globalNames), and bound nowhere in the
// program (a declaration, a parameter, a function or class name, a catch
// parameter, a label). Such a read fails with a ReferenceError when its
// line runs (`stpes.call`, `secret.API_TOKEN`), which may be long after
// the flow was saved, or never in a test. Scopes are not followed: a name
// bound anywhere counts as bound everywhere, so a warning is never wrong
// about a name being defined, only silent about some misuses. A name read
// only through `typeof` is not reported (`typeof x` does not throw).
func (p *Program) unknownNames() []string {
	s := p.c.script
	bound := map[string]bool{}
	skip := map[*ast.Identifier]bool{}
	var reads []*ast.Identifier
	visit := func(n ast.Node) {
		switch n := n.(type) {
		case *ast.Identifier:
			reads = append(reads, n)
		case *ast.Binding:
			bindNames(n.Target, bound)
		case *ast.ForDeclaration:
			bindNames(n.Target, bound)
		case *ast.CatchStatement:
			bindNames(n.Parameter, bound)
		case *ast.FunctionLiteral:
			bindNames(n.Name, bound)
			if n.ParameterList != nil {
				bindNames(n.ParameterList.Rest, bound) // ...rest
			}
		case *ast.ArrowFunctionLiteral:
			if n.ParameterList != nil {
				bindNames(n.ParameterList.Rest, bound)
			}
		case *ast.ClassLiteral:
			bindNames(n.Name, bound)
		case *ast.LabelledStatement:
			bindNames(n.Label, bound)
		case *ast.BranchStatement:
			bindNames(n.Label, bound)
		case *ast.MetaProperty: // new.target
			skip[n.Meta], skip[n.Property] = true, true
		case *ast.UnaryExpression:
			if id, ok := n.Operand.(*ast.Identifier); ok && n.Operator == token.TYPEOF {
				skip[id] = true
			}
		}
	}
	p.walk(visit)
	known := runtimeGlobals()
	var out []string
	warned := map[string]bool{}
	for _, id := range reads {
		name := string(id.Name)
		if skip[id] || bound[name] || known[name] || warned[name] {
			continue
		}
		warned[name] = true
		line, col := s.Pos(id.Idx0())
		msg := fmt.Sprintf("%d:%d: unknown name %s: it is defined nowhere, so reading it fails when this line runs", line, col, name)
		if near := suggest.Nearest(name, scriptNames); near != "" {
			msg += fmt.Sprintf("; did you mean %q?", near)
		}
		out = append(out, msg)
	}
	return out
}

// bindNames adds the names a binding target binds: an identifier, or
// the identifiers of a destructuring pattern (with defaults and rests).
func bindNames(t ast.Node, bound map[string]bool) {
	switch t := t.(type) {
	case *ast.Identifier:
		if t != nil {
			bound[string(t.Name)] = true
		}
	case *ast.ArrayPattern:
		for _, e := range t.Elements {
			bindNames(e, bound)
		}
		bindNames(t.Rest, bound)
	case *ast.ObjectPattern:
		for _, pr := range t.Properties {
			switch pr := pr.(type) {
			case *ast.PropertyShort:
				bound[string(pr.Name.Name)] = true
			case *ast.PropertyKeyed:
				bindNames(pr.Value, bound)
			case *ast.SpreadElement:
				bindNames(pr.Expression, bound)
			}
		}
		bindNames(t.Rest, bound)
	case *ast.AssignExpression: // a default: [a = 1], {a = 1}
		bindNames(t.Left, bound)
	case *ast.Binding:
		bindNames(t.Target, bound)
	}
}

// scriptNames are the names Hushflow gives a script, suggested for a
// mistyped one. item and index (a block with each) and error and
// failed_block (an on_error handler) are defined only there; other checks
// of the flow say so.
var scriptNames = []string{"secrets", "input", "steps", "run", "env", "console", "btoa", "atob",
	"item", "index", "error", "failed_block"}

// runtimeGlobals are the names a script may read without defining them:
// scriptNames, the language's own globals as goja defines them (Object,
// JSON, Math, parseInt, undefined, ...), and `arguments`.
var runtimeGlobals = sync.OnceValue(func() map[string]bool {
	known := map[string]bool{"arguments": true}
	for _, n := range scriptNames {
		known[n] = true
	}
	rt := goja.New()
	v, err := rt.RunString("Object.getOwnPropertyNames(globalThis)")
	if err == nil {
		var names []string
		if rt.ExportTo(v, &names) == nil {
			for _, n := range names {
				known[n] = true
			}
		}
	}
	return known
})
