package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/queue"
	"github.com/hushflow/hushflow/redact"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// How a claimed run ends on its worker (execute):
//
//  1. finish: it ended (succeeded, failed, canceled). The outcome, the last
//     events and the deletion of its checkpoints are one transaction.
//  2. suspend: a block asked for a durable wait. The run becomes waiting
//     until the wait's end, with its sleeping checkpoint.
//  3. release: the worker is stopping (drain grace over). The run is
//     queued again, to resume from its first unfinished block.
//  4. give up: the lease was lost, or the database stayed away for longer
//     than the lease; the rescuer of any replica queues the run again.
//
// Every write of a run applies only while the run is leased to the
// worker's claim (owner and attempt), so a worker that lost its run never
// writes to it again. Writes that fail because the database did not
// answer are retried until hard is done.

// sealedCheckpoint is what a checkpoint keeps, sealed: the block's output
// and the values the run learnt so far (see guard).
type sealedCheckpoint struct {
	Output any             `json:"output"`
	Masks  []model.RunMask `json:"masks,omitempty"`
	// Input is, in a child run's "$parent" checkpoint, the real input
	// its parent passed when the child's stored input is that input
	// masked (it held values the parent knows); empty otherwise.
	Input json.RawMessage `json:"input,omitempty"`
}

// seal encrypts a block's output, with the run's learnt values, for its
// checkpoint.
func (x *execution) seal(block string, out any) ([]byte, error) {
	return x.sealAs(x.run.ID, block, sealedCheckpoint{Output: out, Masks: x.guard.masks()})
}

// sealAs encrypts sc for the checkpoint block of run runID.
func (x *execution) sealAs(runID, block string, sc sealedCheckpoint) ([]byte, error) {
	return x.w.sealCheckpoint(runID, block, sc)
}

func (w *Worker) sealCheckpoint(runID, block string, sc sealedCheckpoint) ([]byte, error) {
	b, err := json.Marshal(sc)
	if err != nil {
		return nil, fmt.Errorf("block %q: its output is not JSON: %w", block, err)
	}
	ct, err := w.cfg.Sealer.SealBlob(model.CheckpointAAD(2, runID, block), b)
	if err != nil {
		return nil, fmt.Errorf("block %q: seal its checkpoint: %w", block, err)
	}
	return ct, nil
}

// SealInherited seals, for the "$parent" checkpoint of run runID (a
// rerun), the values it inherits and its real input when its stored one
// is masked.
func (w *Worker) SealInherited(runID string, masks []model.RunMask, input json.RawMessage) ([]byte, error) {
	return w.sealCheckpoint(runID, model.InheritedCheckpoint, sealedCheckpoint{Masks: masks, Input: input})
}

// open decrypts a checkpoint: the output (objects in the order they were
// sealed), and the learnt values it holds. A checkpoint of the first
// format (output only, written before an upgrade) opens too.
func (x *execution) open(block string, sealed []byte) (any, []model.RunMask, error) {
	return x.w.openCheckpoint(x.run.ID, block, sealed)
}

// openCheckpoint decrypts the checkpoint block of run runID (see open).
func (w *Worker) openCheckpoint(runID, block string, sealed []byte) (any, []model.RunMask, error) {
	cp, err := w.openSealed(runID, block, sealed)
	if err != nil {
		return nil, nil, err
	}
	out, err := engine.DecodeJSON(cp.Output)
	return out, cp.Masks, err
}

// openedCheckpoint is a sealedCheckpoint as opened, its output not decoded.
type openedCheckpoint struct {
	Output json.RawMessage `json:"output"`
	Masks  []model.RunMask `json:"masks"`
	Input  json.RawMessage `json:"input"`
}

// openSealed opens a checkpoint's sealed blob, of either format (the
// first held the output alone).
func (w *Worker) openSealed(runID, block string, sealed []byte) (openedCheckpoint, error) {
	var cp openedCheckpoint
	b, err := w.cfg.Sealer.OpenBlob(model.CheckpointAAD(2, runID, block), sealed)
	if err == nil {
		err = json.Unmarshal(b, &cp)
		return cp, err
	}
	b, err1 := w.cfg.Sealer.OpenBlob(model.CheckpointAAD(1, runID, block), sealed)
	if err1 != nil {
		return cp, err
	}
	cp.Output = b
	return cp, nil
}

// suspend records a durable wait: the sleeping checkpoint, and the run
// waiting until the wait ends, its worker released.
func (x *execution) suspend(sl *sleeping) {
	w, r := x.w, x.run
	detail, _ := json.Marshal(sl.wake)
	cp := model.Checkpoint{RunID: r.ID, Block: sl.block, State: model.CheckpointSleeping, Detail: string(detail), CreatedAt: w.now()}
	t := queue.Transition{Hold: queue.Hold{RunID: r.ID, Owner: w.owner, Attempt: r.Attempt, Checkpoints: []model.Checkpoint{cp}},
		Status: model.StatusWaiting, AvailableAt: sl.wake.Until}
	if x.transit(t, "flows.suspend") {
		w.log.Info("run waiting", "run_id", r.ID, "block", sl.block, "until", sl.wake.Until)
		// Wake the claim loop when the wait ends, whatever its idle poll.
		time.AfterFunc(sl.wake.Until.Sub(w.now()), w.Poke)
		if sl.wake.Await != "" {
			x.wakeIfEnded(sl.wake.Await)
		}
	}
}

// release queues the run again for any replica to resume, with reason:
// its worker shuts down, a planned drain (Run.Drains).
func (x *execution) release(reason string) {
	w, r := x.w, x.run
	x.emit(PendingEvent{Type: "run_released", Data: map[string]any{"reason": reason, "worker": w.owner}})
	t := queue.Transition{Hold: queue.Hold{RunID: r.ID, Owner: w.owner, Attempt: r.Attempt},
		Status: model.StatusQueued, Reason: reason, Resumed: true, Planned: true}
	if x.transit(t, "flows.release") {
		w.log.Info("run released to resume elsewhere", "run_id", r.ID, "reason", reason)
	}
}

// transit applies t with the buffered events, retrying while the
// database does not answer (until x.hard is done). It reports whether it
// applied.
func (x *execution) transit(t queue.Transition, key string) bool {
	w := x.w
	x.flushMu.Lock()
	defer x.flushMu.Unlock()
	t.Events = x.takeRowsLocked()
	var wait retryWait
	for {
		ctx, cancel := context.WithTimeout(x.hard, 30*time.Second)
		applied, err := false, x.flushInsert(ctx)
		if err == nil {
			err = x.flushSecrets(ctx)
		}
		if err == nil {
			applied, err = x.batcher.Write(ctx, store.Write{Merge: &store.Merge{Key: key, Item: t, Apply: w.applyTransitions},
				Durable: true})
		}
		cancel()
		if err == nil {
			if applied {
				x.reportExposures(x.hard)
			}
			w.notify(x.run.ID)
			if !applied {
				w.log.Warn("run taken from this worker before it could be released", "run_id", x.run.ID)
			}
			return applied
		}
		w.log.Warn("record run status", "run_id", x.run.ID, "status", t.Status, "err", x.red.Error(err))
		if !store.IsUnavailable(err) || !wait.next(x.hard, time.Hour) {
			return false // the rescuer queues it again once its lease expires
		}
	}
}

// The Apply functions of the merged writes: the Batcher passes the items
// of every write of a batch with the same key.

func (w *Worker) applyHolds(tx *gorm.DB, items []any) ([]bool, error) {
	hs := make([]queue.Hold, len(items))
	for i, it := range items {
		hs[i] = it.(queue.Hold)
	}
	return w.cfg.Driver.Hold(tx, hs)
}

func (w *Worker) applyTransitions(tx *gorm.DB, items []any) ([]bool, error) {
	ts := make([]queue.Transition, len(items))
	for i, it := range items {
		ts[i] = it.(queue.Transition)
	}
	return w.cfg.Driver.Transit(tx, ts)
}

func (w *Worker) applyOutcomes(tx *gorm.DB, items []any) ([]bool, error) {
	os := make([]queue.Outcome, len(items))
	for i, it := range items {
		os[i] = it.(queue.Outcome)
	}
	return w.cfg.Driver.Finish(tx, os)
}

// finish records the outcome of the run with its last events in one
// transaction, and forgets its checkpoints, unless the run was taken from
// this worker meanwhile. A database that does not answer is waited for
// (until x.hard is done); then the run is left to the rescuer.
func (x *execution) finish(out any, runErr error) {
	w, r := x.w, x.run
	status, errText := model.StatusSucceeded, ""
	switch {
	case errors.Is(runErr, errCanceled):
		status, errText = model.StatusCanceled, x.red.String(cancelReason(runErr))
	case runErr != nil:
		status, errText = model.StatusFailed, x.red.String(runErr.Error())
	}
	var outJSON string
	if runErr == nil && out != nil {
		outJSON = w.boundedJSON(x.red.Value(engine.Plain(out)))
		w.redacted(outJSON)
	}
	data := map[string]any{"status": status}
	if errText != "" {
		data["error"] = errText
	}
	x.emit(PendingEvent{Type: "run_finished", Data: data})
	x.flushMu.Lock()
	defer x.flushMu.Unlock()
	rows := x.takeRowsLocked()
	now := w.now()
	o := queue.Outcome{RunID: r.ID, Owner: w.owner, Attempt: r.Attempt, Status: status, Output: outJSON, Error: errText,
		Finished: now}
	in := atRest{red: x.red, real: x.realInput(), masks: x.guard.masks()}
	if x.secrets != nil {
		in.scope = x.secrets.Visible()
	} else if w.cfg.Secrets != nil {
		// The run ends before it loaded its secrets (canceled when it was
		// claimed, too many resumes, a flow version that no longer loads,
		// the load itself failed): they are loaded now, for its input.
		ctx, cancel := context.WithTimeout(x.hard, 30*time.Second)
		var err error
		if in, err = w.inputRedactor(ctx, r); err != nil {
			w.log.Warn("load the run's secrets to redact its input; it is kept only sealed", "run_id", r.ID, "err", x.red.Error(err))
		}
		cancel()
	}
	o.Input, o.InputSealed = w.inputAtRest(r, in)
	if err := x.parentResult(&o, out); err != nil {
		// The parent then fails its flow block: the output is not kept.
		w.log.Error("seal a child run's output for its parent", "run_id", r.ID, "err", x.red.Error(err))
	}
	var wait retryWait
	for {
		ctx, cancel := context.WithTimeout(x.hard, 30*time.Second)
		// With the outcomes and events of other runs: one commit, and one
		// UPDATE on PostgreSQL, for many.
		o.Events = rows
		applied, err := x.writeWithLoad(ctx, store.Write{
			Merge:   &store.Merge{Key: "flows.outcome", Item: o, Apply: w.applyOutcomes, Single: w.cfg.Driver.Single},
			Durable: true})
		cancel()
		if err == nil && !applied {
			w.log.Warn("run taken from this worker before its outcome was recorded; it resumes elsewhere", "run_id", r.ID)
			w.logUnrecorded(rows)
			return
		}
		if err == nil {
			break
		}
		if errors.Is(err, errNotStored) {
			return // its waiter has the error; nothing of the run is stored
		}
		w.warnQuiet("record run outcome", "run_id", r.ID, "err", x.red.Error(err))
		if !store.IsUnavailable(err) && len(rows) > 0 {
			// Something of the events is refused (never seen; a bug):
			// record the outcome without them rather than leave the run
			// open, and say so.
			w.log.Error("run events refused; recording the outcome without them", "run_id", r.ID, "err", x.red.Error(err))
			rows = nil
			o.Error = strings.TrimSpace(o.Error + " (the run's last events could not be stored: " + x.red.String(err.Error()) + ")")
			continue
		}
		if !store.IsUnavailable(err) || !wait.next(x.hard, time.Hour) {
			w.log.Error("run outcome not recorded; the run will be resumed when its lease expires", "run_id", r.ID, "err", x.red.Error(err))
			w.logUnrecorded(rows)
			return
		}
	}
	// Before the run is seen as ended here: whoever waits for it finds
	// its exposures recorded.
	x.reportExposures(x.hard)
	w.notify(r.ID)
	w.observe(r, status, now)
}

// inputAtRest is what an ended run keeps of its input, redacted with red:
// the input is needed only while the run runs, so at rest it keeps no
// secret value a caller passed in (SECURITY.md case 10). When that changed
// it, the real input is kept sealed (sealed), for a rerun. With red nil
// (the run's secrets could not be loaded to check it) nothing of the
// input is kept in clear: it is only sealed.
func (w *Worker) inputAtRest(r *model.Run, in atRest) (input string, sealed []byte) {
	input = inputWithheld
	real := in.real
	if in.red != nil {
		if input = in.red.String(real); input == real {
			return input, nil
		}
	}
	// With every value that masked it, and the pins they had: its rerun
	// masks and pins them as this run did, whatever the scope holds by
	// then (a secret deleted, shadowed by a more specific one, or given
	// a new value with other allowed hosts).
	masks := in.masks
	if in.red != nil {
		for _, name := range in.red.Matches(real) {
			for _, v := range in.scope {
				if v.Name != name {
					continue
				}
				for _, val := range append([]string{v.Value}, v.Previous...) {
					masks = append(masks, model.RunMask{Name: v.Name, Value: val, AllowedHosts: v.AllowedHosts, Secret: v.Name})
				}
			}
		}
	}
	b, err := json.Marshal(model.SealedInput{Input: json.RawMessage(real), Masks: masks})
	if err == nil {
		sealed, err = w.cfg.Sealer.SealBlob(model.InputMasksAAD(r.ID), b)
	}
	if err != nil {
		// The run's end matters more than a later rerun: the rerun then
		// says that the input was not kept.
		w.log.Warn("seal the run's input for reruns", "run_id", r.ID, "err", err)
	}
	return input, sealed
}

// inputWithheld is the input an ended run keeps when its secrets could
// not be loaded to redact it (JSON, like every stored input).
const inputWithheld = `"[REDACTED: the run's secrets could not be loaded to check its input for their values, so it is kept only sealed]"`

// InputAtRest is what run r, which ends without reaching a worker (the
// cancel of a queued or waiting run), keeps of its input: redacted with
// the values of its project and environment (their load audited with the
// run's id), and the real input sealed when that changed it; only sealed
// when the values cannot be loaded (a key missing from the keyring, a
// damaged value). It fails only when the database does not answer.
func (w *Worker) InputAtRest(ctx context.Context, r *model.Run) (input string, sealed []byte, err error) {
	in, err := w.inputRedactor(ctx, r)
	if err != nil && store.IsUnavailable(err) {
		return "", nil, err
	}
	if err != nil {
		w.log.Warn("load the run's secrets to redact its input; it is kept only sealed", "run_id", r.ID, "err", err)
	}
	input, sealed = w.inputAtRest(r, in)
	return input, sealed, nil
}

// atRest is what an ended run's input at rest is made from.
type atRest struct {
	red   *redact.Redactor      // the run's values; nil: they could not be loaded
	real  string                // the input as the run was given it
	masks []model.RunMask       // the values passed on to it, and learnt
	scope []model.VisibleSecret // its scope's secrets, as it saw them
}

// inputRedactor loads what run r's input at rest is made from: the
// values its project and environment see (their load audited with the
// run's id), r's real input and the values passed on to it. The redactor
// is nil, with the error, when the values cannot be loaded.
func (w *Worker) inputRedactor(ctx context.Context, r *model.Run) (atRest, error) {
	in := atRest{real: r.Input}
	if r.Inherits() {
		// A sub-flow's (or a rerun's) input may hold what its parent (or
		// the run it repeats) learnt at run time (a secrets.mask value),
		// and is stored masked when it held such values: both were
		// passed on, sealed.
		got, err := w.inherited(ctx, r.ID)
		if err != nil {
			return in, fmt.Errorf("load what the parent run passed on: %w", err)
		}
		if got.Input != nil {
			in.real = string(got.Input)
		}
		in.masks = got.Masks
	}
	if w.cfg.Secrets == nil {
		in.red = redact.New()
	} else {
		rs, err := w.cfg.Secrets.ForRun(ctx, r.Project, r.Environment, r.ID)
		if err == nil {
			err = rs.Flush(ctx)
		}
		if err != nil {
			return in, fmt.Errorf("load the secrets of project %q, environment %q: %w", r.Project, r.Environment, err)
		}
		in.scope = rs.Visible()
		in.red = w.redactorFor(in.scope)
	}
	for _, m := range in.masks {
		in.red.Add(m.Name, m.Value)
	}
	return in, nil
}
