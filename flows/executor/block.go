package executor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/plan"
	"github.com/hushflow/hushflow/store"
)

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

// block runs one block with its condition, timeout and retries. ran is
// false when the condition skipped it. at is set when the block takes up
// after a durable wait (see wake); slept is set when the block wakes
// from a durable wait. An attempt that failed because the database did not
// answer is tried again (it is not one of the block's attempts) while it
// is safe: the block may repeat, or it has not acted yet.
func (x *execution) block(ctx context.Context, pb *plan.PlannedBlock, client *http.Client, at *wake, it *iteration) (out any, ran bool, err error) {
	id := pb.Def.ID
	env := x.env(id)
	// The attempt in progress, for the secrets it resolves (blocks and
	// iterations run at once).
	rr := &runResolver{x: x, block: id}
	env.Secrets = rr
	if it != nil {
		// Its secret reads are audited per iteration (block[index]).
		rr.block = iterationKey(id, it.index)
		// An iteration of a block with each: item and index in scope,
		// its events marked with its index, its waits in process.
		env.Each = &engine.Each{Item: it.item, Index: it.index}
		env.OnLog = func(l engine.LogRecord) {
			x.guard.derive(l.Message)
			x.emitIt(it, PendingEvent{Type: "log", Block: id, Data: map[string]any{"level": l.Level, "message": l.Message}})
		}
	}
	var slept *blocks.Sleep
	if at != nil && at.NextAttempt == 0 {
		slept = &at.Sleep
	}
	if pb.If != nil && at == nil {
		cenv := *env // conditions (expr-lang) read plain maps
		_, cenv.Steps = x.stepsNow()
		ok, err := pb.If.Eval(ctx, &cenv)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, ctxErr(ctx)
			}
			// The error may quote what the condition made of a secret
			// (`int(lower(secrets.K))`): learned before any event shows it.
			x.guard.derive(err.Error())
			data := map[string]any{"error": err.Error(), "field": "if"}
			if pb.Def.ContinueOnError {
				data["continued"] = true
			}
			x.emitIt(it, PendingEvent{Type: "block_failed", Block: id, Data: data})
			return nil, false, &blockFailure{block: id, msg: err.Error(), continuable: true, err: fmt.Errorf("block %q: if: %w", id, err)}
		}
		if !ok {
			x.emitIt(it, PendingEvent{Type: "block_skipped", Block: id, Data: map[string]any{"if": pb.Def.If, "type": string(pb.Def.Type)}})
			return nil, false, nil
		}
	}
	attempts, backoff := 1, time.Duration(0)
	if pb.Def.Retry != nil {
		attempts, backoff = pb.Def.Retry.Attempts, pb.Def.Retry.Backoff.D()
	}
	timeout := pb.Def.Timeout.D()
	if timeout <= 0 {
		timeout = x.w.cfg.DefaultBlockTimeout
	}
	began := time.Now()
	started := at != nil // a block waking from a wait has shown its start
	first := 1
	switch {
	case at != nil && at.NextAttempt > 0:
		first, backoff = at.NextAttempt, at.Backoff
	case at != nil && at.Attempt > 0:
		first = at.Attempt
		for range first - 1 {
			backoff *= 2 // as it was after the attempts before
		}
	}
	var outage retryWait
	for attempt := first; ; attempt++ {
		start := time.Now()
		a := &attemptState{block: id}
		rr.cur = a
		out, cfg, err := x.attempt(ctx, pb, env, client, attempt, timeout, &started, slept, it, a)
		var sl *blocks.Sleep
		if errors.As(err, &sl) {
			data := map[string]any{"until": sl.Until, "for_ms": sl.For.Milliseconds()}
			x.emitIt(it, PendingEvent{Type: "block_waiting", Block: id, Data: data})
			return nil, false, &sleeping{block: id, wake: wake{Sleep: *sl, Attempt: attempt}}
		}
		if err == nil {
			took := time.Since(start)
			if slept != nil {
				// A durable wait took its time in the queue, not here.
				took = x.w.now().Sub(slept.Since)
				began = time.Now().Add(-took)
			}
			if it == nil {
				x.blockFinished(pb, model.StatusSucceeded, began)
			}
			x.emitIt(it, PendingEvent{Type: "block_finished", Block: id, Checkpoint: id, Data: map[string]any{
				"output": engine.Plain(out), "attempt": attempt, "duration_ms": took.Milliseconds()}})
			return out, true, nil
		}
		if ctx.Err() == nil && a.retryable(err) {
			// The database did not answer: not the block's failure.
			if !outage.next(ctx, x.w.cfg.Lease) {
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
		if errors.Is(err, blocks.ErrInterrupted) && x.w.drainingWithin(x.hard, stopSignalWindow) {
			// Stopped with this replica (a stop signal sent to every
			// process of the service reached the block's command):
			// interrupted, not failed; the run is released and resumes
			// elsewhere, where the block runs again if it is safe to.
			if it == nil {
				x.blockFinished(pb, model.StatusFailed, began)
			}
			data["interrupted"] = true
			x.emitIt(it, PendingEvent{Type: "block_interrupted", Block: id, Data: data})
			return nil, false, fmt.Errorf("%w: block %q: %w", errShutdown, id, err)
		}
		if attempt >= attempts || ctx.Err() != nil {
			if it == nil {
				x.blockFinished(pb, model.StatusFailed, began)
			}
			if ctx.Err() != nil {
				if cause := ctxErr(ctx); errors.Is(cause, errShutdown) || errors.Is(cause, errLeaseLost) {
					// Interrupted, not failed: the run resumes elsewhere.
					data["interrupted"] = true
					x.emitIt(it, PendingEvent{Type: "block_interrupted", Block: id, Data: data})
					return nil, false, cause
				}
				if cause := ctxErr(ctx); errors.Is(cause, errCanceled) {
					// Stopped by the run's cancel: said so, not as the
					// block's own error ("context canceled").
					data["error"], data["canceled"] = x.red.String(cancelReason(cause)), true
				}
				x.emitIt(it, PendingEvent{Type: "block_failed", Block: id, Data: data})
				return nil, false, ctxErr(ctx)
			}
			if pb.Def.ContinueOnError {
				data["continued"] = true
			}
			x.emitIt(it, PendingEvent{Type: "block_failed", Block: id, Data: data})
			if it != nil {
				// The block reports the failure with the item's index.
				return nil, false, &blockFailure{block: id, msg: err.Error(), continuable: true, err: err}
			}
			f := &blockFailure{block: id, msg: err.Error(), continuable: true, err: err}
			if !namesBlock(err, id) {
				f.err = fmt.Errorf("block %q: %w", id, err)
			}
			return nil, false, f
		}
		data["retry_in_ms"] = backoff.Milliseconds()
		x.emitIt(it, PendingEvent{Type: "block_retry", Block: id, Data: data})
		// The wait this claim woke from was the failed attempt's: the next
		// one starts afresh (a flow block starts a new child, with its
		// flow_started event and the whole timeout).
		slept = nil
		if backoff > x.w.cfg.SleepOver && it == nil {
			// A long wait before the next attempt releases the worker,
			// like a long delay.
			now := x.w.now()
			x.emitIt(it, PendingEvent{Type: "block_waiting", Block: id, Data: map[string]any{
				"until": now.Add(backoff), "for_ms": backoff.Milliseconds(), "next_attempt": attempt + 1}})
			return nil, false, &sleeping{block: id, wake: wake{Sleep: blocks.Sleep{For: backoff, Since: now, Until: now.Add(backoff)},
				NextAttempt: attempt + 1, Backoff: 2 * backoff}}
		}
		_ = x.write(ctx, nil, false)
		select {
		case <-ctx.Done():
			return nil, false, ctxErr(ctx)
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// blockFailure is the failure of a block itself (its condition, or its
// last attempt), as opposed to the end of its claim (a cancel, a
// shutdown, a lost lease, the database away). Only such a failure runs
// the flow's on_error handler, and only a continuable one may become the
// block's output (continue_on_error).
type blockFailure struct {
	block string
	// msg is the block's own error, without the block's name: the
	// output's "error" of a continued block.
	msg string
	// continuable is false for a block that may have acted before an
	// interruption: not knowing is not the block's failure.
	continuable bool
	err         error
}

func (f *blockFailure) Error() string { return f.err.Error() }
func (f *blockFailure) Unwrap() error { return f.err }

// continued is the output of a block that failed with continue_on_error:
// its error (redacted: the output is seen by later blocks, which may send
// it anywhere) and failed: true, so that later blocks can test either.
func (x *execution) continued(f *blockFailure) any {
	return map[string]any{"error": x.red.String(f.msg), "failed": true}
}

// noteInfraOf records a database error met by attempt a.
func (x *execution) noteInfraOf(a *attemptState, err error) {
	if a == nil || !store.IsUnavailable(err) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.infra == nil {
		a.infra = err
	}
}

// stopSignalWindow is how long after a block's command was ended by a stop
// signal its replica may begin to drain for the block to count as
// interrupted by that stop, not failed.
const stopSignalWindow = 3 * time.Second

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

// effectOf is called before attempt a acts outside Hushflow
// (each HTTP request, a process start). For a block that is not safe to
// repeat it first stores, durably, an acting checkpoint, so that a run
// interrupted from now on does not repeat the block blindly; the action
// does not happen if that fails.
func (x *execution) effectOf(ctx context.Context, a *attemptState) error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.safe && !a.marked {
		cp := model.Checkpoint{RunID: x.run.ID, Block: a.block, State: model.CheckpointActing, Detail: a.why, CreatedAt: x.w.now()}
		if err := x.write(ctx, []model.Checkpoint{cp}, true); err != nil {
			return fmt.Errorf("record that the block is about to act: %w", err)
		}
		a.marked = true
	}
	a.acted++
	return nil
}

// attempt evaluates the block's config and runs it once. started says
// whether block_started was emitted (it is, once per block).
func (x *execution) attempt(ctx context.Context, pb *plan.PlannedBlock, env *engine.Env, client *http.Client, attempt int, timeout time.Duration, started *bool, slept *blocks.Sleep, it *iteration, a *attemptState) (any, map[string]any, error) {
	id := pb.Def.ID
	cfg := make(map[string]any, len(pb.Fields))
	for _, f := range pb.Fields {
		switch {
		case f.IsRaw:
			cfg[f.Name] = f.Raw
		case f.Program != nil:
			v, err := x.script(ctx, f.Program, env)
			if err != nil {
				if !*started {
					// The inspector shows the block start, then its failure.
					*started = true
					x.emitIt(it, PendingEvent{Type: "block_started", Block: id, Data: map[string]any{"type": string(pb.Def.Type)}})
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
	shown := displayConfig(pb, cfg, x.red.MaskOf)
	if !*started {
		*started = true
		x.emitIt(it, PendingEvent{Type: "block_started", Block: id, Data: map[string]any{"type": string(pb.Def.Type), "config": shown}})
	}
	b, err := x.w.cfg.Registry.Decode(pb.Def.Type, cfg, x.w.cfg.BlockEnv)
	if err != nil {
		return nil, shown, err
	}
	defer blocks.Release(b)
	bctx, cancel := context.WithTimeout(context.WithValue(ctx, attemptKey{}, a), timeout)
	defer cancel()
	in := &blocks.Input{
		RunID: x.run.ID, FlowName: x.run.Flow, Project: x.run.Project, Environment: x.run.Environment,
		BlockID: id, Attempt: attempt,
		Emit: func(e blocks.Event) { x.emitIt(it, PendingEvent{Type: e.Type, Block: id, Data: e.Data}) },
		Script: func(ctx context.Context, kind, src string) (any, error) {
			opts := []engine.Option{engine.WithTimeout(timeout)}
			if kind == string(engine.Code) {
				// A code block's output keeps the order of its objects
				// into the next block's scripts.
				opts = append(opts, engine.WithOrderedResult())
			}
			p, err := x.w.cfg.Engine.Compile(engine.Kind(kind), src, opts...)
			if err != nil {
				return nil, err
			}
			return x.script(ctx, p, env)
		},
		Secret: func(ctx context.Context, name string) (string, error) {
			return env.Secrets.Resolve(ctx, name, engine.Scope{}) // known to the guard
		},
		Mask:      func(v string) { x.guard.learn("", "", v, nil) },
		Exposed:   func(sink string, names []string) { x.noteExposure(id, sink, names) },
		Redact:    x.red.String,
		MaskOf:    x.red.MaskOf,
		HTTP:      client,
		Effect:    func(ctx context.Context) error { return x.effectOf(ctx, a) },
		Flows:     childCaller{x: x, block: id, attempt: attempt},
		SleepOver: x.w.cfg.SleepOver,
		Slept:     slept,
	}
	// Nothing acts before the run's row is stored. A run that started
	// before its row was stores the audit record of its secrets' load
	// with the row; when the row went alone (the load took longer than
	// its waiter waited), the record is committed now, still before any
	// block acts.
	if err := x.flushInsert(ctx); err != nil {
		return nil, shown, err
	}
	if x.insert != nil {
		if err := x.flushSecrets(ctx); err != nil {
			x.noteInfraOf(a, err)
			return nil, shown, err
		}
	}
	safe, why := false, fmt.Sprintf("block type %q does not say it is safe to run twice", pb.Def.Type)
	if rp, ok := b.(blocks.Repeatable); ok {
		ok, w, err := rp.RepeatSafe(bctx, in)
		if err != nil {
			x.noteInfraOf(a, err)
			return nil, shown, err
		}
		safe, why = ok, w
	}
	if a != nil {
		a.setSafety(safe, why)
	}
	if it != nil {
		in.SleepOver = 0 // an iteration waits in process (up to its timeout)
	}
	out, err := runBlock(bctx, b, in)
	var sl *blocks.Sleep
	if errors.As(err, &sl) {
		now := x.w.now()
		if sl.For > timeout {
			return nil, shown, fmt.Errorf("timed out: a delay of %s is longer than the block's timeout of %s (set the block's timeout to at least the delay)", sl.For, timeout)
		}
		since := now
		if slept != nil && !slept.Since.IsZero() {
			// Woken before its end (another branch's wait ended): the
			// attempt still waits since it began to.
			since = slept.Since
		}
		return nil, shown, &blocks.Sleep{For: sl.For, Since: since, Until: now.Add(sl.For), Await: sl.Await}
	}
	if err != nil && errors.Is(bctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	return out, nil, err
}

// script runs p, a field or a code block of the run, and learns what its
// result or its error derived from the secret values the run read (see
// guard.derive) before either can reach a sink.
func (x *execution) script(ctx context.Context, p *engine.Program, env *engine.Env) (any, error) {
	v, err := p.Run(ctx, env)
	if err != nil {
		x.guard.derive(err.Error())
		return nil, err
	}
	x.guard.deriveValue(v)
	return v, nil
}

// namesBlock reports whether err is an expression error that already names
// block id (with its field, or as the code block), so that wrapping it
// would say the block twice.
func namesBlock(err error, id string) bool {
	var e *engine.Error
	return errors.As(err, &e) && e.Block == id
}

// blockFinished reports a block's end to the metrics hook.
func (x *execution) blockFinished(pb *plan.PlannedBlock, status string, began time.Time) {
	if x.w.cfg.OnBlockFinished != nil {
		x.w.cfg.OnBlockFinished(x.run, string(pb.Def.Type), status, time.Since(began))
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
