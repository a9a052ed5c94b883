// Package engine evaluates every expression in Hushflow: JavaScript (goja)
// for block configuration fields and code blocks, expr-lang for conditions.
//
// The types in this file are the contract between the engine and its
// callers (the flow executor, the evaluate API, the sandbox workers). The
// engine defines the Resolver it needs; package secrets satisfies it through
// an adapter in the caller, so engine imports nothing of the project.
package engine

import (
	"context"
	"fmt"

	"github.com/hushflow/hushflow/engine/ordered"
)

// Lang names an expression language.
type Lang string

const (
	// JS is JavaScript evaluated by goja (fields and code blocks).
	JS Lang = "js"
	// Expr is expr-lang, used for block conditions and event filters.
	Expr Lang = "expr"
)

// Scope is the project and environment a secret lookup happens in.
// An empty field means "the run's own".
type Scope struct {
	Project     string `json:"project,omitempty"`
	Environment string `json:"environment,omitempty"`
}

// Resolver gives an evaluation access to secrets. It is implemented by the
// caller (usually over package secrets) and must be safe for concurrent use.
//
// Resolve returns the plaintext value of name as seen from scope (the run's
// scope with the fields of an explicit secrets.get option applied). It is
// called only when an expression reads the name (laziness), and the caller
// is responsible for authorization (a run never resolves another project's
// secrets) and audit. An unknown name returns an error wrapping
// ErrUnknownSecret whose message names the key and the scope.
//
// Names lists the secret names visible in the run's scope, never values.
type Resolver interface {
	Resolve(ctx context.Context, name string, scope Scope) (string, error)
	Names(ctx context.Context) ([]string, error)
}

// RunInfo describes the run an evaluation belongs to; scripts see it as
// `run`.
type RunInfo struct {
	ID          string `json:"id"`
	Flow        string `json:"flow"`
	Project     string `json:"project"`
	Environment string `json:"environment"`
	Block       string `json:"block,omitempty"`
}

// LogRecord is one console.log/info/warn/error call of a script.
type LogRecord struct {
	Level   string // "log", "info", "warn", "error", "debug"
	Message string
}

// Env is everything an evaluation can see. The zero value is valid: no
// secrets, no input.
type Env struct {
	// Secrets resolves `secrets.X`; nil means no secret resolves.
	Secrets Resolver
	// Input is the trigger payload (`input`), a JSON-like value: nil,
	// bool, float64, int64, string, []any, map[string]any or *Object.
	// Scripts see the keys of an *Object (DecodeJSON) in their order, as
	// JavaScript's JSON.parse gives them, and those of a Go map sorted.
	// Evaluations never change it: a script that writes to it writes to
	// its own copy.
	Input any
	// Steps holds the outputs of earlier blocks by block id
	// (`steps.<id>.output`), JSON-like values as Input.
	Steps map[string]any
	// Run is `run`.
	Run RunInfo
	// Vars are non-secret variables (`env`).
	Vars map[string]string
	// Failure is set only for the blocks of a flow's on_error handler:
	// scripts and conditions see it as `error` and `failed_block`.
	Failure *Failure
	// Each is set only for an iteration of a block with `each`: scripts
	// and conditions see it as `item` and `index`.
	Each *Each

	// OnSecret is called, before the script receives the value, for every
	// secret the evaluation reads (name, scope it was asked in, value). The
	// caller adds the value to the run's redactor and audits the read.
	OnSecret func(name string, scope Scope, value string)
	// OnMask is called for every secrets.mask(value) of a script: a value
	// produced at run time that must be redacted from then on.
	OnMask func(value string)
	// OnLog receives console output; nil discards it.
	OnLog func(LogRecord)
}

// Failure is what the blocks of an on_error handler know of the run's
// failure: Error is the run's error message and FailedBlock the id of the
// block that failed. The caller redacts both before the evaluation.
type Failure struct {
	Error       string `json:"error"`
	FailedBlock string `json:"failed_block"`
}

// Each is one iteration of a block with `each`: Item is the element of
// the array (a JSON value; objects may be *Object) and Index its 0-based
// position.
type Each struct {
	Item  any
	Index int
}

// ErrUnknownSecret is wrapped by errors for a secret name that does not
// resolve in the asked scope. Callers show the message (it names the key and
// the scope) and fail the evaluation.
var ErrUnknownSecret = fmt.Errorf("unknown secret")

// Object is a JSON object whose keys keep their order (see package
// engine/ordered).
type Object = ordered.Object

// DecodeJSON decodes JSON text for Env.Input or Env.Steps as json.Unmarshal
// into an `any` would, except that objects are *Object, whose keys keep
// the order of the text: JSON.stringify(input) and Object.keys(input) then
// list them as JavaScript would (array indices first, ascending, then the
// other keys in the text's order), in process and in the sandbox.
func DecodeJSON(data []byte) (any, error) { return ordered.Decode(data) }

// Plain returns v with every *Object replaced by a map[string]any, for
// code that reads plain maps (redaction, expr-lang conditions). Maps and
// arrays are copied only when they hold an Object; an Object converts
// once, and the maps it gives are shared: do not modify them.
func Plain(v any) any { return ordered.Plain(v) }
