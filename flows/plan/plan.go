// Package plan validates flow definitions and compiles them into plans:
// every expression compiled, every block's literal configuration decoded,
// every problem reported at once with where it is. The executor runs
// plans; Cache keeps the plan of each flow version.
package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/internal/suggest"
	"github.com/hushflow/hushflow/secrets"
	"github.com/robfig/cron/v3"
)

// Problem is one thing wrong with a definition, located precisely enough
// for the editor to underline it.
type Problem struct {
	Block string `json:"block,omitempty"`
	Field string `json:"field,omitempty"` // config field, "if", "trigger.cron", ...
	// Line and Column are in the field's expression when the problem
	// names a field, in the document when it names none (a definition
	// that does not parse).
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
	// DocLine and DocColumn are where the field (or block) is in a YAML
	// document as sent (Source.Locate): the character of Line and Column
	// when it can be matched, else the field's key.
	DocLine   int `json:"doc_line,omitempty"`
	DocColumn int `json:"doc_column,omitempty"`
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Block != "" {
		fmt.Fprintf(&b, "block %q ", p.Block)
	}
	if p.Field != "" {
		fmt.Fprintf(&b, "%s ", p.Field)
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d:%d ", p.Line, p.Column)
	}
	if b.Len() > 0 {
		return strings.TrimSpace(b.String()) + ": " + p.Message
	}
	return p.Message
}

// InvalidError lists every problem of a definition (400).
type InvalidError struct{ Problems []Problem }

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid flow: " + strings.Join(parts, "; ")
}

// Limits bound what a definition may hold.
const (
	MaxBlocks        = 200
	MaxDefinition    = 512 << 10
	MaxRetryAttempts = 10
	// MaxEachConcurrency bounds a block's concurrency (each).
	MaxEachConcurrency = 50
	// MaxEachItems bounds a block's max_items; the server's own limit
	// (executor Config.MaxEachItems) is usually lower and wins.
	MaxEachItems = 100000
)

var (
	idRE         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	flowNameRE   = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)
	triggerTypes = map[string]bool{"manual": true, "webhook": true, "schedule": true, "event": true}
)

// Plan is a validated, compiled definition, ready to run.
type Plan struct {
	Def    model.Definition
	Blocks []PlannedBlock
	// OnError is the flow's on_error handler (Def.OnError), compiled.
	OnError []PlannedBlock
	// Secrets are the secret names the flow references statically: in
	// expressions, as a webhook's signing secret, in a field that names
	// secrets (the exec block's secrets list).
	Secrets []string
	// DynamicSecrets is true when an expression computes a secret name at
	// run time (secrets[name]): the flow may use secrets not in Secrets.
	DynamicSecrets bool
	// Warnings point out code the engine evaluates differently from other
	// JavaScript engines (engine.Program.Warnings), by block and field.
	Warnings []string
	Filter   *engine.Condition
	Cron     cron.Schedule
}

// PlannedBlock is a block with its compiled fields.
type PlannedBlock struct {
	Def    model.BlockDef
	Info   blocks.Info
	If     *engine.Condition
	Fields []PlannedField
	// Each is the compiled `each` expression (nil for a block without).
	Each *engine.Program
	// Needs are the indexes in its list of the blocks this one runs after
	// (Def.Needs, or the block before it when Def.Needs is nil, as always
	// in OnError, whose blocks run in order).
	Needs []int
}

// PlannedField is one configuration field: a compiled expression, raw
// source, or a literal.
type PlannedField struct {
	Name    string
	Program *engine.Program // nil for literals and raw fields
	Raw     string
	IsRaw   bool
	Literal any
}

// ParseDefinition decodes JSON strictly.
func ParseDefinition(data []byte) (model.Definition, error) {
	var d model.Definition
	if len(data) > MaxDefinition {
		return d, &InvalidError{Problems: []Problem{{Message: fmt.Sprintf("definition is %d bytes, over the limit of %d", len(data), MaxDefinition)}}}
	}
	d, err := decodeDefinition(data)
	if err != nil {
		p := Problem{Message: "definition is not valid: " + strings.TrimPrefix(err.Error(), "json: ")}
		// The position in the document, for a person reading it.
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			p.Message = "definition is not valid JSON: " + err.Error()
			if strings.Contains(se.Error(), "exceeded max depth") {
				p.Message = "definition nests deeper than 10000 levels"
			}
			p.Line, p.Column = lineColumn(data, se.Offset) // the byte it could not take
		case errors.As(err, &te):
			p.Message = "definition is not valid: " + typeMessage(te)
			p.Line, p.Column = lineColumn(data, te.Offset) // the value's last byte
			if strings.HasPrefix(te.Field, "blocks.") || strings.HasPrefix(te.Field, "on_error.") {
				p.Block, p.Field = blame(data) // which block: the field path has no index
			}
		default:
			p.Block, p.Field = blame(data)
		}
		return d, &InvalidError{Problems: []Problem{p}}
	}
	return d, nil
}

// blame finds the block and field whose value a decoding error that
// names neither (a duration that does not parse: its decoder's own
// error) comes from, by decoding each field of each block alone; "" when
// the error is not in a block.
func blame(js []byte) (block, field string) {
	var doc struct {
		Blocks  []map[string]json.RawMessage `json:"blocks"`
		OnError []map[string]json.RawMessage `json:"on_error"`
	}
	if json.Unmarshal(js, &doc) != nil {
		return "", ""
	}
	for li, list := range [][]map[string]json.RawMessage{doc.Blocks, doc.OnError} {
		for i, b := range list {
			keys := make([]string, 0, len(b))
			for k := range b {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				one, _ := json.Marshal(map[string]json.RawMessage{k: b[k]})
				var bd model.BlockDef
				if json.Unmarshal(one, &bd) != nil {
					var id string
					_ = json.Unmarshal(b["id"], &id)
					return blockName(model.BlockDef{ID: id}, i, li == 1), k
				}
			}
		}
	}
	return "", ""
}

// decodeDefinition decodes JSON strictly: no unknown field.
func decodeDefinition(data []byte) (model.Definition, error) {
	var d model.Definition
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&d)
	return d, err
}

// Compile validates d against reg (the block types this server runs) and
// compiles every expression with eng. It returns all problems at once.
func Compile(d model.Definition, reg *blocks.Registry, eng *engine.Engine) (*Plan, error) {
	plan, probs := compile(d, reg, eng)
	if len(probs) > 0 {
		return nil, &InvalidError{Problems: probs}
	}
	return plan, nil
}

// CompileForSave is Compile with the checks of a save: ConstantProblems as
// well, of every block that compiled, so that a definition's problems
// are all reported at once (a delay over its maximum beside a typo
// elsewhere).
func CompileForSave(d model.Definition, reg *blocks.Registry, eng *engine.Engine) (*Plan, error) {
	plan, probs := compile(d, reg, eng)
	probs = append(probs, ConstantProblems(plan)...)
	if len(probs) > 0 {
		return nil, &InvalidError{Problems: probs}
	}
	return plan, nil
}

// compile compiles d into a plan and lists its problems; the plan holds
// the blocks and fields that compiled (all of them when there is none).
func compile(d model.Definition, reg *blocks.Registry, eng *engine.Engine) (*Plan, []Problem) {
	var probs []Problem
	add := func(p Problem) { probs = append(probs, p) }
	plan := &Plan{Def: d}
	if !flowNameRE.MatchString(d.Name) {
		add(Problem{Field: "name", Message: fmt.Sprintf("invalid flow name %s: names are 1 to 63 characters of lowercase letters, digits and '-'", apperr.Echo(d.Name))})
	}
	if d.MaxConcurrentRuns < 0 {
		add(Problem{Field: "max_concurrent_runs", Message: "max_concurrent_runs must be positive (0 means the server's default)"})
	}
	secretSet := map[string]bool{}
	noteRefs := func(r engine.Refs) {
		for _, s := range r.Secrets {
			secretSet[s] = true
		}
		plan.DynamicSecrets = plan.DynamicSecrets || r.DynamicSecrets
	}
	t := d.Trigger
	switch {
	case !triggerTypes[t.Type]:
		add(Problem{Field: "trigger.type", Message: fmt.Sprintf("unknown trigger type %s: use manual, webhook, schedule or event", apperr.Echo(t.Type))})
	case t.Type == "schedule":
		sched, err := cron.ParseStandard(t.Cron)
		if err != nil {
			// The expression is quoted when it is name-like (Echo): a cron
			// with spaces is not, and the parser's message says where.
			what := "invalid cron expression"
			if q := apperr.Echo(t.Cron); strings.HasPrefix(q, `"`) {
				what += " " + q
			}
			add(Problem{Field: "trigger.cron", Message: fmt.Sprintf("%s: %v", what, err)})
		}
		plan.Cron = sched
	case t.Type == "event":
		if t.Topic == "" {
			add(Problem{Field: "trigger.topic", Message: `an event trigger needs a topic pattern such as "records:*"`})
		}
		if t.Filter != "" {
			c, err := engine.CompileCondition(t.Filter)
			if err != nil {
				add(exprProblem("", "trigger.filter", err))
			} else {
				plan.Filter = c
				noteRefs(c.References())
			}
		}
	case t.Type == "webhook":
		if t.Signature != "" && t.Signature != "slack" && t.Signature != "github" {
			add(Problem{Field: "trigger.signature", Message: `signature must be "slack" or "github"`})
		}
		if name, ok := strings.CutPrefix(t.SigningSecret, "secrets."); ok {
			// Written as an expression, which this field is not.
			add(Problem{Field: "trigger.signing_secret", Message: fmt.Sprintf("signing_secret is the name of a secret, not an expression: write %s, not secrets.%s", apperr.Echo(name), apperr.Echo(name))})
		} else if t.SigningSecret != "" {
			if err := secrets.ValidateName(t.SigningSecret); err != nil {
				add(Problem{Field: "trigger.signing_secret", Message: "signing_secret is the name of a secret: " + err.Error()})
			} else {
				secretSet[t.SigningSecret] = true
			}
		}
	}
	if t.Environment != "" && t.Type != "webhook" && t.Type != "schedule" && triggerTypes[t.Type] {
		add(Problem{Field: "trigger.environment", Message: fmt.Sprintf("environment applies to webhook and schedule triggers; a run of a %s trigger takes its environment from %s",
			t.Type, map[string]string{"manual": "whoever starts it", "event": "the event"}[t.Type])})
	}
	if len(d.Blocks) == 0 {
		add(Problem{Field: "blocks", Message: "a flow needs at least one block"})
	}
	if len(d.Blocks) > MaxBlocks {
		add(Problem{Field: "blocks", Message: fmt.Sprintf("a flow has at most %d blocks", MaxBlocks)})
	}
	seen := map[string]bool{}
	c := &compiler{reg: reg, eng: eng, plan: plan, add: add, noteRefs: noteRefs, seen: seen}
	for _, b := range d.Blocks {
		if b.ID != "" {
			c.main = append(c.main, b.ID)
		}
	}
	c.needs, c.upstream = graph(d.Blocks, add)
	plan.Blocks = c.blocks(d.Blocks, false)
	if d.Output != "" && !slices.ContainsFunc(d.Blocks, func(b model.BlockDef) bool { return b.ID == d.Output }) {
		add(Problem{Field: "output", Message: fmt.Sprintf("output names %s, which is not a block of the flow", apperr.Echo(d.Output))})
	}
	if len(d.OnError) > MaxBlocks {
		add(Problem{Field: "on_error", Message: fmt.Sprintf("an on_error list has at most %d blocks", MaxBlocks)})
	}
	// Every main block's id is taken before the handler's are checked, so
	// that a handler block may read any main block (one that did not run
	// is undefined) and its id may clash with none.
	for _, id := range c.main {
		seen[id] = true
	}
	plan.OnError = c.blocks(d.OnError, true)
	for s := range secretSet {
		plan.Secrets = append(plan.Secrets, s)
	}
	sort.Strings(plan.Secrets)
	return plan, probs
}

// compiler compiles the blocks of one definition.
type compiler struct {
	reg      *blocks.Registry
	eng      *engine.Engine
	plan     *Plan
	add      func(Problem)
	noteRefs func(engine.Refs)
	// seen are the block ids a block may read as steps.X: the earlier
	// blocks of its list and, for an on_error block, every main block.
	seen map[string]bool
	// main are the ids of the main blocks (set before the handler's).
	main []string
	// needs are each main block's direct needs (indexes); upstream, when
	// the flow uses needs and they form no cycle, are the ids each main
	// block depends on, directly or not: those its steps.X may name.
	needs    [][]int
	upstream []map[string]bool
}

// graph resolves the needs of the flow's blocks into indexes, reporting
// unknown, repeated and circular needs. upstream is nil when no block
// has needs (every block then depends on those before it) or when the
// needs are not valid.
func graph(list []model.BlockDef, add func(Problem)) (needs [][]int, upstream []map[string]bool) {
	index := make(map[string]int, len(list))
	explicit := false
	for i, b := range list {
		if _, dup := index[b.ID]; !dup && b.ID != "" {
			index[b.ID] = i
		}
		explicit = explicit || b.Needs != nil
	}
	needs = make([][]int, len(list))
	valid := true
	for i, b := range list {
		if b.Needs == nil {
			if i > 0 {
				needs[i] = []int{i - 1}
			}
			continue
		}
		name := blockName(b, i, false)
		seen := map[string]bool{}
		for _, n := range b.Needs {
			j, ok := index[n]
			switch {
			case seen[n]:
				if n != b.ID {
					// Refused, but the graph is still whole: the other
					// problems (steps of blocks not needed) are found too.
					add(Problem{Block: name, Field: "needs", Message: fmt.Sprintf("needs names %q twice", n)})
				}
				continue
			case n == b.ID:
				seen[n] = true
				add(Problem{Block: name, Field: "needs", Message: "a block cannot need itself"})
			case !ok:
				add(Problem{Block: name, Field: "needs", Message: fmt.Sprintf("needs names %s, which is not a block of the flow", apperr.Echo(n))})
			default:
				seen[n] = true
				needs[i] = append(needs[i], j)
				continue
			}
			valid = false
		}
	}
	if cycle := findCycle(list, needs); cycle != "" {
		add(Problem{Field: "needs", Message: "the blocks' needs form a cycle: " + cycle})
		valid = false
	}
	if !explicit || !valid {
		return needs, nil
	}
	// In an order where every block comes after its needs, each block's
	// upstream is its needs and theirs.
	upstream = make([]map[string]bool, len(list))
	var visit func(i int) map[string]bool
	visit = func(i int) map[string]bool {
		if upstream[i] != nil {
			return upstream[i]
		}
		up := map[string]bool{}
		for _, j := range needs[i] {
			up[list[j].ID] = true
			for id := range visit(j) {
				up[id] = true
			}
		}
		upstream[i] = up
		return up
	}
	for i := range list {
		visit(i)
	}
	return needs, upstream
}

// findCycle returns a cycle of needs as "a → b → a", or "".
func findCycle(list []model.BlockDef, needs [][]int) string {
	const (
		unseen = iota
		open
		closed
	)
	state := make([]int, len(list))
	var path []int
	var found []int
	var walk func(i int) bool
	walk = func(i int) bool {
		state[i] = open
		path = append(path, i)
		for _, j := range needs[i] {
			switch state[j] {
			case open:
				k := slices.Index(path, j)
				found = append(slices.Clone(path[k:]), j)
				return true
			case unseen:
				if walk(j) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		state[i] = closed
		return false
	}
	for i := range list {
		if state[i] == unseen && walk(i) {
			ids := make([]string, len(found))
			for k, j := range found {
				ids[k] = strconv.Quote(list[j].ID)
			}
			// found runs from a block to what it needs; say it in the
			// order the blocks run.
			slices.Reverse(ids)
			return strings.Join(ids, " → ")
		}
	}
	return ""
}

// blockName is how problems name a block: its id, or its position.
func blockName(b model.BlockDef, i int, onError bool) string {
	switch {
	case b.ID != "":
		return b.ID
	case onError:
		return fmt.Sprintf("on_error #%d", i+1)
	}
	return fmt.Sprintf("#%d", i+1)
}

// blocks validates and compiles one list of blocks: the flow's blocks, or
// its on_error handler (onError).
func (c *compiler) blocks(list []model.BlockDef, onError bool) []PlannedBlock {
	reg, eng, plan, add, noteRefs, seen := c.reg, c.eng, c.plan, c.add, c.noteRefs, c.seen
	var out []PlannedBlock
	for i, b := range list {
		pb := PlannedBlock{Def: b}
		name := blockName(b, i, onError)
		if onError && b.Needs != nil {
			add(Problem{Block: name, Field: "needs", Message: "on_error blocks run in order and have no needs"})
		}
		switch {
		case !onError:
			pb.Needs = c.needs[i]
		case i > 0:
			pb.Needs = []int{i - 1} // in order
		}
		if !idRE.MatchString(b.ID) {
			add(Problem{Block: name, Field: "id", Message: "block ids are identifiers: a letter or _ then letters, digits or _ (up to 63)"})
		} else if onError && slices.Contains(c.main, b.ID) {
			add(Problem{Block: name, Field: "id", Message: fmt.Sprintf("on_error block id %q is already the id of a block of the flow; ids are unique across blocks and on_error", b.ID)})
		} else if seen[b.ID] {
			add(Problem{Block: name, Field: "id", Message: "duplicate block id"})
		}
		info, ok := reg.Lookup(b.Type)
		if why, off := reg.Disabled(b.Type); off {
			add(Problem{Block: name, Field: "type", Message: why})
		} else if !ok && b.Type == "" {
			add(Problem{Block: name, Field: "type", Message: fmt.Sprintf("the block has no type; the types are: %s", knownTypes(reg))})
		} else if !ok {
			add(Problem{Block: name, Field: "type", Message: fmt.Sprintf("unknown block type %s; known types: %s", apperr.Echo(string(b.Type)), knownTypes(reg))})
		}
		pb.Info = info
		if b.Each != "" && ok && info.Spec.NoEach != "" {
			add(Problem{Block: name, Field: "each", Message: fmt.Sprintf("a %s block cannot have each: %s", b.Type, info.Spec.NoEach)})
		}
		checkEach := func(field string, r engine.Refs) {
			if r.Each && b.Each == "" {
				add(Problem{Block: name, Field: field, Message: "item and index are defined only in a block with each"})
			}
		}
		var upstream map[string]bool
		if !onError && c.upstream != nil {
			upstream = c.upstream[i]
		}
		checkSteps := func(field string, r engine.Refs) {
			for _, s := range r.Steps {
				switch {
				case upstream != nil && upstream[s]:
				case upstream == nil && seen[s]:
				case s == b.ID:
					add(Problem{Block: name, Field: field, Message: fmt.Sprintf("steps.%s refers to this block itself; a block can read only blocks that ran before it", s)})
				case upstream != nil && slices.Contains(c.main, s):
					add(Problem{Block: name, Field: field, Message: fmt.Sprintf("steps.%s is not a block this block needs, directly or through the blocks it needs; add %q to its needs", s, s)})
				case onError:
					add(Problem{Block: name, Field: field, Message: fmt.Sprintf("steps.%s is neither a block of the flow nor an earlier on_error block", s)})
				default:
					add(Problem{Block: name, Field: field, Message: fmt.Sprintf("steps.%s is not an earlier block", s)})
				}
			}
		}
		if b.Each != "" {
			p, err := eng.Compile(engine.Field, b.Each, engine.WithField("each"))
			if err != nil {
				add(exprProblem(name, "each", err))
			} else {
				pb.Each = p
				r := p.References()
				noteRefs(r)
				checkSteps("each", r)
				if r.Each {
					add(Problem{Block: name, Field: "each", Message: "item and index are not defined in each itself, which gives the items"})
				}
				plan.warn(name, "each", p)
			}
			if b.Concurrency < 0 || b.Concurrency > MaxEachConcurrency {
				add(Problem{Block: name, Field: "concurrency", Message: fmt.Sprintf("concurrency must be 1 to %d", MaxEachConcurrency)})
			}
			if b.MaxItems < 0 || b.MaxItems > MaxEachItems {
				add(Problem{Block: name, Field: "max_items", Message: fmt.Sprintf("max_items must be 1 to %d", MaxEachItems)})
			}
		} else {
			if b.Concurrency != 0 {
				add(Problem{Block: name, Field: "concurrency", Message: "concurrency applies only to a block with each"})
			}
			if b.MaxItems != 0 {
				add(Problem{Block: name, Field: "max_items", Message: "max_items applies only to a block with each"})
			}
		}
		if b.If != "" {
			var opts []engine.ConditionOption
			if onError {
				opts = append(opts, engine.InOnError())
			}
			if b.Each != "" {
				opts = append(opts, engine.InEach())
			}
			cond, err := engine.CompileCondition(b.If, opts...)
			if err != nil {
				add(exprProblem(name, "if", err))
			} else {
				pb.If = cond
				noteRefs(cond.References())
				checkSteps("if", cond.References())
			}
		}
		if b.Retry != nil && (b.Retry.Attempts < 1 || b.Retry.Attempts > MaxRetryAttempts) {
			add(Problem{Block: name, Field: "retry.attempts", Message: fmt.Sprintf("attempts must be 1 to %d", MaxRetryAttempts)})
		}
		if b.Retry != nil && b.Retry.Backoff < 0 {
			add(Problem{Block: name, Field: "retry.backoff", Message: fmt.Sprintf("backoff must not be negative (%s)", b.Retry.Backoff.D())})
		}
		if b.Timeout < 0 {
			add(Problem{Block: name, Field: "timeout", Message: "timeout must be positive"})
		}
		if b.Timeout > 0 && b.Timeout.D() < time.Second {
			// timeout: 10 is 10 ms, which fails any block that calls out.
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("block %q timeout is %s: a number is milliseconds (write \"10s\" for seconds)", name, b.Timeout.D()))
		}
		if ok {
			literals := map[string]any{}
			names := make([]string, 0, len(b.Config))
			for k := range b.Config {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				raw := b.Config[k]
				f, known := info.Spec.Field(k)
				if !known {
					msg := fmt.Sprintf("unknown field for block type %s", apperr.Echo(string(b.Type)))
					if near := suggest.Nearest(k, fieldNames(info.Spec)); near != "" {
						msg += fmt.Sprintf("; did you mean %q?", near)
					}
					add(Problem{Block: name, Field: k, Message: msg})
					continue
				}
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					add(Problem{Block: name, Field: k, Message: "not a JSON value"})
					continue
				}
				pf := PlannedField{Name: k}
				src, isString := v.(string)
				switch {
				case f.Raw:
					if !isString {
						add(Problem{Block: name, Field: k, Message: "must be a string of JavaScript code"})
						continue
					}
					pf.IsRaw, pf.Raw = true, src
					p, err := eng.Compile(engine.Code, src, engine.WithField(k))
					if err != nil {
						add(exprProblem(name, k, err))
						continue
					}
					r := p.References()
					noteRefs(r)
					checkSteps(k, r)
					checkEach(k, r)
					plan.warn(name, k, p)
				case isString:
					p, err := eng.Compile(engine.Field, src, engine.WithField(k))
					if err != nil {
						add(exprProblem(name, k, err))
						continue
					}
					pf.Program = p
					r := p.References()
					noteRefs(r)
					checkSteps(k, r)
					checkEach(k, r)
					plan.warn(name, k, p)
				default:
					pf.Literal = v
					literals[k] = v
					if f.SecretNames {
						noteRefs(engine.Refs{Secrets: listedSecrets(v)})
					}
				}
				pb.Fields = append(pb.Fields, pf)
			}
			for _, f := range info.Spec.Fields {
				if _, set := b.Config[f.Name]; f.Required && !set {
					add(Problem{Block: name, Field: f.Name, Message: "required field is missing"})
				}
			}
		}
		if b.ID != "" {
			seen[b.ID] = true
		}
		out = append(out, pb)
	}
	return out
}

// warn records the program's warnings.
func (p *Plan) warn(block, field string, prog *engine.Program) {
	for _, w := range prog.Warnings() {
		p.Warnings = append(p.Warnings, fmt.Sprintf("block %q field %q %s", block, field, w))
	}
}

func exprProblem(block, field string, err error) Problem {
	p := Problem{Block: block, Field: field, Message: err.Error()}
	var ee *engine.Error
	if errors.As(err, &ee) {
		p.Line, p.Column, p.Message = ee.Line, ee.Column, ee.Message
		if p.Message == "" {
			p.Message = err.Error()
		}
	}
	return p
}

// fieldNames are the names of spec's fields, in the spec's order.
func fieldNames(spec blocks.Spec) []string {
	names := make([]string, len(spec.Fields))
	for i, f := range spec.Fields {
		names[i] = f.Name
	}
	return names
}

func knownTypes(reg *blocks.Registry) string {
	var ids []string
	for _, i := range reg.List() {
		ids = append(ids, string(i.ID))
	}
	return strings.Join(ids, ", ")
}

// listedSecrets returns the names in a literal list of secrets as a field
// that names secrets holds them: [{"key": "NAME", ...}, ...] or ["NAME"].
func listedSecrets(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, e := range list {
		switch x := e.(type) {
		case string:
			out = append(out, x)
		case map[string]any:
			if k, ok := x["key"].(string); ok {
				out = append(out, k)
			}
		}
	}
	return out
}

// constant is the field's value when it is known before the run: a
// literal, or an expression that reads nothing ('2h').
func (pf PlannedField) constant() (any, bool) {
	if pf.IsRaw {
		return nil, false
	}
	if pf.Program != nil {
		return pf.Program.Constant()
	}
	return pf.Literal, true
}

// Constant is the value of field when it is known before the run (see
// ConstantProblems); false when the block has no such field or its value
// depends on the run.
func (pb *PlannedBlock) Constant(field string) (any, bool) {
	for _, pf := range pb.Fields {
		if pf.Name == field {
			return pf.constant()
		}
	}
	return nil, false
}

// typeProblem says why raw, a constant value of field, does not fit the
// block's configuration ("" when it does), as decoding the evaluated
// configuration at run time would fail.
func typeProblem(info blocks.Info, field string, raw []byte) string {
	if info.New == nil {
		return ""
	}
	cfg := info.New()
	doc, _ := json.Marshal(map[string]json.RawMessage{field: raw})
	var te *json.UnmarshalTypeError
	if err := json.Unmarshal(doc, cfg); errors.As(err, &te) {
		return fmt.Sprintf("%s is %s, where %s is wanted", field, jsonKind(te.Value), goKind(te.Type))
	}
	return ""
}

// typeMessage says what a definition's value of the wrong type is and
// what is wanted, in the document's terms ("blocks.max_items is a
// string, where a whole number is wanted"), not Go's ("Go struct field
// BlockDef.blocks.max_items of type int").
func typeMessage(te *json.UnmarshalTypeError) string {
	field := te.Field
	if field == "" {
		field = "the definition"
	}
	return fmt.Sprintf("%s is %s, where %s is wanted", field, jsonKind(te.Value), goKind(te.Type))
}

// jsonKind names the kind of JSON value json.UnmarshalTypeError.Value
// describes ("string", "number 2.5", "array", ...).
func jsonKind(v string) string {
	switch {
	case strings.HasPrefix(v, "number "):
		return "the " + v
	case v == "object", v == "array":
		return "an " + v
	}
	return "a " + v
}

// goKind names a Go type as a flow author knows it.
func goKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another kind of value"
}

// lineColumn is the 1-based line and column of the offset-th byte of data
// (1-based).
func lineColumn(data []byte, offset int64) (line, col int) {
	offset = min(max(offset, 1), int64(len(data)))
	before := data[:offset]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, col
}

// ConstantProblems checks the fields of p's blocks whose value is known
// when the flow is saved (a literal, or an expression that reads nothing,
// such as '2h'): a value of the wrong type for its field (a flow block's
// version of '3' or 2.5), a duration that does not parse, or is over what
// its field allows, is refused then rather than when the run reaches the
// block, after the blocks before it acted. A save runs it; a stored
// version loads without it, so that a flow saved before a check was added
// keeps running as it did.
func ConstantProblems(p *Plan) []Problem {
	var out []Problem
	for li, list := range [][]PlannedBlock{p.Blocks, p.OnError} {
		for i, pb := range list {
			for _, pf := range pb.Fields {
				f, ok := pb.Info.Spec.Field(pf.Name)
				if !ok || pf.IsRaw {
					continue
				}
				v, known := pf.constant()
				if !known || v == nil {
					continue
				}
				name := blockName(pb.Def, i, li == 1)
				raw, _ := json.Marshal(v)
				if msg := typeProblem(pb.Info, pf.Name, raw); msg != "" {
					out = append(out, Problem{Block: name, Field: pf.Name, Message: msg})
					continue
				}
				if f.Type != blocks.Duration {
					continue
				}
				var d blocks.Dur
				if err := json.Unmarshal(raw, &d); err != nil {
					out = append(out, Problem{Block: name, Field: pf.Name, Message: "not a duration: " + err.Error()})
					continue
				}
				if f.Max > 0 && (d < 0 || d.D() > f.Max) {
					out = append(out, Problem{Block: name, Field: pf.Name,
						Message: fmt.Sprintf("%s is not between 0 and %s, the most a %s block allows", d.D(), f.Max, pb.Def.Type)})
				}
			}
		}
	}
	return out
}
