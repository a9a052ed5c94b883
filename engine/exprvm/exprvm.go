// Package exprvm adapts expr-lang (github.com/expr-lang/expr) to Hushflow's
// conditions: a block's `if` and an event trigger's `filter`.
//
// It is used only by package engine, which owns the public API
// (engine.CompileCondition). A Program is compiled and type-checked once,
// when a flow is saved, and then run many times concurrently; each run takes
// a VM and an environment map from pools, so the hot path allocates nothing
// of its own.
//
// Secrets are lazy: at compile time every `secrets.NAME`, `secrets["NAME"]`
// and `secrets[expr]` is rewritten into a call of an internal function that
// asks the run's SecretSource, so a secret is resolved only when the
// condition actually reads it (short-circuit operators skip reads).
package exprvm

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/hushflow/hushflow/engine/ordered"
)

// DefaultMaxNodes is the default limit on the size of a condition's syntax
// tree. Conditions are short; a bigger one is almost certainly a mistake.
const DefaultMaxNodes = 2000

// DefaultMemoryBudget is the default expr VM memory budget of one
// evaluation (see vm.VM.MemoryBudget).
const DefaultMemoryBudget = 100_000

// secretFunc is the internal function `secrets.X` is rewritten into. Its
// name is not an identifier the parser accepts from users after the rewrite
// because it is added after parsing; a user who writes it gets "unknown
// name" from the checker since it is not in the environment.
const secretFunc = "$secret"

// pathFunc is the internal function a constant member path on `input` or
// `steps` is collapsed into: `steps.call.output.status` becomes
// `$path(steps, ["call", "output", "status"])`, one Go call that walks
// map[string]any with a type switch instead of one reflective fetch per
// step. Other shapes go through expr's own runtime.Fetch, so the meaning
// (and every error message) is expr's.
const pathFunc = "$path"

// stateKey holds the *Env of the current evaluation in the environment map.
// It is not a valid identifier, so a condition cannot name it.
const stateKey = "\x00hushflow"

// Run is `run` in a condition. Its fields mirror engine.RunInfo (same names,
// types and order, so that engine converts with a plain conversion).
type Run struct {
	ID          string `json:"id" expr:"id"`
	Flow        string `json:"flow" expr:"flow"`
	Project     string `json:"project" expr:"project"`
	Environment string `json:"environment" expr:"environment"`
	Block       string `json:"block,omitempty" expr:"block"`
}

// SecretSource resolves `secrets.NAME` lazily for one evaluation. It must
// report the read (audit, redaction) before returning the value.
type SecretSource interface {
	Secret(name string) (string, error)
}

// Env is the input of one evaluation. The caller owns it; Program.Run does
// not keep it after returning.
type Env struct {
	Input   any
	Steps   map[string]any
	Run     Run
	Vars    map[string]string
	Secrets SecretSource
	// Error and FailedBlock are `error` and `failed_block`, in the
	// conditions of an on_error handler's blocks (Options.Failure).
	Error, FailedBlock string
	// Item and Index are `item` and `index`, in the condition of a block
	// with each, evaluated per iteration (Options.Each).
	Item  any
	Index int
}

// Options are compile-time limits; zero values mean the defaults.
type Options struct {
	MaxNodes     uint
	MemoryBudget uint
	// Failure puts `error` and `failed_block` (strings) in scope: the
	// condition belongs to a block of an on_error handler. Elsewhere
	// they are unknown names.
	Failure bool
	// Each puts `item` (any) and `index` (int) in scope: the condition
	// belongs to a block with each. Elsewhere they are unknown names.
	Each bool
}

// Refs are the names a condition references, each sorted and unique.
type Refs struct {
	Secrets []string
	Steps   []string
	Inputs  []string
}

// Program is a compiled, type-checked condition. It is safe for concurrent
// use.
type Program struct {
	prog   *vm.Program
	budget uint
	refs   Refs
	// dynamicSecrets is true when the condition reads a secret whose name is
	// computed at run time (secrets[expr]).
	dynamicSecrets bool
	// uses says which names the condition reads, so that Run sets only
	// those in the environment map.
	uses uses
}

type uses uint16

const (
	usesInput uses = 1 << iota
	usesSteps
	usesRun
	usesEnv
	usesState // secrets, or $env
	usesError
	usesFailedBlock
	usesItem
	usesIndex
)

// checkEnv is the environment the checker sees: the shape of Env.
var checkEnv = types.Map{
	"input": types.Any,
	"steps": types.TypeOf(map[string]any{}),
	"run":   types.TypeOf(&Run{}),
	"env":   types.TypeOf(map[string]string{}),
}

// checkFailureEnv is checkEnv with the names of an on_error handler.
var checkFailureEnv = types.Map{
	"input":        types.Any,
	"steps":        types.TypeOf(map[string]any{}),
	"run":          types.TypeOf(&Run{}),
	"env":          types.TypeOf(map[string]string{}),
	"error":        types.String,
	"failed_block": types.String,
}

var secretFn = expr.Function(secretFunc,
	func(params ...any) (any, error) {
		m, _ := params[0].(map[string]any)
		e, _ := m[stateKey].(*Env)
		name, ok := params[1].(string)
		if !ok {
			return nil, fmt.Errorf("secret name must be a string, got %T", params[1])
		}
		if e == nil || e.Secrets == nil {
			return nil, fmt.Errorf("secret %q: %w", name, ErrNoSecrets)
		}
		return e.Secrets.Secret(name)
	},
	new(func(map[string]any, string) (string, error)),
)

var pathFn = expr.Function(pathFunc,
	func(params ...any) (any, error) {
		cur := params[0]
		var objects bool // an *ordered.Object on the path: what it holds is not plain
		for _, k := range params[1].([]string) {
			switch m := cur.(type) {
			case map[string]any:
				cur = m[k]
				continue
			case *ordered.Object:
				cur, _ = m.Get(k)
				objects = true
				continue
			}
			cur = runtime.Fetch(cur, k)
		}
		if _, ok := cur.(*ordered.Object); ok || objects {
			cur = ordered.Plain(cur) // expr-lang reads maps
		}
		return cur, nil
	},
	new(func(any, []string) any),
)

// ErrNoSecrets is returned when a condition reads a secret and the
// evaluation has no SecretSource. The engine maps it to its own error.
var ErrNoSecrets = errors.New("no secrets available")

// Compile parses, rewrites and type-checks src. Errors are *file.Error
// (with line, column and snippet) for everything the parser or checker
// reports.
func Compile(src string, o Options) (*Program, error) {
	if o.MaxNodes == 0 {
		o.MaxNodes = DefaultMaxNodes
	}
	if o.MemoryBudget == 0 {
		o.MemoryBudget = DefaultMemoryBudget
	}
	rw := &rewriter{}
	env := checkEnv
	if o.Failure {
		env = checkFailureEnv
	}
	if o.Each {
		withEach := make(types.Map, len(env)+2)
		for k, v := range env {
			withEach[k] = v
		}
		withEach["item"] = types.Any
		withEach["index"] = types.Int
		env = withEach
	}
	prog, err := expr.Compile(src,
		expr.Env(env),
		expr.AsBool(),
		expr.MaxNodes(o.MaxNodes),
		expr.Patch(rw),
		secretFn,
		pathFn,
	)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) && strings.Contains(fe.Message, "unknown name secrets") {
			fe.Message = `secrets must be read as secrets.NAME or secrets["NAME"]`
		}
		if errors.As(err, &fe) && !o.Failure && (strings.Contains(fe.Message, "unknown name error") || strings.Contains(fe.Message, "unknown name failed_block")) {
			fe.Message = "error and failed_block are defined only in the blocks of the flow's on_error list"
		}
		if errors.As(err, &fe) && !o.Each && (strings.Contains(fe.Message, "unknown name item") || strings.Contains(fe.Message, "unknown name index")) {
			fe.Message = "item and index are defined only in a block with each"
		}
		return nil, err
	}
	if rw.err != nil {
		return nil, rw.err.Bind(file.NewSource(src))
	}
	p := &Program{prog: prog, budget: o.MemoryBudget, dynamicSecrets: rw.dynamic, uses: rw.uses}
	p.refs = Refs{Secrets: set(rw.secrets), Steps: set(rw.steps), Inputs: set(rw.inputs)}
	return p, nil
}

// References returns the names the condition reads.
func (p *Program) References() Refs { return p.refs }

// Evaluator holds the reusable state of evaluations: an expr VM and the
// environment map. It is not safe for concurrent use; pool it (the engine
// keeps one in each pooled evaluation state).
type Evaluator struct {
	vm vm.VM
	m  map[string]any
}

var evaluators = sync.Pool{New: func() any { return new(Evaluator) }}

// Run evaluates the condition with a pooled Evaluator. The result is what
// expr returns (a bool, or nil for a missing value, for a well-typed
// condition).
func (p *Program) Run(e *Env) (any, error) {
	ev := evaluators.Get().(*Evaluator)
	out, err := p.RunWith(ev, e)
	evaluators.Put(ev)
	return out, err
}

// RunWith is Run with the caller's Evaluator.
func (p *Program) RunWith(ev *Evaluator, e *Env) (any, error) {
	m := ev.m
	if m == nil {
		m = make(map[string]any, 8)
		ev.m = m
	}
	u := p.uses
	if u&usesInput != 0 {
		m["input"] = e.Input
	}
	if u&usesSteps != 0 {
		m["steps"] = e.Steps
	}
	if u&usesRun != 0 {
		m["run"] = &e.Run
	}
	if u&usesEnv != 0 {
		m["env"] = e.Vars
	}
	if u&usesState != 0 {
		m[stateKey] = e
	}
	if u&usesError != 0 {
		m["error"] = e.Error
	}
	if u&usesFailedBlock != 0 {
		m["failed_block"] = e.FailedBlock
	}
	if u&usesItem != 0 {
		m["item"] = e.Item
	}
	if u&usesIndex != 0 {
		m["index"] = e.Index
	}
	ev.vm.MemoryBudget = p.budget
	out, err := ev.vm.Run(p.prog, m)
	// Overwrite rather than delete: the keys stay, the values go.
	for k := range m {
		m[k] = nil
	}
	return out, err
}

// rewriter turns secret reads into lazy calls and records references.
type rewriter struct {
	secrets, steps, inputs []string
	dynamic                bool
	uses                   uses
	err                    *file.Error
}

// Visit implements ast.Visitor.
func (r *rewriter) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		switch id.Value {
		case "input":
			r.uses |= usesInput
		case "steps":
			r.uses |= usesSteps
		case "run":
			r.uses |= usesRun
		case "env":
			r.uses |= usesEnv
		case "secrets":
			r.uses |= usesState
		case "error":
			r.uses |= usesError
		case "failed_block":
			r.uses |= usesFailedBlock
		case "item":
			r.uses |= usesItem
		case "index":
			r.uses |= usesIndex
		case "$env":
			// The environment map holds the evaluation's internal state:
			// not for users.
			if r.err == nil {
				r.err = &file.Error{Location: id.Location(), Message: "$env is not available in conditions"}
			}
		}
		return
	}
	m, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	key, constant := m.Property.(*ast.StringNode)
	if call, ok := m.Node.(*ast.CallNode); ok && constant && !m.Optional {
		// Extend a collapsed path: $path(root, [a]).b -> $path(root, [a, b]).
		if fn, ok := call.Callee.(*ast.IdentifierNode); ok && fn.Value == pathFunc {
			keys := call.Arguments[1].(*ast.ConstantNode)
			keys.Value = append(keys.Value.([]string), key.Value)
			ast.Patch(node, call)
		}
		return
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok {
		return
	}
	switch id.Value {
	case "secrets":
		if constant {
			r.secrets = append(r.secrets, key.Value)
		} else {
			r.dynamic = true
		}
		call := &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: secretFunc},
			Arguments: []ast.Node{&ast.IdentifierNode{Value: "$env"}, m.Property},
		}
		ast.Patch(node, call)
	case "steps", "input":
		if !constant {
			return
		}
		if id.Value == "steps" {
			r.steps = append(r.steps, key.Value)
		} else {
			r.inputs = append(r.inputs, key.Value)
		}
		if m.Optional {
			return
		}
		ast.Patch(node, &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: pathFunc},
			Arguments: []ast.Node{id, &ast.ConstantNode{Value: []string{key.Value}}},
		})
	}
}

// set sorts and deduplicates names; nil stays nil.
func set(names []string) []string {
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
