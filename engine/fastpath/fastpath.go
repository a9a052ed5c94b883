// Package fastpath evaluates a small subset of JavaScript expressions in Go,
// without a goja runtime, with exactly the meaning goja gives them.
//
// The subset is what block configuration fields mostly are:
//
//   - literals: strings, numbers, true, false, null;
//   - member paths with constant keys on `secrets`, `input` and `steps`
//     (`secrets.API_TOKEN`, `secrets["API_TOKEN"]`, `input.user.name`,
//     `input.items[0]`, `steps.call.output.status`);
//   - untagged template literals and `+` where one side is a string;
//   - comparisons (`== != === !== < <= > >=`) with a literal on one side;
//   - `&&`, `||` and `!` on booleans;
//   - object and array literals with constant keys.
//
// A program reads at most MaxSecrets distinct secret names.
//
// Compile accepts a source only if every node is in the subset. Eval then
// checks the run-time types of the referenced paths (a path that is missing,
// or whose value has a type the compiled meaning was not proven for) and
// reports ok=false, and the caller evaluates the source with goja instead.
// All such checks run before the first secret is read, so a fallback never
// reads a secret twice.
//
// The package does not import engine (engine imports it); engine adapts its
// Env to this package's Env.
package fastpath

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja/token"

	"github.com/hushflow/hushflow/engine/ordered"
)

// SecretSource resolves `secrets.NAME` for one evaluation. Eval calls it
// at most once per name and evaluation (it remembers the values in its
// Env) and records each read; reporting the reads (audit, redaction) is
// the caller's, after Eval (Env.NumReads, Program.Read).
type SecretSource interface {
	Secret(ctx context.Context, name string) (string, error)
}

// MaxSecrets is the number of distinct secret names a fast-path program may
// read; Compile leaves a source that reads more to goja.
const MaxSecrets = 8

// Env is the input of one evaluation: the values scripts see as `input`,
// `steps`, `env`, `run` and `secrets`, and the secrets the evaluation read.
// An Env is used by one Eval at a time; it is small enough to live on the
// caller's stack.
type Env struct {
	Ctx     context.Context // passed to Secrets
	Input   any
	Steps   map[string]any
	Vars    map[string]string
	Run     *Run // nil is a run with empty fields
	Secrets SecretSource
	// Failure is `error` and `failed_block`, set only in the blocks of an
	// on_error handler; nil leaves an expression that reads them to goja
	// (where they are not defined).
	Failure *Failure

	// The secrets read by the last Eval: vals by the program's name
	// index, order in the order of the reads.
	vals   [MaxSecrets]string
	order  [MaxSecrets]uint8
	nreads uint8
	seen   uint8 // bit i: vals[i] holds the program's name i
}

// NumReads is the number of secrets the last Eval with env read.
func (env *Env) NumReads() int { return int(env.nreads) }

// ClearReads forgets the values read, so that they do not outlive the
// evaluation in env.
func (env *Env) ClearReads() {
	if env.seen != 0 {
		clear(env.vals[:])
	}
	env.nreads, env.seen = 0, 0
}

// Read returns the i-th secret (0 <= i < env.NumReads()), in the order of
// the reads, that the last Eval of p with env read; each name is read once
// per evaluation.
func (p *Program) Read(env *Env, i int) (name, value string) {
	k := env.order[i]
	return p.names[k], env.vals[k]
}

// Failure is `error` and `failed_block` (see Env.Failure).
type Failure struct {
	Error, FailedBlock string
}

// Run is `run`.
type Run struct {
	ID, Flow, Project, Environment, Block string
}

// Program is a compiled fast-path expression. It is safe for concurrent use.
type Program struct {
	root *node
	// leaves are the input/steps paths with the type each use requires;
	// Eval checks them all before evaluating.
	leaves []*node
	// secrets is true when the expression reads a secret.
	secrets bool
	// names are the distinct secret names it reads (Read).
	names []string
}

// Constant returns the value of a program that reads nothing (literals,
// and operations on literals): what every evaluation gives.
func (p *Program) Constant() (any, bool) {
	if !p.root.constant() {
		return nil, false
	}
	v, ok, err := p.Eval(&Env{}, 1<<20)
	return v, ok && err == nil
}

// constant reports whether n and its kids read nothing.
func (n *node) constant() bool {
	switch n.op {
	case opPath, opRun, opSecret:
		return false
	}
	for _, k := range n.kids {
		if !k.constant() {
			return false
		}
	}
	return true
}

// Eval evaluates the program. The result is what goja's evaluation
// exports: nil, bool, int64, float64, string, []any or map[string]any.
//
// ok=false means the expression must be evaluated by goja instead: a path
// is missing or holds a type not proven here, the result is not a JSON
// value (NaN, Infinity) or is larger than maxOutput bytes counted as JSON.
// Paths are checked before the first secret read, so a fallback reads no
// secret unless the secret's own read failed or its value is not valid
// UTF-8. A non-nil error is the SecretSource's error, with ok=true.
// Each secret is asked of env.Secrets once; env then lists the reads
// (NumReads, Read) until its next Eval.
func (p *Program) Eval(env *Env, maxOutput int) (v any, ok bool, err error) {
	env.ClearReads()
	for _, l := range p.leaves {
		if _, ok := l.get(env); !ok {
			return nil, false, nil
		}
	}
	if p.secrets && env.Secrets == nil {
		return nil, false, nil
	}
	if p.root.op == opConcat || p.root.op == opSecret {
		// A string: no value to convert.
		s, ok, err := p.root.str(env)
		if !ok || err != nil {
			return nil, ok, err
		}
		if len(s)+2 > maxOutput {
			return nil, false, nil
		}
		return s, true, nil
	}
	r, ok, err := p.root.eval(env)
	if !ok || err != nil {
		return nil, ok, err
	}
	switch r.k {
	case kString:
		if len(r.s)+2 > maxOutput {
			return nil, false, nil
		}
		return r.s, true, nil
	case kNumber:
		if math.IsNaN(r.f) || math.IsInf(r.f, 0) {
			return nil, false, nil
		}
	case kObject:
		if n, ok := size(r.o); !ok || n > maxOutput {
			return nil, false, nil
		}
	}
	return r.export(), true, nil
}

// size is the size jsvm's exporter counts for an exported value (JSON
// bytes, roughly), or false for a value that is not JSON (NaN, Infinity).
func size(x any) (int, bool) {
	switch x := x.(type) {
	case nil:
		return 4, true
	case bool:
		return 5, true
	case int64:
		return 8, true
	case float64:
		return 8, !math.IsNaN(x) && !math.IsInf(x, 0)
	case string:
		return len(x) + 2, true
	case []any:
		n := len(x) + 2
		for _, e := range x {
			m, ok := size(e)
			if !ok {
				return 0, false
			}
			n += m
		}
		return n, true
	case map[string]any:
		n := 2
		for k, e := range x {
			m, ok := size(e)
			if !ok {
				return 0, false
			}
			n += m + len(k) + 4
		}
		return n, true
	}
	return 0, false
}

// kind is the JavaScript type of a value.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kObject // an object or array literal, already exported
)

// value is a JavaScript primitive, or an exported object literal.
type value struct {
	k kind
	b bool
	f float64
	s string
	o any
}

// export returns the value as goja's Value.Export would.
func (v value) export() any {
	switch v.k {
	case kBool:
		return v.b
	case kNumber:
		if i, ok := floatToInt(v.f); ok {
			return i
		}
		return v.f
	case kString:
		return v.s
	case kObject:
		return v.o
	}
	return nil
}

// maxInt is 2^53, the bound goja keeps integers in (valueInt).
const maxInt = 1 << 53

// floatToInt mirrors goja's floatToInt: goja represents a number as an
// int64 (exported as int64) when it is an integer within ±2^53 other than -0.
func floatToInt(f float64) (int64, bool) {
	if (f != 0 || !math.Signbit(f)) && !math.IsInf(f, 0) && f == math.Trunc(f) && f >= -maxInt && f <= maxInt {
		return int64(f), true
	}
	return 0, false
}

// toString is JavaScript's ToString for the primitives the string contexts
// accept (see acceptString).
func (v value) toString() string {
	switch v.k {
	case kString:
		return v.s
	case kBool:
		if v.b {
			return "true"
		}
		return "false"
	case kNull:
		return "null"
	case kNumber:
		switch {
		case math.IsNaN(v.f):
			return "NaN"
		case math.IsInf(v.f, 1):
			return "Infinity"
		case math.IsInf(v.f, -1):
			return "-Infinity"
		}
		if v.f == 0 {
			return "0" // also -0
		}
		i, _ := floatToInt(v.f)
		return strconv.FormatInt(i, 10)
	}
	return ""
}

// Acceptance predicates: the types a path's value may have in a context,
// for which this package's meaning is proven equal to JavaScript's.

// acceptString: a string context (template, + with a string) calls
// ToString; proven for strings, booleans, null, integers within ±2^53 and
// the non-finite numbers.
func acceptString(v value) bool {
	switch v.k {
	case kString, kBool, kNull:
		return true
	case kNumber:
		if math.IsNaN(v.f) || math.IsInf(v.f, 0) || v.f == 0 {
			return true
		}
		_, ok := floatToInt(v.f)
		return ok
	}
	return false
}

func acceptOnlyString(v value) bool { return v.k == kString }
func acceptBool(v value) bool       { return v.k == kBool }
func acceptPrimitive(v value) bool  { return v.k != kObject }

// static is the type of a node when it is known at compile time.
type static uint8

const (
	sDynamic static = iota // a path: known only at run time
	sString
	sBool
	sNumber
	sNull
	sObject
)

type compiler struct {
	leaves  []*node
	secrets []string // distinct secret names, in order of first appearance
}

// Compile parses src and returns a program when the whole expression is in
// the fast-path subset; ok=false means "use goja" (also for syntax errors,
// which goja reports).
func Compile(src string) (p *Program, ok bool) {
	if len(src) > 4096 {
		return nil, false
	}
	// Parenthesized as jsvm wraps a field, so that "{...}" is an object.
	prog, err := parser.ParseFile(nil, "", "(\n"+src+"\n)", 0)
	if err != nil || len(prog.Body) != 1 || len(prog.DeclarationList) != 0 {
		return nil, false
	}
	st, isExpr := prog.Body[0].(*ast.ExpressionStatement)
	if !isExpr {
		return nil, false
	}
	c := &compiler{}
	n, typ, ok := c.expr(st.Expression)
	if !ok {
		return nil, false
	}
	if typ == sDynamic {
		n.accept = acceptPrimitive
	}
	return &Program{root: n, leaves: c.leaves, secrets: len(c.secrets) > 0, names: c.secrets}, true
}

// expr compiles e. A dynamic (path) node's acceptance is set by the caller
// according to the context it is used in.
func (c *compiler) expr(e ast.Expression) (*node, static, bool) {
	switch e := e.(type) {
	case *ast.StringLiteral:
		if legacyOctalEscape(e.Literal) {
			return nil, 0, false // a syntax error in strict mode
		}
		s, ok := goString(e.Value.String())
		return constOf(value{k: kString, s: s}), sString, ok
	case *ast.NumberLiteral:
		if l := e.Literal; len(l) > 1 && l[0] == '0' && l[1] >= '0' && l[1] <= '9' {
			return nil, 0, false // a legacy octal: a syntax error in strict mode
		}
		switch n := e.Value.(type) {
		case int64:
			// goja keeps a bigger integer literal as a float (valueFloat),
			// which exports as float64 even when it rounds to ±2^53.
			if n < -maxInt || n > maxInt {
				return nil, 0, false
			}
			return constOf(value{k: kNumber, f: float64(n)}), sNumber, true
		case float64:
			return constOf(value{k: kNumber, f: n}), sNumber, true
		}
		return nil, 0, false
	case *ast.BooleanLiteral:
		return constOf(value{k: kBool, b: e.Value}), sBool, true
	case *ast.NullLiteral:
		return constOf(value{k: kNull}), sNull, true
	case *ast.DotExpression, *ast.BracketExpression:
		return c.path(e)
	case *ast.Identifier:
		if n := e.Name.String(); n == "error" || n == "failed_block" {
			return c.path(e) // strings, unlike the other roots
		}
		return nil, 0, false
	case *ast.TemplateLiteral:
		return c.template(e)
	case *ast.UnaryExpression:
		return c.unary(e)
	case *ast.BinaryExpression:
		return c.binary(e)
	case *ast.ObjectLiteral:
		return c.object(e)
	case *ast.ArrayLiteral:
		return c.array(e)
	}
	return nil, 0, false
}

// legacyOctalEscape reports whether a string literal's source has an
// escape that strict mode forbids (\1 to \9, or \0 before a digit).
func legacyOctalEscape(lit string) bool {
	for i := 0; i+1 < len(lit); i++ {
		if lit[i] != '\\' {
			continue
		}
		c := lit[i+1]
		if c >= '1' && c <= '9' || c == '0' && i+2 < len(lit) && lit[i+2] >= '0' && lit[i+2] <= '9' {
			return true
		}
		i++ // skip the escaped character
	}
	return false
}

// goString converts a literal's text to Go, refusing lone surrogates (goja
// keeps them, Go cannot).
func goString(s string) (string, bool) {
	return s, !strings.ContainsRune(s, utf8.RuneError)
}

// forbiddenKey lists keys whose meaning depends on prototypes or on the
// engine's secrets object (its methods), not on the data.
func forbiddenKey(root, k string) bool {
	switch k {
	case "__proto__", "constructor", "prototype":
		return true
	}
	if root != "secrets" {
		return false
	}
	switch k {
	case "get", "mask", "hasOwnProperty", "isPrototypeOf", "propertyIsEnumerable",
		"toLocaleString", "toString", "valueOf", "__defineGetter__", "__defineSetter__",
		"__lookupGetter__", "__lookupSetter__", "then", "length", "toJSON", "inspect",
		"asymmetricMatch", "$$typeof", "nodeType":
		return true
	}
	return false
}

// step is one key of a path: a property name, or an array index.
type step struct {
	key   string
	index int // >= 0 for a numeric literal index
}

func (c *compiler) path(e ast.Expression) (*node, static, bool) {
	var steps []step
	for {
		switch x := e.(type) {
		case *ast.DotExpression:
			steps = append(steps, step{key: x.Identifier.Name.String(), index: -1})
			e = x.Left
			continue
		case *ast.BracketExpression:
			switch m := x.Member.(type) {
			case *ast.StringLiteral:
				k, ok := goString(m.Value.String())
				if !ok {
					return nil, 0, false
				}
				steps = append(steps, step{key: k, index: -1})
			case *ast.NumberLiteral:
				i, ok := m.Value.(int64)
				if !ok || i < 0 || i > math.MaxInt32 {
					return nil, 0, false
				}
				steps = append(steps, step{key: strconv.FormatInt(i, 10), index: int(i)})
			default:
				return nil, 0, false
			}
			e = x.Left
			continue
		case *ast.Identifier:
			root := x.Name.String()
			// steps were collected from the outside in.
			for i, j := 0, len(steps)-1; i < j; i, j = i+1, j-1 {
				steps[i], steps[j] = steps[j], steps[i]
			}
			for _, s := range steps {
				if forbiddenKey(root, s.key) {
					return nil, 0, false
				}
			}
			switch root {
			case "secrets":
				if len(steps) != 1 || steps[0].index >= 0 {
					// secrets.K.x reads a property of a string, secrets[0]
					// a numeric name: leave both to goja.
					return nil, 0, false
				}
				name := steps[0].key
				idx := slices.Index(c.secrets, name)
				if idx < 0 {
					if len(c.secrets) == MaxSecrets {
						return nil, 0, false
					}
					idx = len(c.secrets)
					c.secrets = append(c.secrets, name)
				}
				return &node{op: opSecret, name: name, field: idx}, sString, true
			case "run":
				if len(steps) != 1 || runField(steps[0].key) < 0 {
					return nil, 0, false
				}
				return &node{op: opRun, field: runField(steps[0].key)}, sString, true
			case "env":
				if len(steps) != 1 || steps[0].index >= 0 {
					return nil, 0, false
				}
				p := &node{op: opPath, root: root, steps: steps}
				c.leaves = append(c.leaves, p)
				return p, sDynamic, true
			case "error", "failed_block":
				if len(steps) != 0 {
					return nil, 0, false // a property of a string: goja's
				}
				p := &node{op: opPath, root: root}
				c.leaves = append(c.leaves, p)
				return p, sDynamic, true
			case "input", "steps":
				if len(steps) == 0 {
					return nil, 0, false
				}
				p := &node{op: opPath, root: root, steps: steps}
				c.leaves = append(c.leaves, p)
				return p, sDynamic, true
			}
			return nil, 0, false
		}
		return nil, 0, false
	}
}

func (c *compiler) template(e *ast.TemplateLiteral) (*node, static, bool) {
	if e.Tag != nil || len(e.Elements) != len(e.Expressions)+1 {
		return nil, 0, false
	}
	t := &node{op: opConcat}
	for i, el := range e.Elements {
		if !el.Valid {
			return nil, 0, false
		}
		s, ok := goString(el.Parsed.String())
		if !ok {
			return nil, 0, false
		}
		if s != "" {
			t.kids = append(t.kids, constOf(value{k: kString, s: s}))
		}
		if i < len(e.Expressions) {
			n, ok := c.stringOperand(e.Expressions[i], acceptString)
			if !ok {
				return nil, 0, false
			}
			t.kids = append(t.kids, n)
		}
	}
	return t, sString, true
}

// stringOperand compiles an operand that is converted with ToString; a
// path gets the acceptance given.
func (c *compiler) stringOperand(e ast.Expression, accept func(value) bool) (*node, bool) {
	n, typ, ok := c.expr(e)
	if !ok {
		return nil, false
	}
	switch typ {
	case sDynamic:
		n.accept = accept
	case sObject:
		return nil, false
	}
	if n.op == opConst && !accept(n.v) {
		return nil, false // e.g. `${1e21}`: ToString not proven here
	}
	return n, true
}

func (c *compiler) unary(e *ast.UnaryExpression) (*node, static, bool) {
	switch e.Operator {
	case token.NOT:
		n, typ, ok := c.expr(e.Operand)
		if !ok {
			return nil, 0, false
		}
		switch typ {
		case sDynamic:
			n.accept = acceptBool
		case sBool:
		default:
			return nil, 0, false
		}
		return &node{op: opNot, kids: []*node{n}}, sBool, true
	case token.MINUS:
		// Only a negative number literal.
		if l, ok := e.Operand.(*ast.NumberLiteral); ok {
			n, _, ok := c.expr(l)
			if !ok {
				return nil, 0, false
			}
			v := n.v
			v.f = -v.f
			return constOf(v), sNumber, true
		}
	}
	return nil, 0, false
}

func (c *compiler) binary(e *ast.BinaryExpression) (*node, static, bool) {
	switch e.Operator {
	case token.LOGICAL_AND, token.LOGICAL_OR:
		l, ok := c.boolOperand(e.Left)
		if !ok {
			return nil, 0, false
		}
		r, ok := c.boolOperand(e.Right)
		if !ok {
			return nil, 0, false
		}
		return &node{op: opLogic, and: e.Operator == token.LOGICAL_AND, kids: []*node{l, r}}, sBool, true
	case token.PLUS:
		return c.plus(e)
	case token.EQUAL, token.NOT_EQUAL, token.STRICT_EQUAL, token.STRICT_NOT_EQUAL,
		token.LESS, token.LESS_OR_EQUAL, token.GREATER, token.GREATER_OR_EQUAL:
		return c.compare(e)
	}
	return nil, 0, false
}

func (c *compiler) boolOperand(e ast.Expression) (*node, bool) {
	n, typ, ok := c.expr(e)
	if !ok {
		return nil, false
	}
	switch typ {
	case sDynamic:
		n.accept = acceptBool
	case sBool:
	default:
		return nil, false
	}
	return n, true
}

// plus compiles `+`: accepted when it is certainly a string concatenation,
// that is when one side is statically a string, or both are paths that must
// hold strings.
func (c *compiler) plus(e *ast.BinaryExpression) (*node, static, bool) {
	l, lt, ok := c.expr(e.Left)
	if !ok {
		return nil, 0, false
	}
	r, rt, ok := c.expr(e.Right)
	if !ok {
		return nil, 0, false
	}
	if lt == sObject || rt == sObject {
		return nil, 0, false
	}
	switch {
	case lt == sString || rt == sString:
		for _, n := range [...]*node{l, r} {
			switch n.op {
			case opPath:
				n.accept = acceptString
			case opConst:
				if !acceptString(n.v) {
					return nil, 0, false
				}
			}
		}
	case lt == sDynamic && rt == sDynamic:
		l.accept = acceptOnlyString
		r.accept = acceptOnlyString
	default:
		return nil, 0, false
	}
	return &node{op: opConcat, kids: []*node{l, r}}, sString, true
}

// compare compiles a comparison with a literal on (at least) one side.
func (c *compiler) compare(e *ast.BinaryExpression) (*node, static, bool) {
	l, lt, ok := c.expr(e.Left)
	if !ok {
		return nil, 0, false
	}
	r, rt, ok := c.expr(e.Right)
	if !ok {
		return nil, 0, false
	}
	lc, rc := l.op == opConst, r.op == opConst
	if !lc && !rc || lt == sObject || rt == sObject {
		return nil, 0, false
	}
	n := &node{op: opCompare, cmp: e.Operator, kids: []*node{l, r}}
	if lc && rc {
		return n, sBool, n.constantOK()
	}
	// The non-literal side's acceptance follows from the literal.
	var (
		other *node
		ot    static
		lit   *node
	)
	if rc {
		other, ot, lit = l, lt, r
	} else {
		other, ot, lit = r, rt, l
	}
	litKind := lit.v.k
	var accept func(value) bool
	switch e.Operator {
	case token.STRICT_EQUAL, token.STRICT_NOT_EQUAL:
		accept = acceptPrimitive
	case token.EQUAL, token.NOT_EQUAL:
		if litKind == kNull {
			accept = acceptPrimitive
		} else {
			// Same type, or null (which equals nothing but null and
			// undefined): no coercion happens.
			accept = func(v value) bool { return v.k == litKind || v.k == kNull }
		}
	default: // relational: numbers with numbers, strings with strings
		if litKind != kNumber && litKind != kString {
			return nil, 0, false
		}
		accept = func(v value) bool { return v.k == litKind }
	}
	switch ot {
	case sDynamic:
		other.accept = accept
	case sString:
		if !accept(value{k: kString}) {
			return nil, 0, false
		}
	case sBool:
		if !accept(value{k: kBool}) {
			return nil, 0, false
		}
	default:
		return nil, 0, false
	}
	return n, sBool, true
}

func (c *compiler) object(e *ast.ObjectLiteral) (*node, static, bool) {
	o := &node{op: opObject}
	for _, p := range e.Value {
		pk, ok := p.(*ast.PropertyKeyed)
		if !ok || pk.Kind != ast.PropertyKindValue || pk.Computed {
			return nil, 0, false
		}
		var key string
		switch k := pk.Key.(type) {
		case *ast.StringLiteral:
			key, ok = goString(k.Value.String())
			if !ok {
				return nil, 0, false
			}
		default:
			return nil, 0, false
		}
		if key == "__proto__" {
			return nil, 0, false
		}
		n, typ, ok := c.expr(pk.Value)
		if !ok {
			return nil, 0, false
		}
		if typ == sDynamic {
			n.accept = acceptPrimitive
		}
		o.keys = append(o.keys, key)
		o.kids = append(o.kids, n)
	}
	return o, sObject, true
}

func (c *compiler) array(e *ast.ArrayLiteral) (*node, static, bool) {
	a := &node{op: opArray}
	for _, el := range e.Value {
		if el == nil {
			return nil, 0, false // a hole
		}
		if _, spread := el.(*ast.SpreadElement); spread {
			return nil, 0, false
		}
		n, typ, ok := c.expr(el)
		if !ok {
			return nil, 0, false
		}
		if typ == sDynamic {
			n.accept = acceptPrimitive
		}
		a.kids = append(a.kids, n)
	}
	return a, sObject, true
}

// Nodes.

// op is what a node computes. Nodes are one concrete type evaluated by one
// switch, rather than an interface with a method per node type: an
// interface call makes its arguments escape, and the evaluation's Env
// (which holds the secrets read so far) then could not live on the
// caller's stack.
type op uint8

const (
	opConst   op = iota // v
	opPath              // input.a.b, steps.id.x, env.NAME: root, steps, accept
	opRun               // run.<field>: field
	opSecret            // secrets.NAME: name, field (its index in the program's names)
	opConcat            // kids converted with ToString and joined
	opNot               // !kids[0]
	opLogic             // kids[0] && kids[1] (and), kids[0] || kids[1]
	opCompare           // kids[0] cmp kids[1]
	opObject            // {keys[i]: kids[i]}
	opArray             // [kids...]
)

// node is a compiled expression.
type node struct {
	op op
	v  value // opConst

	// opPath: reads only through map[string]any, *ordered.Object and []any,
	// and only to a
	// value that exists and that accept allows.
	root   string
	steps  []step
	accept func(value) bool

	field int         // opRun: the run field; opSecret: the name's index
	name  string      // opSecret
	and   bool        // opLogic
	cmp   token.Token // opCompare
	kids  []*node
	keys  []string // opObject
}

func constOf(v value) *node { return &node{op: opConst, v: v} }

func (n *node) get(env *Env) (value, bool) {
	var cur any
	switch n.root {
	case "input":
		cur = env.Input
	case "env":
		s, ok := env.Vars[n.steps[0].key]
		if !ok || !utf8.ValidString(s) {
			return value{}, false
		}
		v := value{k: kString, s: s}
		return v, n.accept(v)
	case "error", "failed_block":
		if env.Failure == nil {
			return value{}, false
		}
		s := env.Failure.Error
		if n.root == "failed_block" {
			s = env.Failure.FailedBlock
		}
		if !utf8.ValidString(s) {
			return value{}, false
		}
		v := value{k: kString, s: s}
		return v, n.accept(v)
	default:
		if env.Steps == nil {
			return value{}, false
		}
		cur = env.Steps
	}
	for _, s := range n.steps {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[s.key]
			if !ok {
				return value{}, false // undefined, or a prototype property
			}
			cur = v
		case *ordered.Object:
			v, ok := c.Get(s.key)
			if !ok {
				return value{}, false
			}
			cur = v
		case []any:
			if s.index < 0 || s.index >= len(c) {
				return value{}, false
			}
			cur = c[s.index]
		default:
			return value{}, false
		}
	}
	v, ok := fromGo(cur)
	if !ok || !n.accept(v) {
		return value{}, false
	}
	return v, true
}

// eval evaluates the node; ok=false asks for a fallback (only possible for
// nodes whose checks did not run before, see Program.leaves).
func (n *node) eval(env *Env) (value, bool, error) {
	switch n.op {
	case opConst:
		return n.v, true, nil
	case opPath:
		v, ok := n.get(env)
		return v, ok, nil
	case opRun:
		return n.run(env)
	case opSecret:
		v, ok, err := n.secret(env)
		return value{k: kString, s: v}, ok, err
	case opConcat:
		v, ok, err := n.concat(env)
		return value{k: kString, s: v}, ok, err
	case opNot:
		v, ok, err := n.kids[0].eval(env)
		if !ok || err != nil {
			return value{}, ok, err
		}
		return value{k: kBool, b: !v.b}, true, nil
	case opLogic:
		v, ok, err := n.kids[0].eval(env)
		if !ok || err != nil {
			return value{}, ok, err
		}
		if v.b != n.and { // true || x, false && x
			return v, true, nil
		}
		return n.kids[1].eval(env)
	case opCompare:
		return n.compare(env)
	case opObject:
		m := make(map[string]any, len(n.keys))
		for i, k := range n.keys {
			v, ok, err := n.kids[i].eval(env)
			if !ok || err != nil {
				return value{}, ok, err
			}
			m[k] = v.export()
		}
		return value{k: kObject, o: m}, true, nil
	case opArray:
		a := make([]any, len(n.kids))
		for i, k := range n.kids {
			v, ok, err := k.eval(env)
			if !ok || err != nil {
				return value{}, ok, err
			}
			a[i] = v.export()
		}
		return value{k: kObject, o: a}, true, nil
	}
	return value{}, false, nil
}

// fromGo converts a JSON-like Go value the way goja's ToValue does, for the
// primitive types whose conversion is proven here.
func fromGo(x any) (value, bool) {
	switch x := x.(type) {
	case nil:
		return value{k: kNull}, true
	case string:
		if !utf8.ValidString(x) {
			return value{}, false
		}
		return value{k: kString, s: x}, true
	case bool:
		return value{k: kBool, b: x}, true
	case float64:
		return value{k: kNumber, f: x}, true
	case int:
		return intValue(int64(x))
	case int64:
		return intValue(x)
	case int32:
		return intValue(int64(x))
	}
	return value{}, false
}

func intValue(i int64) (value, bool) {
	if i < -maxInt || i > maxInt {
		return value{}, false
	}
	return value{k: kNumber, f: float64(i)}, true
}

// runField is the index of a `run` property (the keys jsvm gives run), or
// -1.
func runField(k string) int {
	switch k {
	case "id":
		return 0
	case "flow":
		return 1
	case "project":
		return 2
	case "environment":
		return 3
	case "block":
		return 4
	}
	return -1
}

func (n *node) run(env *Env) (value, bool, error) {
	var s string
	if r := env.Run; r != nil {
		switch n.field {
		case 0:
			s = r.ID
		case 1:
			s = r.Flow
		case 2:
			s = r.Project
		case 3:
			s = r.Environment
		case 4:
			s = r.Block
		}
	}
	if !utf8.ValidString(s) {
		return value{}, false, nil
	}
	return value{k: kString, s: s}, true, nil
}

// secret reads a secret: once per name and evaluation, through env.Secrets,
// recording the read (Program.Read).
func (n *node) secret(env *Env) (string, bool, error) {
	bit := uint8(1) << n.field
	var s string
	if env.seen&bit != 0 {
		s = env.vals[n.field]
	} else {
		var err error
		s, err = env.Secrets.Secret(env.Ctx, n.name)
		if err != nil {
			return "", true, err
		}
		env.seen |= bit
		env.vals[n.field] = s
		env.order[env.nreads] = uint8(n.field)
		env.nreads++
	}
	if !utf8.ValidString(s) {
		// goja would hold it as UTF-16 with replacement characters; not
		// proven here. Rare enough to accept a second resolution in goja.
		return "", false, nil
	}
	return s, true, nil
}

// str evaluates n in a string context: JavaScript's ToString of its value,
// for the nodes and values the compiler accepts there (acceptString).
func (n *node) str(env *Env) (string, bool, error) {
	switch n.op {
	case opConst:
		return n.v.toString(), true, nil
	case opSecret:
		return n.secret(env)
	case opConcat:
		return n.concat(env)
	}
	v, ok, err := n.eval(env)
	if !ok || err != nil {
		return "", ok, err
	}
	return v.toString(), true, nil
}

// concat evaluates the parts and joins their strings in one allocation of
// the exact size.
func (n *node) concat(env *Env) (string, bool, error) {
	switch len(n.kids) {
	case 1:
		return n.kids[0].str(env)
	case 2:
		a, ok, err := n.kids[0].str(env)
		if !ok || err != nil {
			return "", ok, err
		}
		b, ok, err := n.kids[1].str(env)
		if !ok || err != nil {
			return "", ok, err
		}
		return a + b, true, nil
	}
	var buf [8]string
	strs := buf[:0]
	for _, p := range n.kids {
		s, ok, err := p.str(env)
		if !ok || err != nil {
			return "", ok, err
		}
		strs = append(strs, s)
	}
	return strings.Join(strs, ""), true, nil
}

// constantOK reports whether a comparison of two literals is proven: the
// same cases a path would be accepted in.
func (n *node) constantOK() bool {
	l, r := n.kids[0].v, n.kids[1].v
	switch n.cmp {
	case token.STRICT_EQUAL, token.STRICT_NOT_EQUAL:
		return true
	case token.EQUAL, token.NOT_EQUAL:
		return l.k == r.k || l.k == kNull || r.k == kNull
	}
	return l.k == r.k && (l.k == kNumber || l.k == kString)
}

func (n *node) compare(env *Env) (value, bool, error) {
	l, ok, err := n.kids[0].eval(env)
	if !ok || err != nil {
		return value{}, ok, err
	}
	r, ok, err := n.kids[1].eval(env)
	if !ok || err != nil {
		return value{}, ok, err
	}
	var b bool
	switch n.cmp {
	case token.STRICT_EQUAL, token.EQUAL:
		b = strictEqual(l, r)
	case token.STRICT_NOT_EQUAL, token.NOT_EQUAL:
		b = !strictEqual(l, r)
	default:
		if l.k != r.k {
			return value{}, false, nil // not proven; acceptance prevents it
		}
		var c int
		if l.k == kNumber {
			if math.IsNaN(l.f) || math.IsNaN(r.f) {
				return value{k: kBool}, true, nil // every comparison with NaN is false
			}
			switch {
			case l.f < r.f:
				c = -1
			case l.f > r.f:
				c = 1
			}
		} else {
			c = compareUTF16(l.s, r.s)
		}
		switch n.cmp {
		case token.LESS:
			b = c < 0
		case token.LESS_OR_EQUAL:
			b = c <= 0
		case token.GREATER:
			b = c > 0
		case token.GREATER_OR_EQUAL:
			b = c >= 0
		}
	}
	return value{k: kBool, b: b}, true, nil
}

// strictEqual is JavaScript's === on primitives (and, by the acceptance
// rules, == wherever it is used).
func strictEqual(l, r value) bool {
	if l.k != r.k {
		return false
	}
	switch l.k {
	case kNull:
		return true
	case kBool:
		return l.b == r.b
	case kNumber:
		return l.f == r.f
	case kString:
		return l.s == r.s
	}
	return false
}

// compareUTF16 orders valid UTF-8 strings as JavaScript does: by UTF-16
// code units, which differs from byte order above U+FFFF.
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := units(ra), units(rb)
			if ua[0] != ub[0] {
				return cmpUnit(ua[0], ub[0])
			}
			return cmpUnit(ua[1], ub[1])
		}
		a, b = a[na:], b[nb:]
	}
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	}
	return 1
}

func units(r rune) [2]uint16 {
	if r >= 0x10000 {
		h, l := utf16.EncodeRune(r)
		return [2]uint16{uint16(h), uint16(l)}
	}
	return [2]uint16{uint16(r), 0}
}

func cmpUnit(a, b uint16) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
