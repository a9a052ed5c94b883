package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/plan"
	"github.com/hushflow/hushflow/redact"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// execution is one claim of a run by this process: from its first
// unfinished block to its end, an interruption or a durable wait.
type execution struct {
	w       *Worker
	run     *model.Run
	plan    *plan.Plan
	batcher *store.Batcher // stores events, checkpoints and the outcome
	// insert is the run's own insert while it started before its row was
	// stored (nil when it was stored first).
	insert *pendingInsert
	// hard ends the retries of the run's writes (the process is stopping
	// for good); the run is then left to the rescuer.
	hard    context.Context
	red     *redact.Redactor
	guard   guard            // the run's values beyond its redactor's start: names and pins
	secrets model.RunSecrets // nil when the server has no secret store
	input   any
	// input0 is the run's real input (JSON) when its stored one is
	// masked (a sub-flow's, see inherit); empty otherwise.
	input0 string
	// steps are the outputs of the blocks run, as scripts see them (their
	// objects may be *engine.Object, which keep their order); condSteps
	// are the same as plain maps, for conditions. stepsMu guards them;
	// they are replaced, never changed (setStep).
	stepsMu          sync.Mutex
	steps, condSteps map[string]any
	// resumed holds the checkpoints of an earlier claim, by block id.
	resumed map[string]model.Checkpoint
	// failure is set once the run failed and its on_error handler runs:
	// the handler's blocks see it as `error` and `failed_block`.
	failure *engine.Failure

	mu      sync.Mutex // guards pending
	pending []PendingEvent

	// flushMu serializes stores of events; it guards seq, stored and
	// unwritten (rows numbered but not stored yet: a failed write keeps
	// them for the next one, so that no event is lost).
	flushMu   sync.Mutex
	seq       int
	stored    int
	unwritten []model.Event

	// loaded is when the run's secret values were loaded (this claim's
	// start).
	loaded time.Time
	expMu  sync.Mutex // guards exp
	exp    exposures
}

// sleeping ends an execution whose block asked for a durable wait.
type sleeping struct {
	block string
	wake  wake
}

func (e *sleeping) Error() string {
	return fmt.Sprintf("block %q is waiting until %s", e.block, e.wake.Until)
}

// wake is what a sleeping checkpoint holds (as JSON in its detail): the
// block's own wait (a delay: Sleep), or the wait before its next attempt
// (a long retry backoff: NextAttempt and Backoff, the backoff after it).
type wake struct {
	blocks.Sleep
	NextAttempt int           `json:",omitempty"`
	Backoff     time.Duration `json:",omitempty"`
	// Attempt is the attempt that slept (its own wait), which goes on.
	Attempt int `json:",omitempty"`
}

// errAbandon ends an execution that can no longer write to its run (the
// database did not answer for longer than the lease, or the lease was
// lost): the run is left to the rescuer, which queues it again.
var errAbandon = errors.New("the worker gave up the run: the database did not answer for longer than its lease")

// execute runs r from its first unfinished block to its end, a durable
// wait or an interruption, and records what happened. It never panics.
// hard ends the retries of its writes.
func (w *Worker) execute(ctx, hard context.Context, r *model.Run, batcher *store.Batcher, insert *pendingInsert) {
	x := &execution{w: w, run: r, batcher: batcher, insert: insert, hard: hard, red: redact.New(), steps: map[string]any{}, condSteps: map[string]any{}, seq: 1, stored: 1}
	if insert != nil {
		// Whoever waits for the insert hears of a run that ended without
		// storing it (given up), rather than waiting on.
		defer insert.finish(errors.New("the run ended before it was stored"))
	}
	stop := x.flushSlow(ctx)
	var out any
	err := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				w.log.Error("panic in run", "run_id", r.ID, "panic", x.red.String(fmt.Sprint(v)), "stack", string(debug.Stack()))
				err = fmt.Errorf("internal error while executing the run (panic recovered); see the server log for run %s", r.ID)
			}
		}()
		out, err = x.do(ctx)
		return err
	}()
	stop()
	if x.notStored() {
		// Its insert failed, and its waiter has the error (a flow changed
		// since it was read, a database that did not answer): nothing of
		// the run is stored, and no block acted. The audit record of its
		// secrets' load is, all the same.
		if x.secrets != nil {
			_ = x.secrets.Flush(context.WithoutCancel(ctx))
		}
		return
	}
	var sl *sleeping
	switch {
	case errors.As(err, &sl):
		x.suspend(sl)
	case errors.Is(err, errShutdown) && errors.Is(err, blocks.ErrInterrupted):
		x.release(fmt.Sprintf("worker %s is shutting down and its stop signal reached a block: %s", w.owner, x.red.String(err.Error())))
	case errors.Is(err, errShutdown):
		x.release(w.releaseReason())
	case errors.Is(err, errLeaseLost), errors.Is(err, errAbandon):
		w.log.Warn("gave up a run", "run_id", r.ID, "attempt", r.Attempt, "reason", x.red.String(err.Error()))
		x.flushMu.Lock()
		rows := x.takeRowsLocked()
		x.flushMu.Unlock()
		w.logUnrecorded(rows)
	default:
		x.finish(out, err)
	}
}

// logUnrecorded writes to the server log the events (redacted rows) of a
// run given up that the database never took: the run resumes elsewhere
// from its last checkpoint, and what a block had done meanwhile (a
// request sent, its answer) would otherwise be known nowhere.
func (w *Worker) logUnrecorded(rows []model.Event) {
	for _, e := range rows {
		data := e.Data
		if len(data) > 2048 {
			data = data[:2048] + "…"
		}
		w.log.Warn("event of a run given up, not stored", "run_id", e.RunID, "seq", e.Seq, "type", e.Type, "block", e.Block,
			"at", e.At, "data", data)
	}
}

// flushSlow stores the events of a block that runs for a while (a delay, a
// slow request), so that the inspector shows them live; fast blocks'
// events are stored together at the block's end. It returns a function
// that stops it. A timer, not a goroutine: a run that ends within
// slowFlush (most) costs no extra goroutine nor wake-up.
func (x *execution) flushSlow(ctx context.Context) (stop func()) {
	var (
		mu      sync.Mutex // guards stopped and t's rearming
		stopped bool
		t       *time.Timer
		busy    sync.WaitGroup // a flush in progress
	)
	flush := func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		busy.Add(1)
		mu.Unlock()
		defer busy.Done()
		now := time.Now()
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
		mu.Lock()
		if !stopped {
			t.Reset(slowFlush)
		}
		mu.Unlock()
	}
	mu.Lock()
	t = time.AfterFunc(slowFlush, flush)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
		busy.Wait()
	}
}

// slowFlush is how long an event may wait in memory while a block runs.
const slowFlush = 200 * time.Millisecond

func (x *execution) do(ctx context.Context) (any, error) {
	w, r := x.w, x.run
	if r.Attempt > 1 {
		// Events go on after those of the earlier claims.
		seq, err := retryLoad(x, ctx, "read the run's events", func(ctx context.Context) (int, error) {
			return w.cfg.Driver.LastSeq(w.cfg.DB.WithContext(ctx), r.ID)
		})
		if err != nil {
			return nil, fmt.Errorf("read the run's events: %w", err)
		}
		x.seq, x.stored = seq, seq
	}
	if r.CancelReq {
		return nil, canceled(r.CancelReason) // asked while it was released or waiting
	}
	// Drains (a replica shut down and released the run) are planned: a
	// run may live through any number of deploys.
	if n := r.Resumes - r.Drains; n > w.cfg.MaxResumes {
		return nil, fmt.Errorf("this run was interrupted %d times, more than the limit of %d resumes (HUSHFLOW_MAX_RESUMES; drains of a replica that shut down do not count); the last time: %s",
			n, w.cfg.MaxResumes, r.ResumeReason)
	}
	plan, err := retryLoad(x, ctx, "load the flow", func(ctx context.Context) (*plan.Plan, error) {
		return w.cfg.Plans.Get(ctx, r.FlowID, r.FlowVersion)
	})
	if err != nil {
		return nil, fmt.Errorf("load flow %q version %d: %w", r.Flow, r.FlowVersion, err)
	}
	x.plan = plan
	if w.cfg.Secrets != nil {
		rs, err := retryLoad(x, ctx, "load the run's secrets", func(ctx context.Context) (model.RunSecrets, error) {
			return w.cfg.Secrets.ForRun(ctx, r.Project, r.Environment, r.ID)
		})
		if err != nil {
			return nil, fmt.Errorf("load secrets of project %q, environment %q: %w", r.Project, r.Environment, err)
		}
		x.secrets, x.loaded = rs, w.now()
		if x.insert != nil {
			x.insert.handTo(rs) // stored with the run's first audited read, or its first write
		}
		vis := rs.Visible()
		x.red = w.redactorFor(vis)
		x.guard.start(x.red, vis, w.derivers)
	} else {
		x.guard.start(x.red, nil, w.derivers)
	}
	if r.Inherits() {
		// A sub-flow masks what its parent learnt at run time, a rerun
		// what the run it repeats knew.
		if _, err := retryLoad(x, ctx, "load what the parent run passed on", func(ctx context.Context) (struct{}, error) {
			return struct{}{}, x.inherit(ctx)
		}); err != nil {
			return nil, err
		}
	}
	// Decoded with the order of its keys, which scripts see (JSON.stringify,
	// Object.keys) as JavaScript would.
	if x.input, err = engine.DecodeJSON([]byte(x.realInput())); err != nil {
		return nil, fmt.Errorf("run input: %w", err)
	}
	if r.Attempt > 1 {
		if err := x.resume(ctx); err != nil {
			return nil, err
		}
	} else {
		// A known secret value passed in the input is masked in every view.
		x.emit(PendingEvent{Type: "run_started", Data: map[string]any{"input": engine.Plain(x.input), "worker": w.owner}})
	}
	client := w.client(x)
	if x.failure == nil {
		out, err := x.runBlocks(ctx, plan.Blocks, client)
		if err == nil && plan.Def.Output != "" {
			out, _ = x.output(plan.Def.Output)
		}
		var f *blockFailure
		if err == nil || len(plan.OnError) == 0 || !errors.As(err, &f) {
			return out, err
		}
		// The run failed: its on_error handler runs, from a checkpoint
		// that says so, so that a run interrupted in the handler resumes
		// the handler rather than its failed block.
		x.failure = &engine.Failure{Error: x.red.String(err.Error()), FailedBlock: f.block}
		x.emit(PendingEvent{Type: "on_error_started", Data: map[string]any{"error": x.failure.Error, "failed_block": f.block}})
		detail, err := json.Marshal(x.failure)
		if err != nil {
			return nil, err
		}
		cp := model.Checkpoint{RunID: r.ID, Block: failureCheckpoint, State: model.CheckpointFailed, Detail: string(detail), CreatedAt: w.now()}
		if err := x.save(ctx, []model.Checkpoint{cp}); err != nil {
			return nil, err
		}
	}
	return nil, x.handle(ctx, client)
}

// failureCheckpoint is the block name of the checkpoint a failed run with
// an on_error handler keeps while the handler runs: not an identifier, so
// no block's.
const failureCheckpoint = "$on_error"

// HandlerFailure returns the error run id failed with when it is in its
// on_error handler (its failure checkpoint, redacted); "" when it is not.
func HandlerFailure(db *gorm.DB, id string) (string, error) {
	var cps []model.Checkpoint
	if err := db.Where("run_id = ? AND block = ? AND state = ?", id, failureCheckpoint, model.CheckpointFailed).Limit(1).Find(&cps).Error; err != nil {
		return "", store.Translate(err)
	}
	if len(cps) == 0 {
		return "", nil
	}
	var f engine.Failure
	if err := json.Unmarshal([]byte(cps[0].Detail), &f); err != nil {
		return "", fmt.Errorf("read the failure of run %s: %w", id, err)
	}
	return f.Error, nil
}

// HandlerCanceled is the error of a run canceled in its on_error handler,
// which failed before the cancel with failure: it ends failed.
func HandlerCanceled(failure string) string {
	return (&runFailed{msg: failure, handler: "it was canceled"}).Error()
}

// runBlocks runs list (the flow's blocks, or its on_error handler) from
// its unfinished blocks: each block once the blocks it needs have
// finished, those whose needs are met at once, storing each finished
// block's checkpoint before a block that needs it starts. It returns the
// output of the last block of the list that ran. After a block fails (for good), or the claim ends, no block
// starts; those running finish.
func (x *execution) runBlocks(ctx context.Context, list []plan.PlannedBlock, client *http.Client) (any, error) {
	g := &graphRun{x: x, list: list, done: make([]bool, len(list)), started: make([]bool, len(list))}
	for i := range list {
		if cp, ok := x.resumed[list[i].Def.ID]; ok && (cp.State == model.CheckpointDone || cp.State == model.CheckpointSkipped) {
			g.done[i], g.started[i] = true, true // restored by resume
		}
	}
	results := make(chan blockResult)
	for {
		if g.end == nil && ctx.Err() != nil {
			g.end = ctxErr(ctx)
		}
		var next []int
		if g.end == nil && g.failed == nil {
			next = g.ready()
		}
		if len(next) == 0 && g.running == 0 {
			break
		}
		if len(next) == 1 && g.running == 0 {
			// One block at a time, as in a flow without needs: no goroutine.
			g.started[next[0]] = true
			g.settle(ctx, x.runOne(ctx, next[0], &list[next[0]], client))
			continue
		}
		for _, i := range next {
			g.started[i] = true
			g.running++
			go func() { results <- x.runOne(ctx, i, &list[i], client) }()
		}
		res := <-results
		g.running--
		g.settle(ctx, res)
	}
	switch {
	case g.end != nil:
		return nil, g.end
	case g.failed != nil:
		return nil, g.failed
	case len(g.sleepers) > 0:
		// The run waits until the first wait ends; the other sleeping
		// blocks keep theirs in their checkpoints.
		slices.SortFunc(g.sleepers, func(a, b *sleeping) int { return a.wake.Until.Compare(b.wake.Until) })
		var cps []model.Checkpoint
		for _, sl := range g.sleepers[1:] {
			detail, err := json.Marshal(sl.wake)
			if err != nil {
				return nil, err
			}
			cps = append(cps, model.Checkpoint{RunID: x.run.ID, Block: sl.block, State: model.CheckpointSleeping, Detail: string(detail), CreatedAt: x.w.now()})
		}
		if len(cps) > 0 {
			if err := x.save(ctx, cps); err != nil {
				return nil, err
			}
		}
		return nil, g.sleepers[0]
	}
	for i := len(list) - 1; i >= 0; i-- {
		if v, ok := x.output(list[i].Def.ID); ok {
			return v, nil
		}
	}
	return nil, nil
}

// graphRun is the state of one runBlocks.
type graphRun struct {
	x             *execution
	list          []plan.PlannedBlock
	done, started []bool
	running       int
	end           error // the first end of the claim (cancel, shutdown, lost lease, a write that failed)
	failed        error // the first block that failed for good
	sleepers      []*sleeping
}

// blockResult is what one block gave.
type blockResult struct {
	i   int
	out any
	ran bool
	err error
}

// ready returns the blocks not started whose needs have finished.
func (g *graphRun) ready() []int {
	var out []int
	for i := range g.list {
		if !g.started[i] && !slices.ContainsFunc(g.list[i].Needs, func(j int) bool { return !g.done[j] }) {
			out = append(out, i)
		}
	}
	return out
}

// settle takes in the result of a block: its output in steps and its
// checkpoint stored (durably, before any block that needs it starts;
// that of the last block to finish goes with the run's outcome), or its
// failure, wait or end of the claim.
func (g *graphRun) settle(ctx context.Context, res blockResult) {
	x, pb := g.x, &g.list[res.i]
	id := pb.Def.ID
	err := res.err
	var f *blockFailure
	if err != nil && pb.Def.ContinueOnError && errors.As(err, &f) && f.continuable {
		res.out, res.ran, err = x.continued(f), true, nil
	}
	var sl *sleeping
	switch {
	case err == nil:
	case errors.As(err, &sl):
		g.sleepers = append(g.sleepers, sl)
		return
	case errors.As(err, &f):
		if g.failed == nil {
			g.failed = err
		}
		return
	default:
		if g.end == nil {
			g.end = err
		}
		return
	}
	g.done[res.i] = true
	cp := model.Checkpoint{RunID: x.run.ID, Block: id, State: model.CheckpointSkipped, CreatedAt: x.w.now()}
	if res.ran {
		x.setStep(id, res.out)
		cp.State = model.CheckpointDone
	}
	last := g.running == 0 && g.failed == nil && g.end == nil && len(g.sleepers) == 0 && !slices.Contains(g.started, false)
	if last {
		return
	}
	if res.ran {
		if cp.Output, err = x.seal(id, res.out); err != nil {
			g.end = err
			return
		}
	}
	if err := x.save(ctx, []model.Checkpoint{cp}); err != nil && g.end == nil {
		g.end = err
	}
}

// runOne runs block i of a list: its checkpoint of an earlier claim
// says whether it acted (it is not repeated) or waits (it takes up after
// its wait, or waits again while the wait is not over).
func (x *execution) runOne(ctx context.Context, i int, pb *plan.PlannedBlock, client *http.Client) blockResult {
	id := pb.Def.ID
	var at *wake
	if cp, ok := x.resumed[id]; ok {
		switch cp.State {
		case model.CheckpointActing:
			err := fmt.Errorf("block %q was interrupted (%s) after it may have acted, and is not safe to repeat: %s; "+
				"check whether it did, then start the run again", id, x.run.ResumeReason, cp.Detail)
			x.emit(PendingEvent{Type: "block_failed", Block: id, Data: map[string]any{"error": err.Error(), "interrupted": true}})
			// The run fails (and its on_error handler runs), but the
			// block is not continued: whether it failed is unknown.
			return blockResult{i: i, err: &blockFailure{block: id, msg: err.Error(), err: err}}
		case model.CheckpointSleeping:
			at = new(wake)
			if err := json.Unmarshal([]byte(cp.Detail), at); err != nil {
				return blockResult{i: i, err: fmt.Errorf("block %q: read its wait: %w", id, err)}
			}
			now := x.w.now()
			if at.Await == "" && at.Until.Sub(now) > x.w.cfg.SleepOver {
				// Another block's wait ended first: this one waits on. (A
				// block awaiting a run looks at it, woken early or not.)
				return blockResult{i: i, err: &sleeping{block: id, wake: *at}}
			}
			at.Woke = now
		}
	}
	var res blockResult
	res.i = i
	if pb.Each != nil {
		res.out, res.ran, res.err = x.each(ctx, pb, client)
	} else {
		res.out, res.ran, res.err = x.block(ctx, pb, client, at, nil)
	}
	return res
}

// handle runs the flow's on_error handler after the run failed with
// x.failure, and returns the run's error: the original one, with the
// handler's own failure added when it failed. An end of the claim (a
// durable wait, a shutdown, a lost lease) is returned as it is: the run
// resumes in the handler.
func (x *execution) handle(ctx context.Context, client *http.Client) error {
	_, err := x.runBlocks(ctx, x.plan.OnError, client)
	var sl *sleeping
	switch {
	case errors.As(err, &sl), errors.Is(err, errShutdown), errors.Is(err, errLeaseLost), errors.Is(err, errAbandon):
		return err
	case err == nil:
		x.emit(PendingEvent{Type: "on_error_finished", Data: map[string]any{"status": model.StatusSucceeded}})
		return &runFailed{msg: x.failure.Error}
	case errors.Is(err, errCanceled):
		// The run failed before the cancel: it ends failed, not canceled.
		x.emit(PendingEvent{Type: "on_error_finished", Data: map[string]any{"status": model.StatusCanceled}})
		return &runFailed{msg: x.failure.Error, handler: "it was canceled"}
	}
	x.emit(PendingEvent{Type: "on_error_finished", Data: map[string]any{"status": model.StatusFailed, "error": err.Error()}})
	return &runFailed{msg: x.failure.Error, handler: "it failed too: " + err.Error()}
}

// runFailed is the error of a run whose on_error handler ran: the run's
// original error (redacted), and what became of the handler when it did
// not succeed.
type runFailed struct {
	msg, handler string
}

func (e *runFailed) Error() string {
	if e.handler == "" {
		return e.msg
	}
	return e.msg + " (on_error handler: " + e.handler + ")"
}

// resume restores what earlier claims of the run finished: the steps from
// the checkpoints, the event numbering from the stored events.
func (x *execution) resume(ctx context.Context) error {
	w, r := x.w, x.run
	cps, err := retryLoad(x, ctx, "load the run's checkpoints", func(ctx context.Context) ([]model.Checkpoint, error) {
		return w.cfg.Driver.Checkpoints(w.cfg.DB.WithContext(ctx), r.ID)
	})
	if err != nil {
		return fmt.Errorf("load the run's checkpoints: %w", err)
	}
	x.resumed = make(map[string]model.Checkpoint, len(cps))
	for _, cp := range cps {
		x.resumed[cp.Block] = cp
	}
	if cp, ok := x.resumed[failureCheckpoint]; ok && cp.State == model.CheckpointFailed {
		// The run failed in an earlier claim: its on_error handler goes on.
		x.failure = new(engine.Failure)
		if err := json.Unmarshal([]byte(cp.Detail), x.failure); err != nil {
			return fmt.Errorf("read the run's failure: %w", err)
		}
	}
	from, reason := "", r.ResumeReason
	var woke *wake // the earliest wait among the run's blocks
	childEnded := false
	for i, pb := range slices.Concat(x.plan.Blocks, x.plan.OnError) {
		id := pb.Def.ID
		cp, ok := x.resumed[id]
		if ok && cp.State == model.CheckpointDone {
			out, masks, err := x.open(id, cp.Output)
			if err != nil {
				return fmt.Errorf("block %q: open its checkpoint: %w", id, err)
			}
			x.guard.restore(masks)
			x.setStep(id, out)
			continue
		}
		if ok && cp.State == model.CheckpointSkipped {
			continue
		}
		if inHandler := i >= len(x.plan.Blocks); inHandler != (x.failure != nil) {
			continue // the failed block, or a handler that has not begun
		}
		if from == "" {
			from = id
		}
		var at wake
		if !ok || cp.State != model.CheckpointSleeping || json.Unmarshal([]byte(cp.Detail), &at) != nil || childEnded {
			continue
		}
		if at.Await != "" && x.ended(ctx, at.Await) {
			// Woken by the end of the run it waits for (branches may wait
			// for several): that is the reason, whatever the deadlines.
			woke, childEnded = &at, true
			reason = fmt.Sprintf("run %s, which block %q waits for, ended", at.Await, id)
			continue
		}
		if woke == nil || at.Until.Before(woke.Until) {
			woke = &at
			reason = fmt.Sprintf("the wait of block %q ended", id)
			if at.NextAttempt > 0 {
				reason = fmt.Sprintf("the wait of block %q before its attempt %d ended", id, at.NextAttempt)
			}
		}
	}
	data := map[string]any{"reason": reason, "attempt": r.Attempt, "resumes": r.Resumes, "worker": w.owner}
	if from != "" {
		data["from_block"] = from
	}
	x.emit(PendingEvent{Type: "run_resumed", Data: data})
	if reason == r.ResumeReason && r.Resumes > 0 && w.cfg.OnResumed != nil {
		w.cfg.OnResumed(r, resumeKind(r.ResumeReason))
	}
	return nil
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
		return cause // with who asked (canceledError)
	case errors.Is(cause, errShutdown):
		return errShutdown
	case errors.Is(cause, errLeaseLost):
		return errLeaseLost
	}
	return ctx.Err()
}

// setStep records the output of block id. Blocks running at once read
// the maps they were given; a new output makes new maps.
func (x *execution) setStep(id string, out any) {
	x.stepsMu.Lock()
	defer x.stepsMu.Unlock()
	steps, cond := maps.Clone(x.steps), maps.Clone(x.condSteps)
	steps[id] = map[string]any{"output": out}
	cond[id] = map[string]any{"output": engine.Plain(out)}
	x.steps, x.condSteps = steps, cond
}

// stepsNow returns the outputs of the blocks finished so far, as scripts
// and as conditions see them. The maps are not changed afterwards.
func (x *execution) stepsNow() (steps, cond map[string]any) {
	x.stepsMu.Lock()
	defer x.stepsMu.Unlock()
	return x.steps, x.condSteps
}

// output returns the output of block id, and whether it ran.
func (x *execution) output(id string) (any, bool) {
	steps, _ := x.stepsNow()
	s, ok := steps[id].(map[string]any)
	return s["output"], ok
}

// env returns the engine environment of block id.
func (x *execution) env(block string) *engine.Env {
	r := x.run
	steps, _ := x.stepsNow()
	return &engine.Env{
		Secrets: &runResolver{x: x, block: block},
		Input:   x.input,
		Steps:   steps,
		Run:     engine.RunInfo{ID: r.ID, Flow: r.Flow, Project: r.Project, Environment: r.Environment, Block: block},
		Vars:    x.plan.Def.Env,
		Failure: x.failure,
		OnSecret: func(name string, _ engine.Scope, value string) {
			x.guard.learn(name, "", value, nil)
		},
		OnMask: func(v string) { x.guard.learn("", "", v, nil) },
		OnLog: func(l engine.LogRecord) {
			x.guard.derive(l.Message)
			x.emit(PendingEvent{Type: "log", Block: block, Data: map[string]any{"level": l.Level, "message": l.Message}})
		},
	}
}

// realInput is the run's input as its caller gave it (JSON).
func (x *execution) realInput() string {
	if x.input0 != "" {
		return x.input0
	}
	return x.run.Input
}
