package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hushflow/hushflow/engine/jsvm"
)

// Sentinels wrapped by *Error (test with errors.Is). Each says what happened;
// the Error's Message says it for people.
var (
	// ErrSyntax: the source does not parse or is not a single expression.
	// Returned by Compile; show the error at Line and Column in the editor.
	ErrSyntax = errors.New("syntax error")
	// ErrSourceTooLarge: the source is over the WithMaxSource limit. It is
	// checked before any parser runs.
	ErrSourceTooLarge = errors.New("source too large")
	// ErrException: the script threw. Message and Stack say what and where.
	ErrException = errors.New("script error")
	// ErrTimeout: the evaluation passed its deadline (WithTimeout) and was
	// stopped. A retry with the same input will time out again.
	ErrTimeout = errors.New("evaluation timed out")
	// ErrCanceled: the caller's context ended during the evaluation.
	ErrCanceled = errors.New("evaluation canceled")
	// ErrStackOverflow: the script passed the call stack limit.
	ErrStackOverflow = errors.New("call stack limit exceeded")
	// ErrOutput: the result is not a JSON value (undefined, a function, a
	// Symbol, a BigInt, a cycle, NaN) or is over WithMaxOutput.
	ErrOutput = errors.New("result is not a JSON value within limits")
	// ErrInput: what the script is given (input, steps, env, item) is
	// nested deeper than a code block takes (MaxDepth levels).
	ErrInput = errors.New("script data beyond limits")
	// ErrMemoryLimit: the sandbox process ran out of its memory limit and
	// was killed; the script needs less memory.
	ErrMemoryLimit = errors.New("sandbox memory limit exceeded")
	// ErrSandbox: the sandbox could not run the script (no pool configured,
	// a worker crashed or could not start). The evaluation may be retried.
	ErrSandbox = errors.New("sandbox unavailable")
)

var codeErrs = map[jsvm.ErrorCode]error{
	jsvm.CodeSyntax:        ErrSyntax,
	jsvm.CodeException:     ErrException,
	jsvm.CodeSecret:        ErrException,
	jsvm.CodeTimeout:       ErrTimeout,
	jsvm.CodeCanceled:      ErrCanceled,
	jsvm.CodeStackOverflow: ErrStackOverflow,
	jsvm.CodeOutput:        ErrOutput,
	jsvm.CodeInput:         ErrInput,
	jsvm.CodeMemory:        ErrMemoryLimit,
	jsvm.CodeCrash:         ErrSandbox,
	jsvm.CodeUnavailable:   ErrSandbox,
}

// Error is an error of an expression or code block, at compile or run time.
// Positions are in the user's source, 1-based, so that the editor can
// underline the failing code.
//
// Message, Snippet and Stack may contain run-time values (a script can put
// a secret into an exception): pass the error through Redacted, or redact
// its text, before anyone sees it.
type Error struct {
	Lang    Lang
	Block   string // the block id, from Env.Run.Block (run time only)
	Field   string // the configuration field, from WithField
	Line    int
	Column  int
	Snippet string // the source line at Line
	Message string // e.g. "TypeError: Cannot read property 'x' of undefined"
	Stack   string // the JavaScript stack, in user positions
	// Err is one of the sentinels above, joined with the Go cause when there
	// is one (for example the Resolver's error, which wraps
	// ErrUnknownSecret).
	Err error
}

// Error names where the error is, for people: `block "call" field "body"
// 2:14: TypeError: ...`; the language (js or expr) only when nothing else
// locates it.
func (e *Error) Error() string {
	var where []string
	if e.Block != "" {
		where = append(where, fmt.Sprintf("block %q", e.Block))
	}
	if e.Field != "" {
		where = append(where, fmt.Sprintf("field %q", e.Field))
	}
	if e.Line > 0 {
		where = append(where, fmt.Sprintf("%d:%d", e.Line, e.Column))
	}
	if len(where) == 0 {
		where = append(where, string(e.Lang))
	}
	return strings.Join(where, " ") + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Redacted returns a copy whose text went through redact. Err is kept for
// errors.Is; its text is not meant for display.
func (e *Error) Redacted(redact func(string) string) *Error {
	c := *e
	c.Message = redact(e.Message)
	c.Snippet = redact(e.Snippet)
	c.Stack = redact(e.Stack)
	return &c
}

// joined unwraps to a sentinel and a cause.
type joined struct{ sentinel, cause error }

func (j *joined) Error() string   { return j.cause.Error() }
func (j *joined) Unwrap() []error { return []error{j.sentinel, j.cause} }

// jsError converts an error of jsvm or of the sandbox.
func (p *Program) jsError(err error, env *Env) *Error {
	e := &Error{Lang: JS, Field: p.opts.field, Block: env.Run.Block}
	var je *jsvm.Error
	if !errors.As(err, &je) {
		e.Message = err.Error()
		e.Err = &joined{ErrSandbox, err}
		return e
	}
	e.Line, e.Column, e.Snippet = je.Line, je.Column, je.Snippet
	e.Message, e.Stack = je.Message, je.Stack
	sentinel := codeErrs[je.Code]
	if sentinel == nil {
		sentinel = ErrException
	}
	e.Err = sentinel
	if je.Err != nil {
		e.Err = &joined{sentinel, je.Err}
	}
	return e
}
