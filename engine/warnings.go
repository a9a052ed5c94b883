package engine

import (
	"fmt"
	"reflect"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/token"
)

// relational are the operators goja chains right to left: it reads
// `a < b < c` as `a < (b < c)`, where JavaScript reads `(a < b) < c`.
var relational = map[token.Token]bool{
	token.LESS: true, token.GREATER: true, token.LESS_OR_EQUAL: true, token.GREATER_OR_EQUAL: true,
	token.IN: true, token.INSTANCEOF: true,
}

// Warnings lists what in the program goja evaluates differently from
// other JavaScript engines and the editor should point out when the flow
// is saved (docs/engine.md, "Differences from JavaScript"): chained
// comparisons without parentheses (`3 > 2 > 1` is true here, false in
// V8). Each warning names the line and column.
func (p *Program) Warnings() []string {
	s := p.c.script
	var out []string
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
	if s.Expr != nil {
		walkAST(reflect.ValueOf(s.Expr), visit)
	}
	for _, st := range s.Body {
		walkAST(reflect.ValueOf(st), visit)
	}
	return out
}
