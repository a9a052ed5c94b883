package flows

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/redact"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// pendingEvent is an event not yet stored; Data holds real values and is
// redacted when stored.
type pendingEvent struct {
	At    time.Time
	Type  string
	Block string
	Data  map[string]any
}

// execution is one run being executed by this process.
type execution struct {
	s       *Service
	run     *Run
	plan    *Plan
	w       *store.Batcher // stores events and the outcome
	red     *redact.Redactor
	secrets RunSecrets // nil when the server has no secret store
	input   any
	steps   map[string]any

	mu      sync.Mutex // guards pending
	pending []pendingEvent
	// flushMu serializes stores of events; it guards seq and stored.
	flushMu sync.Mutex
	seq     int
	stored  int
}

// errCanceled ends a run canceled through the API.
var errCanceled = errors.New("run canceled")

// errShutdown ends the runs of a server that is stopping.
var errShutdown = errors.New("the server shut down while this run was running; it was not retried because its blocks may already have had effects: start it again if that is safe")

// execute runs r to its end and records the outcome, storing its events
// and outcome through w. It never panics.
func (s *Service) execute(ctx context.Context, r *Run, w *store.Batcher) {
	// A claimed run has one event, run_queued (seq 1, the run row itself):
	// runs are never claimed twice.
	x := &execution{s: s, run: r, w: w, red: redact.New(), steps: map[string]any{}, seq: 1, stored: 1}
	ctx = withRunID(ctx, r.ID)
	stop := x.flushSlow(ctx)
	var out any
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("panic in run", "run_id", r.ID, "panic", x.red.String(fmt.Sprint(v)), "stack", string(debug.Stack()))
				err = fmt.Errorf("internal error while executing the run (panic recovered); see the server log for run %s", r.ID)
			}
		}()
		out, err = x.do(ctx)
		return err
	}()
	stop()
	x.finish(out, err)
}

// flushSlow stores the events of a block that runs for a while (a delay, a
// slow request), so that the inspector shows them live; fast blocks'
// events are stored together at the block's end. It returns a function
// that stops it.
func (x *execution) flushSlow(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(slowFlush)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				x.mu.Lock()
				old := len(x.pending) > 0 && now.Sub(x.pending[0].At) >= slowFlush
				x.mu.Unlock()
				if old {
					x.flush(ctx)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// slowFlush is how long an event may wait in memory while a block runs.
const slowFlush = 200 * time.Millisecond

func (x *execution) do(ctx context.Context) (any, error) {
	s, r := x.s, x.run
	plan, err := s.plan(ctx, r.FlowID, r.FlowVersion)
	if err != nil {
		return nil, fmt.Errorf("load flow %q version %d: %w", r.Flow, r.FlowVersion, err)
	}
	x.plan = plan
	var pins = map[string][]string{}
	if s.secrets != nil {
		rs, err := s.secrets.ForRun(ctx, r.Project, r.Environment, r.ID)
		if err != nil {
			return nil, fmt.Errorf("load secrets of project %q, environment %q: %w", r.Project, r.Environment, err)
		}
		x.secrets = rs
		vis := rs.Visible()
		vals := make(map[string]string, len(vis))
		for _, v := range vis {
			vals[v.Name] = v.Value
			if len(v.AllowedHosts) > 0 {
				pins[v.Name] = v.AllowedHosts
			}
		}
		x.red = s.redactorFor(vals)
	}
	if err := json.Unmarshal([]byte(r.Input), &x.input); err != nil {
		return nil, fmt.Errorf("run input: %w", err)
	}
	// A known secret value passed in the input is masked in every view.
	x.emit(pendingEvent{Type: "run_started", Data: map[string]any{"input": x.input, "worker": s.owner}})
	var client = s.client(pins, x)
	var last any
	for i := range plan.Blocks {
		if err := ctx.Err(); err != nil {
			return nil, ctxErr(ctx)
		}
		pb := &plan.Blocks[i]
		out, ran, err := x.block(ctx, pb, client)
		if err != nil {
			return nil, err
		}
		if ran {
			x.steps[pb.Def.ID] = map[string]any{"output": out}
			last = out
		}
		// The events of a finished block are stored before the next
		// block starts; those of the last block go with the outcome.
		if i < len(plan.Blocks)-1 {
			x.flush(ctx)
		}
	}
	return last, nil
}

func ctxErr(ctx context.Context) error {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errCanceled):
		return errCanceled
	case errors.Is(cause, errShutdown):
		return errShutdown
	}
	return ctx.Err()
}

// env returns the engine environment of block id.
func (x *execution) env(block string) *engine.Env {
	r := x.run
	return &engine.Env{
		Secrets: &runResolver{x: x, block: block},
		Input:   x.input,
		Steps:   x.steps,
		Run:     engine.RunInfo{ID: r.ID, Flow: r.Flow, Project: r.Project, Environment: r.Environment, Block: block},
		Vars:    x.plan.Def.Env,
		OnSecret: func(name string, _ engine.Scope, value string) {
			x.red.Add(name, value)
		},
		OnMask: func(v string) { x.red.Add("", v) },
		OnLog: func(l engine.LogRecord) {
			x.emit(pendingEvent{Type: "log", Block: block, Data: map[string]any{"level": l.Level, "message": l.Message}})
		},
	}
}

// block runs one block with its condition, timeout and retries. ran is
// false when the condition skipped it.
func (x *execution) block(ctx context.Context, pb *PlannedBlock, client *http.Client) (out any, ran bool, err error) {
	id := pb.Def.ID
	env := x.env(id)
	if pb.If != nil {
		ok, err := pb.If.Eval(ctx, env)
		if err != nil {
			x.emit(pendingEvent{Type: "block_failed", Block: id, Data: map[string]any{"error": err.Error(), "field": "if"}})
			return nil, false, fmt.Errorf("block %q: if: %w", id, err)
		}
		if !ok {
			x.emit(pendingEvent{Type: "block_skipped", Block: id, Data: map[string]any{"if": pb.Def.If, "type": string(pb.Def.Type)}})
			return nil, false, nil
		}
	}
	attempts, backoff := 1, time.Duration(0)
	if pb.Def.Retry != nil {
		attempts, backoff = pb.Def.Retry.Attempts, pb.Def.Retry.Backoff.D()
	}
	timeout := pb.Def.Timeout.D()
	if timeout <= 0 {
		timeout = x.s.cfg.DefaultBlockTimeout
	}
	began := time.Now()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		out, cfg, err := x.attempt(ctx, pb, env, client, attempt, timeout)
		if err == nil {
			x.blockFinished(pb, StatusSucceeded, began)
			x.emit(pendingEvent{Type: "block_finished", Block: id, Data: map[string]any{
				"output": out, "attempt": attempt, "duration_ms": time.Since(start).Milliseconds()}})
			return out, true, nil
		}
		data := map[string]any{"error": err.Error(), "attempt": attempt, "duration_ms": time.Since(start).Milliseconds()}
		if cfg != nil {
			data["config"] = cfg
		}
		if attempt >= attempts || ctx.Err() != nil {
			x.blockFinished(pb, StatusFailed, began)
			x.emit(pendingEvent{Type: "block_failed", Block: id, Data: data})
			if ctx.Err() != nil {
				return nil, false, ctxErr(ctx)
			}
			if namesBlock(err, id) {
				return nil, false, err
			}
			return nil, false, fmt.Errorf("block %q: %w", id, err)
		}
		data["retry_in_ms"] = backoff.Milliseconds()
		x.emit(pendingEvent{Type: "block_retry", Block: id, Data: data})
		x.flush(ctx)
		select {
		case <-ctx.Done():
			return nil, false, ctxErr(ctx)
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// attempt evaluates the block's config and runs it once.
func (x *execution) attempt(ctx context.Context, pb *PlannedBlock, env *engine.Env, client *http.Client, attempt int, timeout time.Duration) (any, map[string]any, error) {
	id := pb.Def.ID
	cfg := make(map[string]any, len(pb.Fields))
	for _, f := range pb.Fields {
		switch {
		case f.IsRaw:
			cfg[f.Name] = f.Raw
		case f.Program != nil:
			v, err := f.Program.Run(ctx, env)
			if err != nil {
				if attempt == 1 {
					// The inspector shows the block start, then its failure.
					x.emit(pendingEvent{Type: "block_started", Block: id, Data: map[string]any{"type": string(pb.Def.Type)}})
				}
				if namesBlock(err, id) {
					return nil, nil, err // the engine's error names the block and field
				}
				return nil, nil, fmt.Errorf("field %s: %w", f.Name, err)
			}
			cfg[f.Name] = v
		default:
			cfg[f.Name] = f.Literal
		}
	}
	shown := displayConfig(pb, cfg)
	if attempt == 1 {
		x.emit(pendingEvent{Type: "block_started", Block: id, Data: map[string]any{"type": string(pb.Def.Type), "config": shown}})
	}
	b, err := x.s.registry.Decode(pb.Def.Type, cfg, x.s.env)
	if err != nil {
		return nil, shown, err
	}
	defer blocks.Release(b)
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	in := &blocks.Input{
		RunID: x.run.ID, FlowName: x.run.Flow, Project: x.run.Project, Environment: x.run.Environment,
		BlockID: id, Attempt: attempt,
		Emit: func(e blocks.Event) { x.emit(pendingEvent{Type: e.Type, Block: id, Data: e.Data}) },
		Script: func(ctx context.Context, kind, src string) (any, error) {
			p, err := engine.Compile(engine.Kind(kind), src, engine.WithTimeout(timeout))
			if err != nil {
				return nil, err
			}
			return p.Run(ctx, env)
		},
		Secret: func(ctx context.Context, name string) (string, error) {
			v, err := env.Secrets.Resolve(ctx, name, engine.Scope{})
			if err == nil {
				x.red.Add(name, v)
			}
			return v, err
		},
		Mask: func(v string) { x.red.Add("", v) },
		HTTP: client,
	}
	out, err := runBlock(bctx, b, in)
	if err != nil && errors.Is(bctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	return out, nil, err
}

// namesBlock reports whether err is an expression error that already names
// block id and its field, so that wrapping it would say them twice.
func namesBlock(err error, id string) bool {
	var e *engine.Error
	return errors.As(err, &e) && e.Block == id && e.Field != ""
}

// blockFinished reports a block's end to the metrics hook.
func (x *execution) blockFinished(pb *PlannedBlock, status string, began time.Time) {
	if x.s.OnBlockFinished != nil {
		x.s.OnBlockFinished(x.run, string(pb.Def.Type), status, time.Since(began))
	}
}

// runBlock calls b.Run and turns a panic into an error.
func runBlock(ctx context.Context, b blocks.Block, in *blocks.Input) (out any, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("block panicked: %v", v)
		}
	}()
	return b.Run(ctx, in)
}

// emit buffers an event; it is stored, redacted, at the next flush.
func (x *execution) emit(e pendingEvent) {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pending = append(x.pending, e)
}

// flush stores the buffered events.
func (x *execution) flush(ctx context.Context) {
	x.flushMu.Lock()
	defer x.flushMu.Unlock()
	x.mu.Lock()
	evs := x.pending
	x.pending = nil
	x.mu.Unlock()
	if len(evs) == 0 {
		return
	}
	rows := x.s.redactEvents(x.run.ID, &x.seq, &x.stored, x.red, evs)
	if _, err := x.w.Write(context.WithoutCancel(ctx), store.Write{Rows: []any{rows}}); err != nil {
		x.s.log.Error("store run events", "run_id", x.run.ID, "err", x.red.Error(err))
	}
	x.s.broker.notify(x.run.ID)
}

// redactEvents turns pending events into stored rows: data redacted with
// red, then bounded in size (truncation happens after redaction, so a cut
// never exposes part of a value).
func (s *Service) redactEvents(runID string, seq, stored *int, red *redact.Redactor, evs []pendingEvent) []Event {
	rows := make([]Event, 0, len(evs))
	for _, e := range evs {
		if *stored >= s.cfg.MaxEventsPerRun && e.Type != "run_finished" {
			continue
		}
		if *stored == s.cfg.MaxEventsPerRun-1 && e.Type != "run_finished" {
			e = pendingEvent{At: e.At, Type: "events_truncated", Data: map[string]any{
				"message": fmt.Sprintf("this run reached the limit of %d stored events; later events are dropped", s.cfg.MaxEventsPerRun)}}
		}
		*seq++
		*stored++
		data := s.boundedJSON(red.Value(e.Data))
		if red != nil {
			s.redacted(data)
		}
		rows = append(rows, Event{RunID: runID, Seq: *seq, At: e.At, Type: e.Type, Block: e.Block, Data: data})
	}
	return rows
}

// boundedJSON encodes v within MaxEventBytes. Data over it keeps its
// structure with its longest strings cut (each ends with a marker saying
// how much was kept); only data that still does not fit becomes a
// truncated preview with a marker. Cuts happen after redaction and never
// inside a mask.
func (s *Service) boundedJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"unencodable": fmt.Sprint(v)})
	}
	max := s.cfg.MaxEventBytes
	if len(b) <= max {
		return string(b)
	}
	for limit := max / 2; limit >= 64; limit /= 2 {
		if short, err := json.Marshal(shortenStrings(v, limit, 0)); err == nil && len(short) <= max {
			return string(short)
		}
	}
	cut := cutText(string(b[:max]))
	tb, _ := json.Marshal(map[string]any{"truncated": true, "bytes": len(b),
		"preview": cut + fmt.Sprintf("…[truncated: %d of %d bytes shown]", len(cut), len(b))})
	return string(tb)
}

// shortenStrings returns a copy of v whose strings longer than limit bytes
// are cut to about limit, with a marker.
func shortenStrings(v any, limit, depth int) any {
	if depth > 64 {
		return v
	}
	switch x := v.(type) {
	case string:
		if len(x) <= limit {
			return x
		}
		cut := cutText(x[:limit])
		return cut + fmt.Sprintf("…[truncated: %d of %d bytes]", len(cut), len(x))
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = shortenStrings(e, limit, depth+1)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = shortenStrings(e, limit, depth+1)
		}
		return a
	}
	return v
}

// cutText makes a prefix safe to show: valid UTF-8, and not ending inside
// a mask such as "[REDACTED:NAME]" (also not inside its first letters,
// "[REDAC").
func cutText(cut string) string {
	cut = strings.ToValidUTF8(cut, "")
	if i := strings.LastIndexByte(cut, '['); i >= 0 {
		if tail := cut[i:]; !strings.Contains(tail, "]") &&
			(strings.HasPrefix(tail, "[REDACTED") || strings.HasPrefix("[REDACTED", tail)) {
			cut = cut[:i]
		}
	}
	return cut
}

// finish records the outcome of the run with its last events in one
// transaction, unless the run was taken from this worker meanwhile.
func (x *execution) finish(out any, runErr error) {
	s, r := x.s, x.run
	status, errText := StatusSucceeded, ""
	switch {
	case errors.Is(runErr, errCanceled):
		status, errText = StatusCanceled, "canceled"
	case runErr != nil:
		status, errText = StatusFailed, x.red.String(runErr.Error())
	}
	var outJSON string
	if runErr == nil && out != nil {
		outJSON = s.boundedOutput(x.red.Value(out))
		s.redacted(outJSON)
	}
	data := map[string]any{"status": status}
	if errText != "" {
		data["error"] = errText
	}
	x.emit(pendingEvent{Type: "run_finished", Data: data})
	x.flushMu.Lock()
	defer x.flushMu.Unlock()
	x.mu.Lock()
	evs := x.pending
	x.pending = nil
	x.mu.Unlock()
	now := time.Now().UTC()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows := s.redactEvents(r.ID, &x.seq, &x.stored, x.red, evs)
	// The input is needed only while the run runs: at rest it keeps no
	// secret value a caller passed in (SECURITY.md case 10).
	o := outcome{id: r.ID, owner: s.owner, status: status, output: outJSON, err: errText, finished: now, input: x.red.String(r.Input)}
	// With the outcomes and events of other runs: one commit, and one
	// UPDATE on PostgreSQL, for many.
	applied, err := x.w.Write(ctx, store.Write{Merge: &store.Merge{Key: "flows.outcome", Item: o, Apply: s.recordOutcomes},
		Rows: []any{rows}, Durable: true})
	if err == nil && !applied {
		err = errLeaseLost
	}
	if err != nil {
		s.log.Error("record run outcome", "run_id", r.ID, "err", x.red.Error(err))
	}
	s.broker.notify(r.ID)
	s.observe(r, status, now)
}

// outcome is how a run ended, as recorded in its row.
type outcome struct {
	id, owner, status, output, err, input string
	finished                              time.Time
}

// recordOutcomes records the outcomes of runs still leased to their
// worker (running, same lease owner) and reports which were. On
// PostgreSQL it is one UPDATE for all of them.
func (s *Service) recordOutcomes(tx *gorm.DB, items []any) ([]bool, error) {
	ok := make([]bool, len(items))
	if s.db.Dialect != store.Postgres {
		for i, it := range items {
			o := it.(outcome)
			res := tx.Model(&Run{}).Where("id = ? AND status = ? AND lease_owner = ?", o.id, StatusRunning, o.owner).
				Updates(map[string]any{"status": o.status, "output": o.output, "error": o.err, "finished_at": o.finished,
					"lease_expires_at": nil, "input": o.input})
			if res.Error != nil {
				return nil, res.Error
			}
			ok[i] = res.RowsAffected == 1
		}
		return ok, nil
	}
	at := map[string]int{}
	for start := 0; start < len(items); start += 1000 {
		chunk := items[start:min(start+1000, len(items))]
		var sb strings.Builder
		args := make([]any, 0, 7*len(chunk)+1)
		sb.WriteString(`UPDATE runs AS r SET status = v.status, output = v.output, error = v.error,
  finished_at = v.finished_at::timestamptz, lease_expires_at = NULL, input = v.input
FROM (VALUES `)
		for i, it := range chunk {
			o := it.(outcome)
			at[o.id] = start + i
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?, ?, ?, ?, ?)")
			args = append(args, o.id, o.owner, o.status, o.output, o.err, o.finished.Format(time.RFC3339Nano), o.input)
		}
		sb.WriteString(`) AS v(id, owner, status, output, error, finished_at, input)
WHERE r.id = v.id AND r.status = ? AND r.lease_owner = v.owner
RETURNING r.id`)
		args = append(args, StatusRunning)
		var ids []string
		if err := tx.Raw(sb.String(), args...).Scan(&ids).Error; err != nil {
			return nil, err
		}
		for _, id := range ids {
			ok[at[id]] = true
		}
	}
	return ok, nil
}

var errLeaseLost = errors.New("the run's lease was lost (another worker or the reaper took it); outcome not recorded")

// boundedOutput encodes a run's output, truncated like events.
func (s *Service) boundedOutput(v any) string {
	return s.boundedJSON(v)
}

// lastSeq returns the highest event number of a run.
func (s *Service) lastSeq(ctx context.Context, runID string) int {
	var n *int
	s.db.WithContext(ctx).Model(&Event{}).Where("run_id = ?", runID).Select("MAX(seq)").Scan(&n)
	if n == nil || *n < 1 {
		return 1 // seq 1 is run_queued, the run row itself
	}
	return *n
}

// appendEvents stores events of a run not executing here (cancel of a
// queued run, a reaped run).
func (s *Service) appendEvents(ctx context.Context, runID string, evs []pendingEvent, red *redact.Redactor) {
	for i := range evs {
		if evs[i].At.IsZero() {
			evs[i].At = time.Now().UTC()
		}
	}
	seq, stored := s.lastSeq(ctx, runID), 0
	rows := s.redactEvents(runID, &seq, &stored, red, evs)
	if err := s.db.WithContext(ctx).CreateInBatches(rows, 100).Error; err != nil {
		s.log.Error("store run events", "run_id", runID, "err", err)
	}
	s.broker.notify(runID)
}

// runResolver resolves secrets for one block of a run.
type runResolver struct {
	x     *execution
	block string
}

func (rr *runResolver) scope(scope engine.Scope) (string, string, error) {
	r := rr.x.run
	if scope.Project != "" && scope.Project != r.Project {
		return "", "", fmt.Errorf("secrets of project %q are not visible to runs of project %q: %w", scope.Project, r.Project, engine.ErrUnknownSecret)
	}
	env := r.Environment
	if scope.Environment != "" {
		env = scope.Environment
	}
	return r.Project, env, nil
}

func (rr *runResolver) Resolve(ctx context.Context, name string, scope engine.Scope) (string, error) {
	p, e, err := rr.scope(scope)
	if err != nil {
		return "", err
	}
	if rr.x.secrets == nil {
		return "", fmt.Errorf("secret %q is not defined for project %s, environment %s: %w", name, p, e, engine.ErrUnknownSecret)
	}
	return rr.x.secrets.Resolve(ctx, rr.block, name, engine.Scope{Project: p, Environment: e})
}

func (rr *runResolver) Names(ctx context.Context) ([]string, error) {
	if rr.x.s.secrets == nil {
		return nil, nil
	}
	ns, err := rr.x.s.secrets.Names(ctx, rr.x.run.Project, rr.x.run.Environment)
	sort.Strings(ns)
	return ns, err
}

// displayConfig is a block's evaluated configuration as events show it:
// fields the block type marks Secret and credential headers (by name, in
// any object of the configuration) are replaced by "[REDACTED]" whatever
// their value, since a credential built at run time from non-secret parts
// is not a registered value. The run's redactor then masks known values in
// the rest.
func displayConfig(pb *PlannedBlock, cfg map[string]any) map[string]any {
	out := make(map[string]any, len(cfg))
	for k, v := range cfg {
		if f, ok := pb.Info.Spec.Field(k); ok && f.Secret && v != nil {
			out[k] = "[REDACTED]"
			continue
		}
		out[k] = maskCredentialKeys(v, 0)
	}
	return out
}

func maskCredentialKeys(v any, depth int) any {
	if depth > 32 {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			if redact.CredentialHeader(k) && e != nil {
				m[k] = "[REDACTED]"
			} else {
				m[k] = maskCredentialKeys(e, depth+1)
			}
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = maskCredentialKeys(e, depth+1)
		}
		return a
	}
	return v
}

// redactorFor returns a run's own Redactor holding vals: a clone of one
// shared per set of values, so that runs of the same scope do not each
// build the matcher (with every encoding of every value) again.
func (s *Service) redactorFor(vals map[string]string) *redact.Redactor {
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write([]byte(vals[n]))
		h.Write([]byte{0})
	}
	key := string(h.Sum(nil))
	if base, ok := s.redactors.Load(key); ok {
		return base.(*redact.Redactor).Clone()
	}
	base := redact.New()
	base.AddAll(vals)
	if s.nRedactors.Add(1) > maxCachedRedactors {
		// Secrets changed many times: start the cache over.
		s.redactors.Clear()
		s.nRedactors.Store(1)
	}
	s.redactors.Store(key, base)
	return base.Clone()
}

// maxCachedRedactors bounds the shared redactors kept (one per distinct
// set of secret values seen by runs).
const maxCachedRedactors = 256
