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
)

// pendingEvent is an event not yet stored; Data holds real values and is
// redacted when stored.
type pendingEvent struct {
	At    time.Time
	Type  string
	Block string
	Data  map[string]any
}

// execution is one claim of a run by this process: from its first
// unfinished block to its end, an interruption or a durable wait.
type execution struct {
	s    *Service
	run  *Run
	plan *Plan
	w    *store.Batcher // stores events, checkpoints and the outcome
	// hard ends the retries of the run's writes (the process is stopping
	// for good); the run is then left to the rescuer.
	hard    context.Context
	red     *redact.Redactor
	secrets RunSecrets // nil when the server has no secret store
	input   any
	steps   map[string]any
	// resumed holds the checkpoints of an earlier claim, by block id.
	resumed map[string]Checkpoint

	mu      sync.Mutex // guards pending and cur
	pending []pendingEvent
	cur     *attemptState // the block attempt in progress

	// flushMu serializes stores of events; it guards seq, stored and
	// unwritten (rows numbered but not stored yet: a failed write keeps
	// them for the next one, so that no event is lost).
	flushMu   sync.Mutex
	seq       int
	stored    int
	unwritten []Event
}

// attemptState is what the executor knows of one attempt of a block.
type attemptState struct {
	block string

	mu sync.Mutex // guards the fields below
	// safe is whether the block may run again after an interruption; why
	// says why not.
	safe bool
	why  string
	// acted counts the effects begun (requests sent, processes started);
	// marked is set once the acting checkpoint of an unsafe block is
	// stored.
	acted  int
	marked bool
	// infra is the first database error met by the attempt (resolving a
	// secret, say): such an attempt failed for the infrastructure, not
	// for the block.
	infra error
}

// sleeping ends an execution whose block asked for a durable wait.
type sleeping struct {
	block string
	sleep blocks.Sleep
}

func (e *sleeping) Error() string {
	return fmt.Sprintf("block %q is waiting until %s", e.block, e.sleep.Until)
}

// errAbandon ends an execution that can no longer write to its run (the
// database did not answer for longer than the lease, or the lease was
// lost): the run is left to the rescuer, which queues it again.
var errAbandon = errors.New("the worker gave up the run: the database did not answer for longer than its lease")

// execute runs r from its first unfinished block to its end, a durable
// wait or an interruption, and records what happened. It never panics.
// hard ends the retries of its writes.
func (s *Service) execute(ctx, hard context.Context, r *Run, w *store.Batcher) {
	x := &execution{s: s, run: r, w: w, hard: hard, red: redact.New(), steps: map[string]any{}, seq: 1, stored: 1}
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
	var sl *sleeping
	switch {
	case errors.As(err, &sl):
		x.suspend(sl)
	case errors.Is(err, errShutdown):
		x.release(s.releaseReason())
	case errors.Is(err, errLeaseLost), errors.Is(err, errAbandon):
		s.log.Warn("gave up a run", "run_id", r.ID, "attempt", r.Attempt, "reason", x.red.String(err.Error()))
	default:
		x.finish(out, err)
	}
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
				x.flushMu.Lock()
				old = old || len(x.unwritten) > 0
				x.flushMu.Unlock()
				if old {
					// A failure keeps the events for the next flush.
					_ = x.write(ctx, nil, false)
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
	if r.Attempt > 1 {
		// Events go on after those of the earlier claims.
		seq, err := retryLoad(x, ctx, "read the run's events", func(ctx context.Context) (int, error) {
			return lastSeq(s.db.WithContext(ctx), r.ID)
		})
		if err != nil {
			return nil, fmt.Errorf("read the run's events: %w", err)
		}
		x.seq, x.stored = seq, seq
	}
	if r.CancelReq {
		return nil, errCanceled // asked while it was released or waiting
	}
	if r.Resumes > s.cfg.MaxResumes {
		return nil, fmt.Errorf("this run was interrupted %d times, more than the limit of %d resumes (HUSHFLOW_MAX_RESUMES); the last time: %s",
			r.Resumes, s.cfg.MaxResumes, r.ResumeReason)
	}
	plan, err := retryLoad(x, ctx, "load the flow", func(ctx context.Context) (*Plan, error) {
		return s.plan(ctx, r.FlowID, r.FlowVersion)
	})
	if err != nil {
		return nil, fmt.Errorf("load flow %q version %d: %w", r.Flow, r.FlowVersion, err)
	}
	x.plan = plan
	var pins = map[string][]string{}
	if s.secrets != nil {
		rs, err := retryLoad(x, ctx, "load the run's secrets", func(ctx context.Context) (RunSecrets, error) {
			return s.secrets.ForRun(ctx, r.Project, r.Environment, r.ID)
		})
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
	var last any
	if r.Attempt > 1 {
		if last, err = x.resume(ctx); err != nil {
			return nil, err
		}
	} else {
		// A known secret value passed in the input is masked in every view.
		x.emit(pendingEvent{Type: "run_started", Data: map[string]any{"input": x.input, "worker": s.owner}})
	}
	client := s.client(pins, x)
	for i := range plan.Blocks {
		if err := ctx.Err(); err != nil {
			return nil, ctxErr(ctx)
		}
		pb := &plan.Blocks[i]
		id := pb.Def.ID
		var slept *blocks.Sleep
		if cp, ok := x.resumed[id]; ok {
			switch cp.State {
			case cpDone, cpSkipped:
				continue // restored by resume
			case cpActing:
				return nil, fmt.Errorf("block %q was interrupted (%s) after it may have acted, and is not safe to repeat: %s; "+
					"check whether it did, then start the run again", id, r.ResumeReason, cp.Detail)
			case cpSleeping:
				slept = new(blocks.Sleep)
				if err := json.Unmarshal([]byte(cp.Detail), slept); err != nil {
					return nil, fmt.Errorf("block %q: read its wait: %w", id, err)
				}
				slept.Woke = s.now()
			}
		}
		out, ran, err := x.block(ctx, pb, client, slept)
		if err != nil {
			return nil, err
		}
		cp := Checkpoint{RunID: r.ID, Block: id, State: cpSkipped, CreatedAt: s.now()}
		if ran {
			x.steps[id] = map[string]any{"output": out}
			last = out
			cp.State = cpDone
		}
		// A finished block's output and events are stored, durably,
		// before the next block starts; those of the last block go with
		// the outcome.
		if i < len(plan.Blocks)-1 {
			if ran {
				if cp.Output, err = x.seal(id, out); err != nil {
					return nil, err
				}
			}
			if err := x.save(ctx, []Checkpoint{cp}); err != nil {
				return nil, err
			}
		}
	}
	return last, nil
}

// resume restores what earlier claims of the run finished: the steps from
// the checkpoints, the event numbering from the stored events. It returns
// the output of the last finished block.
func (x *execution) resume(ctx context.Context) (any, error) {
	s, r := x.s, x.run
	cps, err := retryLoad(x, ctx, "load the run's checkpoints", func(ctx context.Context) ([]Checkpoint, error) {
		var cps []Checkpoint
		return cps, store.Translate(s.db.WithContext(ctx).Where("run_id = ?", r.ID).Find(&cps).Error)
	})
	if err != nil {
		return nil, fmt.Errorf("load the run's checkpoints: %w", err)
	}
	x.resumed = make(map[string]Checkpoint, len(cps))
	for _, cp := range cps {
		x.resumed[cp.Block] = cp
	}
	var last any
	from, reason := "", r.ResumeReason
	for _, pb := range x.plan.Blocks {
		id := pb.Def.ID
		cp, ok := x.resumed[id]
		if ok && cp.State == cpDone {
			out, err := x.open(id, cp.Output)
			if err != nil {
				return nil, fmt.Errorf("block %q: open its checkpoint: %w", id, err)
			}
			x.steps[id] = map[string]any{"output": out}
			last = out
			continue
		}
		if ok && cp.State == cpSkipped {
			continue
		}
		if from == "" {
			from = id
			if ok && cp.State == cpSleeping {
				reason = fmt.Sprintf("the wait of block %q ended", id)
			}
		}
	}
	data := map[string]any{"reason": reason, "attempt": r.Attempt, "resumes": r.Resumes, "worker": s.owner}
	if from != "" {
		data["from_block"] = from
	}
	x.emit(pendingEvent{Type: "run_resumed", Data: data})
	if reason == r.ResumeReason && r.Resumes > 0 && s.cfg.OnResumed != nil {
		s.cfg.OnResumed(r, resumeKind(r.ResumeReason))
	}
	return last, nil
}

// resumeKind is the metrics label of a resume reason.
func resumeKind(reason string) string {
	switch {
	case strings.Contains(reason, "shut down"):
		return "shutdown"
	case strings.Contains(reason, "lease"):
		return "lease"
	}
	return "other"
}

func ctxErr(ctx context.Context) error {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errCanceled):
		return errCanceled
	case errors.Is(cause, errShutdown):
		return errShutdown
	case errors.Is(cause, errLeaseLost):
		return errLeaseLost
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
// false when the condition skipped it. slept is set when the block wakes
// from a durable wait. An attempt that failed because the database did not
// answer is tried again (it is not one of the block's attempts) while it
// is safe: the block may repeat, or it has not acted yet.
func (x *execution) block(ctx context.Context, pb *PlannedBlock, client *http.Client, slept *blocks.Sleep) (out any, ran bool, err error) {
	id := pb.Def.ID
	env := x.env(id)
	if pb.If != nil && slept == nil {
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
	started := slept != nil // a block waking from a wait has shown its start
	var outage retryWait
	for attempt := 1; ; attempt++ {
		start := time.Now()
		a := x.beginAttempt(id)
		out, cfg, err := x.attempt(ctx, pb, env, client, attempt, timeout, &started, slept)
		x.endAttempt()
		var sl *blocks.Sleep
		if errors.As(err, &sl) {
			data := map[string]any{"until": sl.Until, "for_ms": sl.For.Milliseconds()}
			x.emit(pendingEvent{Type: "block_waiting", Block: id, Data: data})
			return nil, false, &sleeping{block: id, sleep: *sl}
		}
		if err == nil {
			x.blockFinished(pb, StatusSucceeded, began)
			x.emit(pendingEvent{Type: "block_finished", Block: id, Data: map[string]any{
				"output": out, "attempt": attempt, "duration_ms": time.Since(start).Milliseconds()}})
			return out, true, nil
		}
		if ctx.Err() == nil && a.retryable(err) {
			// The database did not answer: not the block's failure.
			if !outage.next(ctx, x.s.cfg.Lease) {
				if ctx.Err() != nil {
					return nil, false, ctxErr(ctx)
				}
				return nil, false, errAbandon
			}
			attempt--
			continue
		}
		data := map[string]any{"error": err.Error(), "attempt": attempt, "duration_ms": time.Since(start).Milliseconds()}
		if cfg != nil {
			data["config"] = cfg
		}
		if attempt >= attempts || ctx.Err() != nil {
			x.blockFinished(pb, StatusFailed, began)
			if ctx.Err() != nil {
				if cause := ctxErr(ctx); errors.Is(cause, errShutdown) || errors.Is(cause, errLeaseLost) {
					// Interrupted, not failed: the run resumes elsewhere.
					data["interrupted"] = true
					x.emit(pendingEvent{Type: "block_interrupted", Block: id, Data: data})
					return nil, false, cause
				}
				x.emit(pendingEvent{Type: "block_failed", Block: id, Data: data})
				return nil, false, ctxErr(ctx)
			}
			x.emit(pendingEvent{Type: "block_failed", Block: id, Data: data})
			if namesBlock(err, id) {
				return nil, false, err
			}
			return nil, false, fmt.Errorf("block %q: %w", id, err)
		}
		data["retry_in_ms"] = backoff.Milliseconds()
		x.emit(pendingEvent{Type: "block_retry", Block: id, Data: data})
		_ = x.write(ctx, nil, false)
		select {
		case <-ctx.Done():
			return nil, false, ctxErr(ctx)
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// beginAttempt starts tracking an attempt of block id.
func (x *execution) beginAttempt(id string) *attemptState {
	a := &attemptState{block: id}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cur = a
	return a
}

func (x *execution) endAttempt() {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.cur = nil
}

// noteInfra records a database error met by the attempt in progress.
func (x *execution) noteInfra(err error) {
	if !store.IsUnavailable(err) {
		return
	}
	x.mu.Lock()
	a := x.cur
	x.mu.Unlock()
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.infra == nil {
		a.infra = err
	}
}

// retryable reports whether an attempt that failed with err failed for
// the database (not for the block) and may be tried again: the block is
// safe to repeat, or it has not acted yet.
func (a *attemptState) retryable(err error) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	// Only errors known to come from the database count: a block's own
	// network errors look alike but are the block's failures.
	if a.infra == nil && !errors.Is(err, store.ErrUnavailable) {
		return false
	}
	return a.safe || a.acted == 0
}

// setSafety records whether the attempt's block may repeat.
func (a *attemptState) setSafety(safe bool, why string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.safe, a.why = safe, why
}

// effect is called before the block in progress acts outside Hushflow
// (each HTTP request, a process start). For a block that is not safe to
// repeat it first stores, durably, an acting checkpoint, so that a run
// interrupted from now on does not repeat the block blindly; the action
// does not happen if that fails.
func (x *execution) effect(ctx context.Context) error {
	x.mu.Lock()
	a := x.cur
	x.mu.Unlock()
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.safe && !a.marked {
		cp := Checkpoint{RunID: x.run.ID, Block: a.block, State: cpActing, Detail: a.why, CreatedAt: x.s.now()}
		if err := x.write(ctx, []Checkpoint{cp}, true); err != nil {
			return fmt.Errorf("record that the block is about to act: %w", err)
		}
		a.marked = true
	}
	a.acted++
	return nil
}

// attempt evaluates the block's config and runs it once. started says
// whether block_started was emitted (it is, once per block).
func (x *execution) attempt(ctx context.Context, pb *PlannedBlock, env *engine.Env, client *http.Client, attempt int, timeout time.Duration, started *bool, slept *blocks.Sleep) (any, map[string]any, error) {
	id := pb.Def.ID
	cfg := make(map[string]any, len(pb.Fields))
	for _, f := range pb.Fields {
		switch {
		case f.IsRaw:
			cfg[f.Name] = f.Raw
		case f.Program != nil:
			v, err := f.Program.Run(ctx, env)
			if err != nil {
				if !*started {
					// The inspector shows the block start, then its failure.
					*started = true
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
	if !*started {
		*started = true
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
		Mask:      func(v string) { x.red.Add("", v) },
		HTTP:      client,
		Effect:    x.effect,
		SleepOver: x.s.cfg.SleepOver,
		Slept:     slept,
	}
	safe, why := false, fmt.Sprintf("block type %q does not say it is safe to run twice", pb.Def.Type)
	if rp, ok := b.(blocks.Repeatable); ok {
		ok, w, err := rp.RepeatSafe(bctx, in)
		if err != nil {
			x.noteInfra(err)
			return nil, shown, err
		}
		safe, why = ok, w
	}
	x.mu.Lock()
	a := x.cur
	x.mu.Unlock()
	if a != nil {
		a.setSafety(safe, why)
	}
	out, err := runBlock(bctx, b, in)
	var sl *blocks.Sleep
	if errors.As(err, &sl) {
		now := x.s.now()
		if sl.For > timeout {
			return nil, shown, fmt.Errorf("timed out: a delay of %s is longer than the block's timeout of %s (set the block's timeout to at least the delay)", sl.For, timeout)
		}
		return nil, shown, &blocks.Sleep{For: sl.For, Since: now, Until: now.Add(sl.For)}
	}
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
	if x.s.cfg.OnBlockFinished != nil {
		x.s.cfg.OnBlockFinished(x.run, string(pb.Def.Type), status, time.Since(began))
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

// emit buffers an event; it is stored, redacted, at the next write.
func (x *execution) emit(e pendingEvent) {
	if e.At.IsZero() {
		e.At = x.s.now()
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pending = append(x.pending, e)
}

// takeRows numbers and redacts the buffered events, after the rows a
// failed write left. x.flushMu must be held.
func (x *execution) takeRowsLocked() []Event {
	x.mu.Lock()
	evs := x.pending
	x.pending = nil
	x.mu.Unlock()
	rows := x.unwritten
	x.unwritten = nil
	if len(evs) > 0 {
		rows = append(rows, x.s.redactEvents(x.run.ID, &x.seq, &x.stored, x.red, evs)...)
	}
	return rows
}

// write stores the buffered events and checkpoints cps while the run is
// still leased to this claim (extending the lease), once. durable waits
// for the disk (checkpoints). On failure the events are kept for the next
// write; errLeaseLost means the run was taken from this worker.
func (x *execution) write(ctx context.Context, cps []Checkpoint, durable bool) error {
	x.flushMu.Lock()
	defer x.flushMu.Unlock()
	rows := x.takeRowsLocked()
	if len(rows) == 0 && len(cps) == 0 {
		return nil
	}
	r := x.run
	h := hold{id: r.ID, owner: x.s.owner, attempt: r.Attempt, checkpoints: cps}
	applied, err := x.w.Write(context.WithoutCancel(ctx), store.Write{
		Merge: &store.Merge{Key: "flows.hold", Item: h, Apply: x.s.holdLeases},
		Rows:  []any{rows}, Durable: durable})
	if err != nil {
		x.unwritten = rows
		return err
	}
	if !applied {
		return errLeaseLost
	}
	x.s.broker.notify(r.ID)
	return nil
}

// save stores the buffered events and checkpoints cps durably, retrying
// while the database does not answer (for as long as the run's lease
// would hold). It fails with errLeaseLost when the run was taken from
// this worker, errAbandon when the database stayed away.
func (x *execution) save(ctx context.Context, cps []Checkpoint) error {
	var w retryWait
	for {
		err := x.write(ctx, cps, true)
		if err == nil || errors.Is(err, errLeaseLost) {
			return err
		}
		if !store.IsUnavailable(err) {
			return fmt.Errorf("store the run's events and checkpoints: %w", err)
		}
		x.s.log.Warn("store run events: database unavailable, retrying", "run_id", x.run.ID, "err", x.red.Error(err))
		if !w.next(x.hard, x.s.cfg.Lease) {
			return errAbandon
		}
	}
}

// retryWait paces the retries of an operation that failed because the
// database did not answer: 100 ms doubling to 2 s, for at most a window
// from the first failure.
type retryWait struct {
	first time.Time
	delay time.Duration
}

// next waits before the next try; false when ctx is done or the window
// has passed.
func (w *retryWait) next(ctx context.Context, window time.Duration) bool {
	if w.first.IsZero() {
		w.first, w.delay = time.Now(), 100*time.Millisecond
	}
	if time.Since(w.first) > window {
		return false
	}
	t := time.NewTimer(w.delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	}
	w.delay = min(2*w.delay, 2*time.Second)
	return true
}

// retryLoad runs load, retrying while the database does not answer for
// as long as the run's lease would hold; then it gives the run up
// (errAbandon), to be resumed when the database is back.
func retryLoad[T any](x *execution, ctx context.Context, what string, load func(context.Context) (T, error)) (T, error) {
	var w retryWait
	for {
		v, err := load(ctx)
		if err == nil || !store.IsUnavailable(err) {
			return v, err
		}
		x.s.log.Warn("database unavailable, retrying", "run_id", x.run.ID, "while", what, "err", x.red.Error(err))
		if !w.next(ctx, x.s.cfg.Lease) {
			if ctx.Err() != nil {
				return v, ctxErr(ctx)
			}
			return v, errAbandon
		}
	}
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
	v, err := rr.x.secrets.Resolve(ctx, rr.block, name, engine.Scope{Project: p, Environment: e})
	if err != nil {
		rr.x.noteInfra(err)
	}
	return v, err
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
