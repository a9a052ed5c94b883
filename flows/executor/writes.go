package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/queue"
	"github.com/hushflow/hushflow/store"
)

// emit buffers an event; it is stored, redacted, at the next write.
// What it shows that was derived from a secret value the run read is
// learnt first (guard.derive): a service's echo of a token cut, upper-cased
// or with '+' read as a space is masked like a script's.
func (x *execution) emit(e PendingEvent) {
	if e.At.IsZero() {
		e.At = x.w.now()
	}
	x.guard.deriveValue(e.Data)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.pending = append(x.pending, e)
}

// takeRows numbers and redacts the buffered events, after the rows a
// failed write left. x.flushMu must be held.
func (x *execution) takeRowsLocked() []model.Event {
	x.mu.Lock()
	evs := x.pending
	x.pending = nil
	x.mu.Unlock()
	return x.numberLocked(evs)
}

// takeRowsForLocked is takeRowsLocked for a write of cps: it leaves the
// events that go with another checkpoint (PendingEvent.Checkpoint) for
// that one's write. x.flushMu must be held.
func (x *execution) takeRowsForLocked(cps []model.Checkpoint) []model.Event {
	x.mu.Lock()
	var evs, later []PendingEvent
	for _, e := range x.pending {
		if e.Checkpoint != "" && !slices.ContainsFunc(cps, func(cp model.Checkpoint) bool { return cp.Block == e.Checkpoint }) {
			later = append(later, e)
		} else {
			evs = append(evs, e)
		}
	}
	x.pending = later
	x.mu.Unlock()
	return x.numberLocked(evs)
}

// numberLocked numbers and redacts evs, after the rows a failed write
// left. x.flushMu must be held.
func (x *execution) numberLocked(evs []PendingEvent) []model.Event {
	rows := x.unwritten
	x.unwritten = nil
	if len(evs) > 0 {
		rows = append(rows, x.w.redactEvents(x, x.run.ID, &x.seq, &x.stored, x.red, evs)...)
	}
	return rows
}

// write stores the buffered events and checkpoints cps while the run is
// still leased to this claim (extending the lease), once. durable waits
// for the disk (checkpoints). On failure the events are kept for the next
// write; errLeaseLost means the run was taken from this worker.
func (x *execution) write(ctx context.Context, cps []model.Checkpoint, durable bool) error {
	x.flushMu.Lock()
	defer x.flushMu.Unlock()
	rows := x.takeRowsForLocked(cps)
	if len(rows) == 0 && len(cps) == 0 {
		return nil
	}
	r := x.run
	h := queue.Hold{RunID: r.ID, Owner: x.w.owner, Attempt: r.Attempt, Checkpoints: cps, Events: rows}
	applied, err := x.writeWithLoad(context.WithoutCancel(ctx), store.Write{
		Merge:   &store.Merge{Key: "flows.hold", Item: h, Apply: x.w.applyHolds, Single: x.w.cfg.Driver.Single},
		Durable: durable})
	if err != nil {
		x.unwritten = rows
		return err
	}
	if !applied {
		return errLeaseLost
	}
	x.w.notify(r.ID)
	// The events that hold the masks are stored: the exposures they
	// showed are recorded.
	x.reportExposures(ctx)
	return nil
}

// writeWithLoad writes w, a write of the run with a Merge, and stores the
// audit record of the run's load of its secrets, while no commit has, with
// it (loadRecord: in its transaction, made durable) or just before it
// (flushSecrets). A write whose Merge did not apply (the claim was lost)
// stores the record alone after it: this claim's load is recorded all the
// same.
func (x *execution) writeWithLoad(ctx context.Context, w store.Write) (applied bool, err error) {
	if err := x.flushInsert(ctx); err != nil {
		return false, err
	}
	audit, stored := x.loadRecord(w.Merge.Item)
	defer stored(false) // a write that panicked gives the record back, and frees the run's reads
	if audit == nil {
		if err := x.flushSecrets(ctx); err != nil {
			return false, err
		}
	} else {
		w.Rows, w.Durable = append(w.Rows, audit...), true
	}
	applied, err = x.batcher.Write(ctx, w)
	stored(err == nil && applied)
	if audit != nil && err == nil && !applied {
		_ = x.flushSecrets(ctx)
	}
	return applied, err
}

// loadRecord is the audit record of the run's load of its secrets, while
// no commit has stored it, as rows for the write of item when that write
// is a transaction anyway (item is not applied as a statement alone:
// SQLite's holds and outcomes); the record is then stored in the same
// transaction as the run's first write, without a commit of its own. nil
// otherwise (PostgreSQL's one-statement writes, which rows would make a
// transaction of four round trips): the caller commits the record first
// (flushSecrets). stored must be called with whether the write stored it.
func (x *execution) loadRecord(item any) (rows []any, stored func(bool)) {
	if x.secrets == nil || x.w.cfg.Driver.Single([]any{item}) {
		return nil, func(bool) {}
	}
	r, stored := x.secrets.Pending()
	if r == nil {
		return nil, stored
	}
	return []any{r}, stored
}

// flushSecrets commits the audit record of the run's load of its secrets
// before the run's first write, when no read committed it (RunSecrets.Flush).
func (x *execution) flushSecrets(ctx context.Context) error {
	if x.secrets == nil {
		return nil
	}
	return x.secrets.Flush(context.WithoutCancel(ctx))
}

// save stores the buffered events and checkpoints cps durably, retrying
// while the database does not answer (for as long as the run's lease
// would hold). It fails with errLeaseLost when the run was taken from
// this worker, errAbandon when the database stayed away.
func (x *execution) save(ctx context.Context, cps []model.Checkpoint) error {
	var wait retryWait
	for {
		err := x.write(ctx, cps, true)
		if err == nil || errors.Is(err, errLeaseLost) {
			return err
		}
		if !store.IsUnavailable(err) {
			return fmt.Errorf("store the run's events and checkpoints: %w", err)
		}
		x.w.warnQuiet("store run events: database unavailable, retrying", "run_id", x.run.ID, "err", x.red.Error(err))
		if !wait.next(x.hard, x.w.cfg.Lease) {
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
	var wait retryWait
	for {
		v, err := load(ctx)
		if err == nil || !store.IsUnavailable(err) {
			return v, err
		}
		x.w.log.Warn("database unavailable, retrying", "run_id", x.run.ID, "while", what, "err", x.red.Error(err))
		if !wait.next(ctx, x.w.cfg.Lease) {
			if ctx.Err() != nil {
				return v, ctxErr(ctx)
			}
			return v, errAbandon
		}
	}
}
