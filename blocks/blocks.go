// Package blocks holds the registry of block types. A block type is a Go
// type implementing Block plus an Info that describes its configuration;
// adding a type is adding one package under blocks/ and a blank import in
// blocks/all.
//
// # Lifecycle
//
// For every execution of a block in a run, the executor:
//
//  1. evaluates each configuration field of the flow definition (a string is
//     a JavaScript expression, anything else a literal; fields marked Raw in
//     the Spec, such as a code block's `code`, are passed through as source);
//  2. calls Info.New for an empty value (no side effects);
//  3. decodes the evaluated fields into it as strict JSON (unknown fields
//     are an error);
//  4. calls Provision(env) if the block is a Provisioner, then Validate() if
//     it is a Validator;
//  5. calls Run once;
//  6. calls Close if the block is a Closer, also after a failed Provision.
//
// At save time the same steps 2-4 run with every expression field left
// out, so that literal mistakes are reported before anything runs.
package blocks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"
)

// ID names a block type ("http"). IDs are stored in flow definitions, so
// an ID is never renamed: add a new one instead.
type ID string

// Block runs one step of a flow. Run may be called concurrently for
// different runs on different values; a value is used for one execution
// and must not keep anything after Run returns. Run must honour ctx
// (cancel and timeout) and return errors that name what failed; the
// executor redacts them.
type Block interface {
	Run(ctx context.Context, in *Input) (any, error)
}

// Provisioner prepares a block after decoding (clients, parsed values).
type Provisioner interface{ Provision(env *Env) error }

// Validator checks a decoded, provisioned block.
type Validator interface{ Validate() error }

// Closer releases what Provision acquired; it is called after Run, and
// after a failed Provision.
type Closer interface {
	Close(ctx context.Context) error
}

// FieldType is the type a configuration field evaluates to.
type FieldType string

const (
	String   FieldType = "string"
	Number   FieldType = "number"
	Bool     FieldType = "boolean"
	Object   FieldType = "object"
	Array    FieldType = "array"
	Any      FieldType = "any"
	Duration FieldType = "duration" // a Go duration string such as "1.5s" or milliseconds as a number
)

// Field describes one configuration field. The editor renders forms from
// it and the executor uses Secret and Raw.
type Field struct {
	Name     string    `json:"name"` // the JSON key
	Type     FieldType `json:"type"`
	Required bool      `json:"required,omitempty"`
	Doc      string    `json:"doc"`
	Default  any       `json:"default,omitempty"`
	// Secret marks fields that carry credentials: the API masks them when
	// they are literals, and their resolved values join the run's redactor.
	Secret bool `json:"secret,omitempty"`
	// SecretNames marks a field that names secrets (the exec block's
	// list of keys) without holding their values: it is shown as it is,
	// like any field, its values masked by the run's redactor.
	SecretNames bool `json:"secret_names,omitempty"`
	// Raw fields are not evaluated: the source text is the value (a code
	// block's body).
	Raw bool `json:"raw,omitempty"`
	// Example is an expression shown as a placeholder in the editor.
	Example string `json:"example,omitempty"`
	// Max bounds a Duration field: a value over it written as a constant
	// is refused when the flow is saved, not when the block runs.
	Max time.Duration `json:"-"`
}

// Spec describes a block type's configuration.
type Spec struct {
	Summary string  `json:"summary"`
	Fields  []Field `json:"fields"`
	// NoEach, when set, says why a block of this type cannot have each
	// (a flow refuses it at save).
	NoEach string `json:"no_each,omitempty"`
}

// Field returns the named field.
func (s Spec) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Info registers a block type.
type Info struct {
	ID   ID
	Spec Spec
	// New returns an empty value; no side effects.
	New func() Block
}

// Event is something a block reports while it runs: a log line, an HTTP
// request or response. The executor redacts it before it is stored or
// shown.
type Event struct {
	Type string         // "log", "http_request", "http_response", "http_error"
	Data map[string]any // JSON-like
}

// Input is what a block's Run gets besides its decoded configuration.
type Input struct {
	// Run identifies the run and block (for logs and headers).
	RunID, FlowName, Project, Environment, BlockID string
	// Attempt is 1 for the first try, 2 for the first retry, ...
	Attempt int
	// Emit reports an event of this block. Safe for concurrent use.
	Emit func(Event)
	// Script runs JavaScript of kind "code" (an async function body) or
	// "field" (one expression) with the run's globals (secrets, input,
	// steps, run, env, console). console output becomes log events.
	Script func(ctx context.Context, kind, src string) (any, error)
	// Secret resolves a secret for this block as an expression would
	// (most specific scope wins; audited; the value joins the run's
	// redactor before it is returned). Blocks that take secret names
	// rather than expressions (exec's mounted secrets) use it.
	Secret func(ctx context.Context, name string) (string, error)
	// Mask registers a value produced at run time (for example a token
	// from an OAuth exchange) with the run's redactor.
	Mask func(value string)
	// Redact returns s with every value the run's redactor knows masked,
	// for a block that masks more by itself (credential parameters by
	// name) and must not cut a value before the redactor sees it. Nil in
	// tests that do not need it.
	Redact func(s string) string
	// MaskOf returns the mask that hides a whole credential value s in an
	// event: "[REDACTED:NAME]" when s holds one secret's value, else
	// "[REDACTED]" (see redact.Redactor.MaskOf). Nil: always "[REDACTED]".
	MaskOf func(s string) string
	// Exposed reports that the block found secret values, by the names
	// its own redactor masked them under (secret names, as Secret takes
	// them), in a place that should never hold one and that the block
	// masked itself before the executor could see the values: an exec
	// command's output (sink SinkExecOutput). The executor records an
	// exposure alert for each (see docs/secrets.md). Nil in tests that do
	// not need it.
	Exposed func(sink string, names []string)
	// HTTP sends requests for this run under the egress policy (private
	// addresses refused unless allowed, checked at dial time and on every
	// redirect) and the run's secret host pinning. Blocks that call the
	// network must use it and nothing else. It calls Effect before each
	// request.
	HTTP *http.Client
	// Effect must be called before the block acts outside Hushflow by any
	// other means than HTTP (starts a process, say); an error means the
	// action must not happen, and is returned as the block's. For a block
	// that is not safe to repeat (see Repeatable) it durably records that
	// the action may have happened, so that a run interrupted after it
	// is not repeated blindly. Nil in tests that do not need it.
	Effect func(ctx context.Context) error
	// SleepOver is how long a block may wait in process: a block that
	// would wait longer returns a *Sleep instead, which releases the
	// worker (0: never).
	SleepOver time.Duration
	// Slept is set when the block runs again after it returned a *Sleep:
	// the executor filled in its times.
	Slept *Sleep
	// Flows runs other flows of the run's project (the flow block). Nil
	// when the server runs no sub-flows.
	Flows FlowCaller
}

// FlowCaller starts and follows the runs of other flows for one attempt
// of a block.
type FlowCaller interface {
	// Call starts the run c asks for, once per attempt of the block
	// (calling again returns the same run), and reports its state.
	Call(ctx context.Context, c FlowCall) (FlowState, error)
	// Cancel asks run id, started by Call, to stop.
	Cancel(ctx context.Context, id string) error
}

// FlowCall asks for a run of another flow of the project, in the run's
// environment.
type FlowCall struct {
	Flow string
	// Version pins the flow's version; 0 is the current one.
	Version int
	Input   any
}

// FlowState is what a block knows of a run it started.
type FlowState struct {
	RunID  string
	Status string
	Done   bool
	// Version is the version of the flow the run runs.
	Version int
	// Output is the run's real output when it succeeded (values the
	// calling run's redactor does not know yet join it first); Error is
	// its error, redacted, when it failed.
	Output any
	Error  string
}

// SinkExecOutput is the sink an exec block reports through
// Input.Exposed: its command's stdout or stderr.
const SinkExecOutput = "exec_output"

// Sleep is returned (as the error) by a block that would wait longer than
// Input.SleepOver (delay): the executor records the wait, releases the
// worker and queues the run to resume at Until, on any replica, when the
// block runs again with Input.Slept set to this value.
type Sleep struct {
	// For is how long the block asks to sleep.
	For time.Duration
	// Since and Until are set by the executor: when the sleep began and
	// when the run is due to resume. Woke is when the block ran again
	// (normally at or just after Until).
	Since, Until, Woke time.Time
	// Await is the id of a run the block waits for (FlowCaller.Call):
	// the run wakes when that run ends, or at Until.
	Await string `json:",omitempty"`
}

func (s *Sleep) Error() string { return fmt.Sprintf("sleeping for %s", s.For) }

// Repeatable is implemented by block types that can say, for one decoded
// configuration, whether running the block again after an interruption is
// safe (it is idempotent, or has no effect outside the run). A block type
// that does not implement it is never repeated once it may have acted.
type Repeatable interface {
	// RepeatSafe reports whether running the block twice is safe. When it
	// is not, why says so in a sentence a user can act on: which field
	// makes it unsafe and how to make it safe. It may read the database
	// (through Env), so it takes the run's ctx and Input.
	RepeatSafe(ctx context.Context, in *Input) (safe bool, why string, err error)
}

// Log emits a log event.
func (in *Input) Log(level, msg string) {
	if in != nil && in.Emit != nil {
		in.Emit(Event{Type: "log", Data: map[string]any{"level": level, "message": msg}})
	}
}

// Env is what the server gives blocks at Provision: shared services and
// configuration. Fields may be nil in tests that don't need them.
type Env struct {
	// Apps resolves app installations for the app block.
	Apps AppResolver
	// Logger is the server's (redacting) logger.
	Logger *slog.Logger
	// ExecAllow, when not empty, lists the command paths exec may run.
	ExecAllow []string
	// ScratchDir is where blocks may create per-run directories.
	ScratchDir string
}

// AppResolver finds an app installation of a project and builds the HTTP
// request of one of its actions. Implemented by package apps.
type AppResolver interface {
	Action(ctx context.Context, in *Input, installation, action string, with map[string]any) (*http.Request, error)
	// RepeatSafe reports whether the action, with these inputs, is safe
	// to send twice (its manifest marks it idempotent, or its method is).
	RepeatSafe(ctx context.Context, in *Input, installation, action string, with map[string]any) (bool, error)
}

// Registry is a set of block types. The zero value is not usable; use
// NewRegistry or Default.
type Registry struct {
	mu       sync.RWMutex // guards infos and disabled
	infos    map[ID]Info
	disabled map[ID]string
}

// NewRegistry returns an empty registry (tests, sandboxes).
func NewRegistry() *Registry { return &Registry{infos: map[ID]Info{}, disabled: map[ID]string{}} }

// Default holds the block types registered by init functions.
// ErrInterrupted is wrapped by the error of a block whose work was stopped
// by something outside the block and the flow (a command that a stop
// signal Hushflow did not send ended). While its replica shuts down, the
// executor takes such a failure for the shutdown's interruption: the run
// is released and resumes elsewhere, as its other blocks would.
var ErrInterrupted = errors.New("interrupted")

var Default = NewRegistry()

// MustRegister adds info to Default; it panics on an empty or duplicate
// ID. Call it from init only.
func MustRegister(info Info) {
	if err := Default.Register(info); err != nil {
		panic(err)
	}
}

// Register adds info.
func (r *Registry) Register(info Info) error {
	if info.ID == "" || info.New == nil {
		return fmt.Errorf("blocks: register: empty ID or nil New")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.infos[info.ID]; dup {
		return fmt.Errorf("blocks: register: duplicate ID %q", info.ID)
	}
	r.infos[info.ID] = info
	return nil
}

// Lookup returns the Info of id.
func (r *Registry) Lookup(id ID) (Info, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	i, ok := r.infos[id]
	return i, ok
}

// List returns every Info, sorted by ID.
func (r *Registry) List() []Info {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Info, 0, len(r.infos))
	for _, i := range r.infos {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

// Clone returns a copy of r.
func (r *Registry) Clone() *Registry {
	c := NewRegistry()
	r.mu.RLock()
	defer r.mu.RUnlock()
	for k, v := range r.infos {
		c.infos[k] = v
	}
	for k, v := range r.disabled {
		c.disabled[k] = v
	}
	return c
}

// Without returns r without the given IDs (r itself is changed and
// returned, for chaining after Clone).
func (r *Registry) Without(ids ...ID) *Registry {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		delete(r.infos, id)
	}
	return r
}

// Disable removes id from r, remembering why (r itself is changed and
// returned, for chaining after Clone): a flow that uses it is refused
// with that reason, such as how to enable it, instead of "unknown type".
func (r *Registry) Disable(id ID, why string) *Registry {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.infos, id)
	r.disabled[id] = why
	return r
}

// Disabled reports whether id was disabled, and why.
func (r *Registry) Disabled(id ID) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	why, ok := r.disabled[id]
	return why, ok
}

// Decode builds a block of type id from evaluated configuration values
// (steps 2-4 of the lifecycle). On error it has already called Close.
func (r *Registry) Decode(id ID, config map[string]any, env *Env) (Block, error) {
	info, ok := r.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("unknown block type %q", id)
	}
	b := info.New()
	data, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := StrictUnmarshal(data, b); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if p, ok := b.(Provisioner); ok {
		if err := p.Provision(env); err != nil {
			closeBlock(b)
			return nil, err
		}
	}
	if v, ok := b.(Validator); ok {
		if err := v.Validate(); err != nil {
			closeBlock(b)
			return nil, err
		}
	}
	return b, nil
}

// Close calls b's Close if it has one.
func closeBlock(b Block) {
	if c, ok := b.(Closer); ok {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	}
}

// Release runs the end of the lifecycle (Close) for a decoded block.
func Release(b Block) { closeBlock(b) }

// StrictUnmarshal decodes JSON, refusing unknown fields.
func StrictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytesReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
