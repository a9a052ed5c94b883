package engine

import (
	"reflect"
	"sort"

	"github.com/dop251/goja/ast"
)

// Refs are the names an expression or code block references, found by
// static analysis. Each list is sorted and has no duplicates.
type Refs struct {
	// Secrets are the names read as secrets.X, secrets["X"] or
	// secrets.get("X", ...).
	Secrets []string
	// Steps are the block ids read as steps.Y or steps["Y"].
	Steps []string
	// Inputs are the top-level input keys read as input.Z or input["Z"].
	Inputs []string
	// DynamicSecrets is true when a secret name is computed at run time
	// (secrets[name], secrets.get(name)): such names cannot be checked when
	// the flow is saved.
	DynamicSecrets bool
	// Each is true when the program reads `item` or `index` (the names of
	// the iterations of a block with each) and does not bind that name
	// itself (a parameter, a declaration, a destructuring): a program
	// that binds it somewhere is given the benefit of the doubt.
	Each bool
	// LongestLiteral is the length in bytes of the longest string literal
	// or piece of template text, not counting the names of secrets["X"],
	// steps["X"], input["X"] and secrets.get("X"): a field that must not
	// hold a credential in clear can refuse long ones.
	LongestLiteral int
}

// References returns the secret, step and input names the program uses,
// so that saving a flow can warn about a name that does not resolve in a
// scope.
//
// The analysis is syntactic: it does not follow variables (`const s =
// secrets; s.X` is reported as dynamic only if written as a computed
// access) and it ignores shadowing, so it may list a name the code never
// reads, never the reverse for the forms above.
func (p *Program) References() Refs {
	w := &refWalker{}
	p.walk(w.visit)
	return Refs{
		Secrets:        uniq(w.secrets),
		Steps:          uniq(w.steps),
		Inputs:         uniq(w.inputs),
		DynamicSecrets: w.dynamic,
		LongestLiteral: w.longest,
		Each:           w.readsEach(),
	}
}

// readsEach reports whether item or index is read and never bound.
func (w *refWalker) readsEach() bool {
	for _, name := range []string{"item", "index"} {
		if w.eachReads[name] > 0 && !w.eachBound[name] {
			return true
		}
	}
	return false
}

// noteBinding records a binding target that names item or index.
func (w *refWalker) noteBinding(t ast.Node) {
	id, ok := t.(*ast.Identifier)
	if !ok || id == nil || (id.Name != "item" && id.Name != "index") {
		return
	}
	if w.eachBound == nil {
		w.eachBound = map[string]bool{}
	}
	w.eachBound[string(id.Name)] = true
}

// refWalker visits every node of a goja AST. goja's ast package has no
// walker, so it goes through the node structs by reflection: every field
// that holds a node, a slice of nodes or a struct of nodes is visited.
type refWalker struct {
	secrets, steps, inputs []string
	dynamic                bool
	longest                int
	names                  map[*ast.StringLiteral]bool // literals that are names
	// eachReads counts the identifiers item and index (bindings
	// included, see readsEach); eachBound are those the program binds.
	eachReads map[string]int
	eachBound map[string]bool
}

var nodeType = reflect.TypeOf((*ast.Node)(nil)).Elem()

// walk calls visit for every node of the program: its expression (a
// field) or its statements (a code block).
func (p *Program) walk(visit func(ast.Node)) {
	s := p.c.script
	if s.Expr != nil {
		walkAST(reflect.ValueOf(s.Expr), visit)
	}
	for _, st := range s.Body {
		walkAST(reflect.ValueOf(st), visit)
	}
}

// walkAST calls visit for every node under v.
func walkAST(v reflect.Value, visit func(ast.Node)) {
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return
		}
		if v.Type().Implements(nodeType) {
			if n, ok := v.Interface().(ast.Node); ok {
				visit(n)
			}
		}
		walkAST(v.Elem(), visit)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				walkAST(v.Field(i), visit)
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			walkAST(v.Index(i), visit)
		}
	}
}

// secretMethods are the properties of `secrets` that are not secret names
// (see jsvm's secrets object).
var secretMethods = map[string]bool{
	"get": true, "mask": true, "then": true, "toJSON": true, "toString": true,
	"valueOf": true, "constructor": true, "hasOwnProperty": true, "isPrototypeOf": true,
	"propertyIsEnumerable": true, "toLocaleString": true, "__proto__": true,
}

func (w *refWalker) visit(n ast.Node) {
	switch n := n.(type) {
	case *ast.Identifier:
		if n.Name == "item" || n.Name == "index" {
			if w.eachReads == nil {
				w.eachReads = map[string]int{}
			}
			w.eachReads[string(n.Name)]++
		}
	case *ast.Binding:
		w.noteBinding(n.Target)
	case *ast.ForDeclaration:
		w.noteBinding(n.Target)
	case *ast.CatchStatement:
		w.noteBinding(n.Parameter)
	case *ast.FunctionLiteral:
		w.noteBinding(n.Name)
	case *ast.ClassLiteral:
		w.noteBinding(n.Name)
	case *ast.ArrayPattern:
		for _, e := range n.Elements {
			w.noteBinding(e)
		}
	case *ast.PropertyShort:
		// {item} in a pattern binds it; in an object literal it reads it
		// (not seen as a read: its name is not an *Identifier).
		w.noteBinding(&n.Name)
	case *ast.StringLiteral:
		if !w.names[n] {
			w.longest = max(w.longest, len(n.Value.String()))
		}
	case *ast.TemplateElement:
		w.longest = max(w.longest, len(n.Parsed.String()))
	case *ast.DotExpression:
		w.member(n.Left, string(n.Identifier.Name), true)
	case *ast.BracketExpression:
		if s, ok := n.Member.(*ast.StringLiteral); ok {
			if isIdent(n.Left, "secrets") || isIdent(n.Left, "steps") || isIdent(n.Left, "input") {
				w.name(s)
			}
			w.member(n.Left, s.Value.String(), true)
		} else {
			w.member(n.Left, "", false)
		}
	case *ast.CallExpression:
		d, ok := n.Callee.(*ast.DotExpression)
		if !ok || !isIdent(d.Left, "secrets") || d.Identifier.Name != "get" {
			return
		}
		if len(n.ArgumentList) > 0 {
			if s, ok := n.ArgumentList[0].(*ast.StringLiteral); ok {
				w.name(s)
				w.secrets = append(w.secrets, s.Value.String())
				return
			}
		}
		w.dynamic = true
	}
}

// name marks s as a name, not text.
func (w *refWalker) name(s *ast.StringLiteral) {
	if w.names == nil {
		w.names = map[*ast.StringLiteral]bool{}
	}
	w.names[s] = true
}

func (w *refWalker) member(left ast.Expression, key string, constant bool) {
	if o, ok := left.(*ast.Optional); ok { // input?.x
		left = o.Expression
	}
	id, ok := left.(*ast.Identifier)
	if !ok {
		return
	}
	switch id.Name {
	case "secrets":
		switch {
		case !constant:
			w.dynamic = true
		case !secretMethods[key]:
			w.secrets = append(w.secrets, key)
		}
	case "steps":
		if constant {
			w.steps = append(w.steps, key)
		}
	case "input":
		if constant {
			w.inputs = append(w.inputs, key)
		}
	}
}

func isIdent(e ast.Expression, name string) bool {
	id, ok := e.(*ast.Identifier)
	return ok && string(id.Name) == name
}

// uniq sorts and deduplicates names; none gives nil.
func uniq(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	out := names[:1]
	for _, n := range names[1:] {
		if n != out[len(out)-1] {
			out = append(out, n)
		}
	}
	return out
}
