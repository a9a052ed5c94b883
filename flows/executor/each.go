package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/plan"
)

// iteration is one run of a block with each: the element and its index.
type iteration struct {
	index int
	item  any
}

// emitIt emits e, for iteration it when it is not nil: the block's own
// events are named iteration_* instead of block_* (the block has one
// block_started and one block_finished), and every event's data carries
// the iteration's index.
func (x *execution) emitIt(it *iteration, e PendingEvent) {
	if it != nil {
		if rest, ok := strings.CutPrefix(e.Type, "block_"); ok {
			e.Type = "iteration_" + rest
		}
		if e.Checkpoint != "" {
			e.Checkpoint = iterationKey(e.Checkpoint, it.index)
		}
		data := make(map[string]any, len(e.Data)+1)
		maps.Copy(data, e.Data)
		data["index"] = it.index
		e.Data = data
	}
	x.emit(e)
}

// each runs a block with each: its expression, then one iteration per
// element (if, config, attempts), up to the block's concurrency at once.
// The output is the array of the iterations' outputs in input order (null
// for an iteration its if skipped). An iteration that fails for good
// fails the block, unless the block has continue_on_error: then its entry
// is the continued error and the block succeeds. After a failure no new
// iteration starts; those running finish. ran is always true: the block's
// if is evaluated per iteration.
func (x *execution) each(ctx context.Context, pb *plan.PlannedBlock, client *http.Client) (any, bool, error) {
	id := pb.Def.ID
	began := time.Now()
	fail := func(msg string, data map[string]any) (any, bool, error) {
		data["error"] = msg
		if pb.Def.ContinueOnError {
			data["continued"] = true
		}
		x.emit(PendingEvent{Type: "block_failed", Block: id, Data: data})
		x.blockFinished(pb, model.StatusFailed, began)
		sep := ": "
		if strings.HasPrefix(msg, "field ") {
			sep = " " // block "x" field "each" 1:5: ...
		}
		return nil, false, &blockFailure{block: id, msg: msg, continuable: true, err: fmt.Errorf("block %q%s%s", id, sep, msg)}
	}
	v, err := x.script(ctx, pb.Each, x.env(id))
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, ctxErr(ctx)
		}
		msg := "each: " + err.Error()
		if namesBlock(err, id) {
			// `field "each" 1:5: ...`: the block is named once, by the failure.
			msg = strings.TrimPrefix(err.Error(), fmt.Sprintf("block %q ", id))
		}
		return fail(msg, map[string]any{"field": "each"})
	}
	items, ok := v.([]any)
	if !ok {
		return fail(fmt.Sprintf("each must give an array, not %s", jsType(v)), map[string]any{"field": "each"})
	}
	limit, why := x.w.cfg.MaxEachItems, "the server's limit, HUSHFLOW_MAX_EACH_ITEMS"
	if m := pb.Def.MaxItems; m > 0 && m < limit {
		limit, why = m, "the block's max_items"
	}
	if len(items) > limit {
		return fail(fmt.Sprintf("each gave %d items, over the limit of %d (%s)", len(items), limit, why),
			map[string]any{"field": "each", "items": len(items), "limit": limit})
	}
	conc := max(pb.Def.Concurrency, 1)
	// Iterations an earlier claim of the run finished are not run again.
	outs := make([]any, len(items))
	finished := make([]bool, len(items))
	count := strconv.Itoa(len(items))
	var restored []int
	for i := range items {
		key := iterationKey(id, i)
		cp, ok := x.resumed[key]
		if !ok || cp.Detail != count {
			continue // none, or of an array of another length: run again
		}
		switch cp.State {
		case model.CheckpointDone:
			out, masks, err := x.open(key, cp.Output)
			if err != nil {
				return nil, false, fmt.Errorf("block %q: open the checkpoint of item %d: %w", id, i, err)
			}
			x.guard.restore(masks)
			outs[i] = out
		case model.CheckpointSkipped:
		default:
			continue
		}
		finished[i] = true
		restored = append(restored, i)
	}
	started := map[string]any{"type": string(pb.Def.Type), "items": len(items), "concurrency": conc}
	if len(restored) > 0 {
		started["restored"] = len(restored)
	}
	x.emit(PendingEvent{Type: "block_started", Block: id, Data: started})

	var (
		mu     sync.Mutex
		failed *blockFailure // the failure of the lowest index
		failAt = len(items)
		other  error // an end of the claim (cancel, shutdown, lost lease)
	)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(conc, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				mu.Lock()
				stop := failed != nil || other != nil
				mu.Unlock()
				if stop {
					continue // handed over before the failure was known
				}
				it := &iteration{index: i, item: items[i]}
				out, ran, err := x.block(ctx, pb, client, nil, it)
				var f *blockFailure
				if err != nil && errors.As(err, &f) && f.continuable && pb.Def.ContinueOnError {
					out, ran, err = x.continued(f), true, nil
				}
				if err == nil {
					// The iteration's checkpoint, durably, so that a run
					// interrupted in the loop does not repeat it.
					outs[i] = out
					err = x.saveIteration(ctx, id, i, count, out, ran)
				}
				if err == nil {
					continue
				}
				mu.Lock()
				if errors.As(err, &f) {
					if i < failAt {
						failed, failAt = f, i
					}
				} else if other == nil {
					other = err
				}
				mu.Unlock()
			}
		}()
	}
dispatch:
	for i := range items {
		if finished[i] {
			continue
		}
		mu.Lock()
		stop := failed != nil || other != nil
		mu.Unlock()
		if stop {
			break
		}
		select {
		case next <- i:
		case <-ctx.Done():
			break dispatch
		}
	}
	close(next)
	wg.Wait()
	if other == nil && ctx.Err() != nil {
		other = ctxErr(ctx)
	}
	switch {
	case other != nil:
		x.eachEnded(pb, other, len(items), began)
		return nil, false, other
	case failed != nil:
		msg := fmt.Sprintf("item %d: %s", failAt, failed.msg)
		x.emit(PendingEvent{Type: "block_failed", Block: id, Data: map[string]any{"error": msg, "index": failAt, "items": len(items)}})
		x.blockFinished(pb, model.StatusFailed, began)
		return nil, false, &blockFailure{block: id, msg: msg, continuable: true, err: fmt.Errorf("block %q: %s", id, msg)}
	}
	x.blockFinished(pb, model.StatusSucceeded, began)
	x.emit(PendingEvent{Type: "block_finished", Block: id, Checkpoint: id, Data: map[string]any{
		"output": engine.Plain(outs), "items": len(items), "duration_ms": time.Since(began).Milliseconds()}})
	return outs, true, nil
}

// eachEnded closes the block's events when its loop ended for err, which
// is not an iteration's failure: an end of the claim (block_interrupted:
// the replica's shutdown, a lost lease; the run resumes and the block
// starts again), the run's cancel (block_failed, with canceled and who
// asked), or an error that fails the run (block_failed). The iterations
// that were running said so with their own events.
func (x *execution) eachEnded(pb *plan.PlannedBlock, err error, items int, began time.Time) {
	x.blockFinished(pb, model.StatusFailed, began)
	data := map[string]any{"items": items, "duration_ms": time.Since(began).Milliseconds()}
	switch {
	case errors.Is(err, errShutdown), errors.Is(err, errLeaseLost), errors.Is(err, errAbandon):
		data["error"], data["interrupted"] = x.red.String(err.Error()), true
		x.emit(PendingEvent{Type: "block_interrupted", Block: pb.Def.ID, Data: data})
	case errors.Is(err, errCanceled):
		data["error"], data["canceled"] = x.red.String(cancelReason(err)), true
		x.emit(PendingEvent{Type: "block_failed", Block: pb.Def.ID, Data: data})
	default:
		data["error"] = x.red.String(err.Error())
		x.emit(PendingEvent{Type: "block_failed", Block: pb.Def.ID, Data: data})
	}
}

// saveIteration stores the checkpoint of iteration i of block id, whose
// array has count elements: its output (sealed), or skipped when its if
// was false. The block's own checkpoint, when it finishes, makes them
// unused; they are deleted with the run's checkpoints when the run ends.
func (x *execution) saveIteration(ctx context.Context, id string, i int, count string, out any, ran bool) error {
	key := iterationKey(id, i)
	cp := model.Checkpoint{RunID: x.run.ID, Block: key, State: model.CheckpointSkipped, Detail: count, CreatedAt: x.w.now()}
	if ran {
		cp.State = model.CheckpointDone
		var err error
		if cp.Output, err = x.seal(key, out); err != nil {
			return err
		}
	}
	return x.save(ctx, []model.Checkpoint{cp})
}

// iterationKey is the checkpoint name of iteration i of block id:
// id[i], or, when that is longer than a checkpoint's name may be (63), the
// id's start and a hash of it. Never a block id (those have no '[').
func iterationKey(id string, i int) string {
	suffix := "[" + strconv.Itoa(i) + "]"
	if len(id)+len(suffix) <= 63 {
		return id + suffix
	}
	h := sha256.Sum256([]byte(id))
	return id[:63-len(suffix)-9] + "~" + hex.EncodeToString(h[:4]) + suffix
}

// jsType names the JavaScript type of a value a field gave.
func jsType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any, *engine.Object:
		return "an object"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64, json.Number:
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}
