// Package jsvm runs one JavaScript field or code block in a fresh goja
// runtime. It is shared by the in-process path of package engine and by the
// sandbox worker processes; it knows nothing of where it runs; everything
// outside the script goes through a Host.
//
// A script is compiled once into a wrapper function
//
//	(function(secrets, input, steps, run, env, console) { "use strict"; return (FIELD) })
//	(async function(secrets, input, steps, run, env, console) { "use strict"; CODE })
//
// and every Run creates its own runtime, instantiates the wrapper and calls it
// with the globals as arguments, so that nothing of one run is visible to
// the next. A runtime may be prepared ahead (NewRuntime), with the wrappers
// of likely scripts already instantiated in it (Runtime.Prepare): that
// creates function objects and runs nothing of their source.
package jsvm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
)

// Kind is what a source is: an expression or the body of an async function.
type Kind string

const (
	// Field is a single JavaScript expression.
	Field Kind = "field"
	// Code is the body of an async function whose return value is the
	// output.
	Code Kind = "code"
)

// srcName is the file name goja puts in positions and stacks.
const srcName = "block"

const (
	fieldPrefix = "(function(secrets,input,steps,run,env,console){\"use strict\";return (\n"
	fieldSuffix = "\n);})"
	codePrefix  = "(async function(secrets,input,steps,run,env,console){\"use strict\";\n"
	// syncPrefix wraps code that never awaits: goja's async functions
	// cost a coroutine switch and a Promise per call.
	syncPrefix = "(function(secrets,input,steps,run,env,console){\"use strict\";\n"
	codeSuffix = "\n})"
	// prefixLines is the number of wrapper lines before the user's first
	// line.
	prefixLines = 1
)

// Scope is the project and environment of an explicit secrets.get.
type Scope struct {
	Project     string `json:"project,omitempty"`
	Environment string `json:"environment,omitempty"`
}

// Host is everything outside the script. A Host is used by one Run at a
// time; its methods are called on the goroutine that called Run.
type Host interface {
	// Resolve returns the value of a secret. The host reports the read
	// (audit, redaction) before returning. An error is thrown into the
	// script; its message must name the key and the scope.
	Resolve(name string, scope Scope) (string, error)
	// Names lists the secret names visible to the run, never values.
	Names() ([]string, error)
	// Mask registers a run-time value for redaction.
	Mask(value string)
	// Log receives one console record.
	Log(level, message string)
}

// Limits bound one Run. Zero fields take the defaults below.
type Limits struct {
	Timeout      time.Duration // wall-clock deadline of the run
	MaxOutput    int           // bytes of the result, counted as JSON
	MaxCallStack int           // JavaScript call depth
	MaxLogBytes  int           // console output kept per run
	// Ordered makes the objects of the result *ordered.Object, with the
	// keys in the order the script gave them, instead of map[string]any.
	Ordered bool
}

// Defaults of Limits.
const (
	DefaultTimeout      = time.Second
	DefaultMaxOutput    = 1 << 20
	DefaultMaxCallStack = 512
	DefaultMaxLogBytes  = 1 << 20
	maxLogRecord        = 8 << 10
)

func (l Limits) withDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxOutput <= 0 {
		l.MaxOutput = DefaultMaxOutput
	}
	if l.MaxCallStack <= 0 {
		l.MaxCallStack = DefaultMaxCallStack
	}
	if l.MaxLogBytes <= 0 {
		l.MaxLogBytes = DefaultMaxLogBytes
	}
	return l
}

// Globals are the values a script sees besides secrets and console. Each is
// either a JSON-like Go value (map[string]any, *ordered.Object, []any,
// string, float64, int64, bool, nil, map[string]string), which the script
// reads in place but never changes (see inputObject), or JSON text (a JSON
// value), which is parsed into native JavaScript values in the run's
// runtime. Objects list their keys in JavaScript's order: an
// *ordered.Object's, or sorted for a Go map.
type Globals struct {
	Input, Steps, Run, Env any
	// Failure is set for the blocks of a flow's on_error handler: the
	// script sees its fields as the read-only globals `error` and
	// `failed_block`. Elsewhere those names are not defined.
	Failure *Failure
	// Each is set for an iteration of a block with `each`: the script
	// sees the read-only globals `item` and `index`. Elsewhere those
	// names are not defined.
	Each *Each
}

// Each is one iteration of a block with `each`. Item is converted like
// Input (a JSON value, possibly JSON text in the sandbox).
type Each struct {
	Item  any
	Index int
}

// Failure is what an on_error handler knows of the run's failure. Both
// texts are already redacted by the caller.
type Failure struct {
	Error       string `json:"error"`
	FailedBlock string `json:"failed_block"`
}

// JSON is JSON text passed as a global; it is parsed inside the runtime.
type JSON []byte

// Script is a compiled field or code block. It is immutable and safe for
// concurrent use.
type Script struct {
	Kind   Kind
	Source string
	prog   *goja.Program
	// Expr is the expression of a Field.
	Expr ast.Expression
	// Body is the statement list of a Code block.
	Body []ast.Statement
	// usesConsole is false when the source cannot name console, which
	// then is not built.
	usesConsole bool
	// usesBase64 is true when the source names btoa or atob.
	usesBase64 bool
	// usesSign is true when the source may call Math.sign (see mathSign).
	usesSign bool
	// observesFailure is false when the source cannot name error or
	// failed_block (Globals.Failure), which then are not defined.
	observesFailure bool
	// observesEach is false when the source cannot name item or index
	// (Globals.Each), which then are not defined.
	observesEach bool
	// observes[i] is false when the script cannot observe the global
	// Globals field i (Input, Steps, Run, Env), which then is not built.
	observes [4]bool
	// File maps AST positions (wrapped source) for static analysis.
	File *fileMap
	// plainWrapper is true when the program, checked on its AST, is one
	// function expression with plain parameters (no default values, no
	// patterns, no rest), so that evaluating it only creates the function
	// object and runs nothing of the source: Runtime.Prepare may then do
	// it before the request.
	plainWrapper bool
}

// Compile parses and compiles src. The error is an *Error with Code
// CodeSyntax and a position in src.
func Compile(kind Kind, src string) (*Script, error) {
	var prefix, suffix string
	switch kind {
	case Field:
		prefix, suffix = fieldPrefix, fieldSuffix
	case Code:
		prefix, suffix = codePrefix, codeSuffix
		if !strings.Contains(src, "await") {
			prefix = syncPrefix
		}
	default:
		return nil, &Error{Code: CodeSyntax, Message: fmt.Sprintf("unknown kind %q", kind)}
	}
	wrapped := prefix + src + suffix
	fm := &fileMap{src: src, prefixLen: len(prefix)}
	prg, err := parser.ParseFile(nil, srcName, wrapped, 0)
	if err != nil {
		var list parser.ErrorList
		if errors.As(err, &list) && len(list) > 0 {
			return nil, fm.syntaxError(list[0].Position.Line, list[0].Position.Column, list[0].Message)
		}
		return nil, &Error{Code: CodeSyntax, Message: err.Error()}
	}
	s := &Script{Kind: kind, Source: src, File: fm, usesConsole: strings.Contains(src, "console"),
		usesBase64: strings.Contains(src, "btoa") || strings.Contains(src, "atob"),
		usesSign:   strings.Contains(src, "sign") || strings.Contains(src, `\u`)}
	for i, name := range globalNames {
		s.observes[i] = Observes(src, name)
	}
	s.observesFailure = Observes(src, "error") || Observes(src, "failed_block")
	s.observesEach = Observes(src, "item") || Observes(src, "index")
	fm.file = prg.File
	// The wrapper must still be one function expression: a source such as
	// "1); foo(); (1" or "}); foo(); (function(){" would escape it.
	if len(prg.Body) != 1 {
		return nil, fm.syntaxErrorAt(prg.Body[1].Idx0(), escapeMessage(kind))
	}
	es, ok := prg.Body[0].(*ast.ExpressionStatement)
	if !ok {
		return nil, fm.syntaxError(1, 1, escapeMessage(kind))
	}
	fn, ok := es.Expression.(*ast.FunctionLiteral)
	if !ok {
		return nil, fm.syntaxErrorAt(es.Idx1(), escapeMessage(kind))
	}
	s.plainWrapper = plainParams(fn)
	body := fn.Body.List
	if len(body) == 0 {
		return nil, fm.syntaxError(1, 1, escapeMessage(kind))
	}
	body = body[1:] // "use strict"
	switch kind {
	case Field:
		if len(body) != 1 {
			return nil, fm.syntaxError(1, 1, escapeMessage(kind))
		}
		ret, ok := body[0].(*ast.ReturnStatement)
		if !ok || ret.Argument == nil {
			return nil, fm.syntaxError(1, 1, escapeMessage(kind))
		}
		s.Expr = ret.Argument
	case Code:
		s.Body = body
	}
	p, err := goja.CompileAST(prg, true)
	if err != nil {
		var ce *goja.CompilerSyntaxError
		var re *goja.CompilerReferenceError
		switch {
		case errors.As(err, &ce) && ce.File != nil:
			pos := ce.File.Position(ce.Offset)
			return nil, fm.syntaxError(pos.Line, pos.Column, ce.Message)
		case errors.As(err, &re) && re.File != nil:
			pos := re.File.Position(re.Offset)
			return nil, fm.syntaxError(pos.Line, pos.Column, re.Message)
		}
		return nil, &Error{Code: CodeSyntax, Message: err.Error()}
	}
	s.prog = p
	return s, nil
}

// plainParams reports whether fn has only plain identifiers as
// parameters: evaluating such a function expression runs none of its code
// (a default value or a destructuring pattern runs at the call, but is
// refused here all the same, so that the check does not depend on it).
func plainParams(fn *ast.FunctionLiteral) bool {
	if fn.Generator || fn.ParameterList == nil || fn.ParameterList.Rest != nil {
		return false
	}
	for _, b := range fn.ParameterList.List {
		if _, ok := b.Target.(*ast.Identifier); !ok || b.Initializer != nil {
			return false
		}
	}
	return true
}

// globalNames are the wrapper's parameters for the fields of Globals.
var globalNames = [4]string{"input", "steps", "run", "env"}

// Observes reports whether a script with source src can observe the
// wrapper's parameter name (input, steps, run, env). A script sees a
// parameter only through an identifier that spells it, plainly or with
// \u escapes, through `arguments`, or through a direct eval; a source with
// none of the name, `\u`, "arguments" and "eval" cannot, and its value is
// not built. The test is on the text, so it errs on the side of building.
func Observes(src, name string) bool {
	return strings.Contains(src, name) || strings.Contains(src, `\u`) ||
		strings.Contains(src, "arguments") || strings.Contains(src, "eval")
}

func escapeMessage(k Kind) string {
	if k == Field {
		return "a field must be a single expression"
	}
	return "unbalanced braces: the code closes its function body"
}

// Runtime is a fresh goja runtime prepared for exactly one Run: created,
// with the parts of a run's environment that do not depend on the script
// or the request already built (the secrets and console objects, bound to
// the run's state). Preparing one ahead of
// a request (NewRuntime, then RunIn) takes that work off the request's
// path; the sandbox worker prepares the next runtime after it has replied.
// A Runtime is not safe for concurrent use.
type Runtime struct {
	st               *state
	secrets, console goja.Value
	used             bool
	// fns are wrapper functions instantiated ahead by Prepare.
	fns []preparedFn
}

// preparedFn is a script's wrapper function instantiated in a Runtime.
type preparedFn struct {
	s  *Script
	fn goja.Callable
}

// NewRuntime creates and prepares a runtime for one RunIn.
func NewRuntime() *Runtime {
	r := newRuntime()
	r.secretsValue()
	r.consoleValue()
	return r
}

// newRuntime creates a runtime whose parts are built when a run needs them.
func newRuntime() *Runtime {
	return &Runtime{st: &state{rt: goja.New()}}
}

func (r *Runtime) secretsValue() goja.Value {
	if r.secrets == nil {
		r.secrets = r.st.secretsObject()
	}
	return r.secrets
}

func (r *Runtime) consoleValue() goja.Value {
	if r.console == nil {
		r.console = r.st.console()
	}
	return r.console
}

// Prepare instantiates s's wrapper function in r, ahead of a RunIn of s
// (the sandbox worker does it, after replying, for the last few scripts it
// ran). The wrapper is one function expression with plain parameters
// (Compile checks it on the AST): evaluating it creates the function
// object and runs nothing of the script's source; the body runs only when
// RunIn calls it, as it would have without Prepare. r still runs one
// script once: the functions of the other prepared scripts are never
// called and are reachable from no global. Prepare on a used runtime, or
// for a script already prepared in r, does nothing.
func (r *Runtime) Prepare(s *Script) {
	if r.used || !s.plainWrapper || r.prepared(s) != nil {
		return
	}
	v, err := r.st.rt.RunProgram(s.prog)
	if err != nil {
		return
	}
	if fn, ok := goja.AssertFunction(v); ok {
		r.fns = append(r.fns, preparedFn{s: s, fn: fn})
	}
}

// Prepared reports whether s's wrapper function waits in r (Prepare).
func (r *Runtime) Prepared(s *Script) bool { return r.prepared(s) != nil }

// prepared returns s's wrapper function instantiated by Prepare, or nil.
func (r *Runtime) prepared(s *Script) goja.Callable {
	for _, p := range r.fns {
		if p.s == s {
			return p.fn
		}
	}
	return nil
}

// Run evaluates the script in a fresh runtime. The result is a plain JSON
// value (nil, bool, int64, float64, string, []any, map[string]any, or
// *ordered.Object with Limits.Ordered). Errors are *Error.
func (s *Script) Run(ctx context.Context, g Globals, host Host, lim Limits) (any, error) {
	return s.RunIn(ctx, newRuntime(), g, host, lim)
}

// RunIn is Run in a runtime prepared by NewRuntime, which it uses up: a
// runtime runs one script once, so that nothing of one run is visible to
// the next.
func (s *Script) RunIn(ctx context.Context, r *Runtime, g Globals, host Host, lim Limits) (result any, err error) {
	if r.used {
		return nil, &Error{Code: CodeInternal, Message: "jsvm: a runtime runs one script only"}
	}
	r.used = true
	lim = lim.withDefaults()
	if err := ctx.Err(); err != nil {
		return nil, ctxError(err, lim)
	}
	st := r.st
	rt := st.rt
	rt.SetMaxCallStackSize(lim.MaxCallStack)
	st.host, st.lim, st.script = host, lim, s
	w := watch(ctx, rt, time.Now().Add(lim.Timeout))
	defer func() {
		w.stop()
		if r := recover(); r != nil {
			result, err = nil, st.panicError(r)
		}
	}()
	var fn goja.Callable
	if r.fns != nil {
		fn = r.prepared(s)
	}
	if fn == nil {
		fnv, err := rt.RunProgram(s.prog)
		if err != nil {
			return nil, st.error(err)
		}
		var ok bool
		fn, ok = goja.AssertFunction(fnv)
		if !ok {
			return nil, &Error{Code: CodeInternal, Message: "wrapper is not a function"}
		}
	}
	args := [6]goja.Value{r.secretsValue(), goja.Undefined(), goja.Undefined(), goja.Undefined(), goja.Undefined(), goja.Undefined()}
	for i, v := range [4]any{g.Input, g.Steps, g.Run, g.Env} {
		if s.observes[i] {
			args[1+i] = st.global(v)
		}
	}
	if s.usesConsole {
		args[5] = r.consoleValue()
	}
	if s.usesBase64 {
		st.base64Globals()
	}
	if s.usesSign {
		st.mathSign()
	}
	if g.Failure != nil && s.observesFailure {
		st.failureGlobals(g.Failure)
	}
	if g.Each != nil && s.observesEach {
		st.eachGlobals(g.Each)
	}
	v, err := fn(goja.Undefined(), args[:]...)
	if err != nil {
		return nil, st.error(err)
	}
	if s.Kind == Code && goja.IsUndefined(v) {
		return nil, nil
	}
	if o, ok := v.(*goja.Object); ok && s.Kind == Code {
		p, ok := o.Export().(*goja.Promise)
		if !ok {
			goto export
		}
		switch p.State() {
		case goja.PromiseStateFulfilled:
			v = p.Result()
			if goja.IsUndefined(v) {
				return nil, nil
			}
		case goja.PromiseStateRejected:
			return nil, st.thrown(p.Result(), nil)
		default:
			return nil, &Error{Code: CodeException, Message: "code block did not finish: it awaits a promise that never settles (there are no timers or I/O in scripts)"}
		}
	}
export:
	out, err := st.export(v)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// state is one Run.
type state struct {
	rt     *goja.Runtime
	parse  goja.Callable // JSON.parse
	host   Host
	lim    Limits
	script *Script

	// secret reads of this run, by scope and name
	resolved map[secretKey]string
	names    []string
	hasNames bool
	// goErrs maps exceptions this run threw from Go to their cause.
	goErrs   map[*goja.Object]error
	logBytes int
}

type secretKey struct {
	name  string
	scope Scope
}

func (st *state) global(v any) goja.Value {
	switch v := v.(type) {
	case nil:
		return goja.Null()
	case JSON:
		if len(v) == 0 {
			return goja.Null()
		}
		return st.jsonValue(string(v))
	case []byte:
		return st.jsonValue(string(v))
	}
	return st.value(v)
}

// jsonParse returns the runtime's JSON.parse.
func (st *state) jsonParse() goja.Callable {
	if st.parse == nil {
		st.parse, _ = goja.AssertFunction(st.rt.Get("JSON").ToObject(st.rt).Get("parse"))
	}
	return st.parse
}

func (st *state) parseJSON(text string) goja.Value {
	v, err := st.jsonParse()(goja.Undefined(), st.rt.ToValue(text))
	if err != nil {
		panic(err)
	}
	return v
}

// throw throws a JavaScript Error whose cause, for the final error, is err.
// The Go error itself is never exposed to the script.
func (st *state) throw(err error) {
	panic(st.errorObject(err))
}

func (st *state) errorObject(err error) *goja.Object {
	ctor, _ := goja.AssertConstructor(st.rt.Get("Error"))
	obj, e := ctor(nil, st.rt.ToValue(err.Error()))
	if e != nil {
		panic(e)
	}
	if st.goErrs == nil {
		st.goErrs = make(map[*goja.Object]error)
	}
	st.goErrs[obj] = err
	return obj
}

func ctxError(err error, lim Limits) *Error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeTimeout, Message: fmt.Sprintf("evaluation exceeded its deadline of %s", lim.Timeout), Err: err}
	}
	return &Error{Code: CodeCanceled, Message: "evaluation canceled: " + err.Error(), Err: err}
}

// error converts an error of goja into an *Error.
func (st *state) error(err error) error {
	var ie *goja.InterruptedError
	var so *goja.StackOverflowError
	var ex *goja.Exception
	switch {
	case errors.As(err, &ie):
		if e, ok := ie.Value().(*Error); ok {
			return e
		}
		if e, ok := ie.Value().(error); ok {
			return ctxError(e, st.lim)
		}
		return &Error{Code: CodeTimeout, Message: fmt.Sprint(ie.Value())}
	case errors.As(err, &so):
		e := &Error{Code: CodeStackOverflow, Message: fmt.Sprintf("RangeError: maximum call stack size exceeded (%d frames)", st.lim.MaxCallStack)}
		st.position(e, so.String())
		return e
	case errors.As(err, &ex):
		return st.thrown(ex.Value(), ex)
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: err.Error(), Err: err}
}

// thrown converts a thrown JavaScript value.
func (st *state) thrown(v goja.Value, ex *goja.Exception) *Error {
	e := &Error{Code: CodeException}
	if obj, ok := v.(*goja.Object); ok {
		if cause, ok := st.goErrs[obj]; ok {
			e.Err = cause
			var se *Error
			if errors.As(cause, &se) {
				e.Code = se.Code
			} else {
				e.Code = CodeSecret
			}
		}
		if obj.ClassName() == "Error" {
			name, msg := obj.Get("name"), obj.Get("message")
			e.Message = valueString(msg)
			if n := valueString(name); n != "" && e.Err == nil {
				e.Message = n + ": " + e.Message
			}
			stack := valueString(obj.Get("stack"))
			st.position(e, stack)
			if e.Line == 0 && ex != nil {
				st.position(e, ex.String())
			}
			return e
		}
	}
	e.Message = "Uncaught " + safeString(v)
	if ex != nil {
		st.position(e, ex.String())
	}
	return e
}

func valueString(v goja.Value) string {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return ""
	}
	return safeString(v)
}

// safeString converts a value to a string without running script code.
func safeString(v goja.Value) (s string) {
	defer func() {
		if recover() != nil {
			s = "[object]"
		}
	}()
	if o, ok := v.(*goja.Object); ok {
		if o.ClassName() == "Error" {
			return valueString(o.Get("message"))
		}
		return "[object " + o.ClassName() + "]"
	}
	return v.String()
}

// position fills Line, Column and Stack from a goja stack text.
func (st *state) position(e *Error, stack string) {
	e.Stack = st.script.File.rewriteStack(stack)
	if e.Line == 0 {
		e.Line, e.Column = st.script.File.firstFrame(stack)
	}
	if e.Line > 0 {
		e.Snippet = st.script.File.line(e.Line)
	}
}

func (st *state) panicError(r any) error {
	switch r := r.(type) {
	case *goja.InterruptedError:
		return st.error(r)
	case *goja.StackOverflowError:
		return st.error(r)
	case *goja.Exception:
		return st.error(r)
	case *Error:
		return r
	case *goja.Object:
		return st.thrown(r, nil)
	}
	return &Error{Code: CodeInternal, Message: fmt.Sprintf("internal error: %v", r)}
}

// trimLines cuts s to at most n lines.
func trimLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
