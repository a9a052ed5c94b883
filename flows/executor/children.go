package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/queue"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// ChildRuns starts and reads the runs of sub-flows (flows.Service).
type ChildRuns interface {
	StartChild(ctx context.Context, req model.ChildRequest) (*model.Run, error)
	GetRun(ctx context.Context, id string) (*model.Run, error)
	Cancel(ctx context.Context, id, actor string) (*model.Run, error)
}

// How a flow block's run and its child run pass values (both sealed like
// checkpoints):
//
//   - the child inherits the values its parent learnt at run time (another
//     environment's secret, secrets.mask): a checkpoint "$parent" of the
//     child, written with the child's row, restored at each of its claims;
//   - the parent gets the child's real output, with the values the child
//     learnt: a checkpoint "$child:<id>" of the parent, written with the
//     child's outcome (only while the parent is open), which also wakes
//     the parent from its wait.

// childCaller is the blocks.FlowCaller of one attempt of a block.
type childCaller struct {
	x       *execution
	block   string
	attempt int
}

func (c childCaller) Call(ctx context.Context, call blocks.FlowCall) (blocks.FlowState, error) {
	x := c.x
	if x.w.cfg.Children == nil {
		return blocks.FlowState{}, errors.New("this server runs no sub-flows")
	}
	// An input holding values this run knows (its secrets, what it
	// learnt) is stored masked, the child's real input sealed with what
	// it inherits: no value sits in clear in the child's row while it
	// runs.
	real, err := json.Marshal(call.Input)
	if err != nil {
		return blocks.FlowState{}, fmt.Errorf("input is not JSON: %w", err)
	}
	input, inherit := any(call.Input), sealedCheckpoint{Masks: x.guard.masks()}
	if masked := x.red.String(string(real)); masked != string(real) {
		input, inherit.Input = json.RawMessage(masked), real
	}
	r, err := x.w.cfg.Children.StartChild(ctx, model.ChildRequest{
		Parent: x.run, Block: c.block, Attempt: c.attempt, Flow: call.Flow, Version: call.Version, Input: input,
		Seal: func(child string) ([]byte, error) {
			return x.sealAs(child, model.InheritedCheckpoint, inherit)
		},
	})
	if err != nil {
		x.noteInfraOf(attemptOf(ctx), err)
		return blocks.FlowState{}, err
	}
	st := blocks.FlowState{RunID: r.ID, Status: r.Status, Done: r.Finished(), Error: r.Error, Version: r.FlowVersion}
	if r.Status == model.StatusSucceeded {
		if st.Output, err = x.childOutput(ctx, r.ID); err != nil {
			x.noteInfraOf(attemptOf(ctx), err)
			return st, fmt.Errorf("run %s of flow %q: %w", r.ID, call.Flow, err)
		}
	}
	return st, nil
}

func (c childCaller) Cancel(ctx context.Context, id string) error {
	if c.x.w.cfg.Children == nil {
		return nil
	}
	_, err := c.x.w.cfg.Children.Cancel(ctx, id, fmt.Sprintf("run %s (block %q timed out)", c.x.run.ID, c.block))
	return err
}

// attemptOf is the attempt a block's context belongs to (nil outside one).
func attemptOf(ctx context.Context) *attemptState {
	a, _ := ctx.Value(attemptKey{}).(*attemptState)
	return a
}

// childOutput opens the output child run id left for this run, and
// makes the values it learnt known to this run's redactor and pins.
func (x *execution) childOutput(ctx context.Context, id string) (any, error) {
	block := model.ChildCheckpointPrefix + id
	cp, ok := x.resumed[block]
	if !ok {
		err := x.w.cfg.DB.WithContext(ctx).Where("run_id = ? AND block = ?", x.run.ID, block).First(&cp).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, errors.New("its output is no longer kept for this run")
		}
		if err != nil {
			return nil, store.Translate(err)
		}
	}
	out, masks, err := x.open(block, cp.Output)
	if err != nil {
		return nil, fmt.Errorf("open its output: %w", err)
	}
	x.guard.restore(masks)
	return out, nil
}

// inherit restores the values a child run's parent learnt before it
// started the child.
func (x *execution) inherit(ctx context.Context) error {
	in, err := x.w.inherited(ctx, x.run.ID)
	if err != nil {
		return err
	}
	x.guard.restore(in.Masks)
	if in.Input != nil {
		x.input0 = string(in.Input)
	}
	return nil
}

// inherited returns what the parent of run runID passed on to it (its
// sealed $parent checkpoint): the values it learnt and, when the child's
// stored input is masked, the real input; nothing when it has no such
// checkpoint.
func (w *Worker) inherited(ctx context.Context, runID string) (openedCheckpoint, error) {
	var cp model.Checkpoint
	err := w.cfg.DB.WithContext(ctx).Where("run_id = ? AND block = ?", runID, model.InheritedCheckpoint).First(&cp).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return openedCheckpoint{}, nil
	}
	if err != nil {
		return openedCheckpoint{}, store.Translate(err)
	}
	in, err := w.openSealed(runID, model.InheritedCheckpoint, cp.Output)
	if err != nil {
		return openedCheckpoint{}, fmt.Errorf("open what the parent run passed on: %w", err)
	}
	return in, nil
}

// RealInput is the input run r was given, and the values passed on to it
// that it masks beyond its scope's secrets: for an open run, its stored
// input or, when that is masked, the one sealed in its "$parent"
// checkpoint; for an ended one, its sealed input (InputSealed) when it
// kept one.
func (w *Worker) RealInput(ctx context.Context, r *model.Run) (string, []model.RunMask, error) {
	if r.InputSealed != nil {
		if w.cfg.Sealer == nil {
			return "", nil, errors.New("its input is sealed and this server has no keyring to open it")
		}
		if b, err := w.cfg.Sealer.OpenBlob(model.InputMasksAAD(r.ID), r.InputSealed); err == nil {
			var in model.SealedInput
			if err := json.Unmarshal(b, &in); err != nil {
				return "", nil, err
			}
			return string(in.Input), in.Masks, nil
		}
		b, err := w.cfg.Sealer.OpenBlob(model.InputAAD(r.ID), r.InputSealed)
		return string(b), nil, err
	}
	if r.Finished() || !r.Inherits() {
		return r.Input, nil, nil
	}
	in, err := w.inherited(ctx, r.ID)
	if err != nil || in.Input == nil {
		return r.Input, in.Masks, err
	}
	return string(in.Input), in.Masks, nil
}

// parentResult is what a child run's outcome leaves its parent: its
// real output (when it succeeded), sealed for the parent, and the wake.
func (x *execution) parentResult(o *queue.Outcome, out any) error {
	r := x.run
	if r.ParentRunID == "" {
		return nil
	}
	o.Parent = r.ParentRunID
	if o.Status != model.StatusSucceeded {
		return nil
	}
	block := model.ChildCheckpointPrefix + r.ID
	sealed, err := x.sealAs(r.ParentRunID, block, sealedCheckpoint{Output: out, Masks: x.guard.masks()})
	if err != nil {
		return err
	}
	o.ParentCheckpoint = &model.Checkpoint{RunID: r.ParentRunID, Block: block, State: model.CheckpointDone, Output: sealed, CreatedAt: o.Finished}
	return nil
}

// ended reports whether run id has ended (false when it cannot be read).
func (x *execution) ended(ctx context.Context, id string) bool {
	if x.w.cfg.Children == nil {
		return false
	}
	c, err := x.w.cfg.Children.GetRun(ctx, id)
	return err == nil && c.Finished()
}

// wakeIfEnded wakes this run, just suspended to wait for run child, when
// the child ended before the suspension was stored (its outcome's wake
// found the run still running). Driver.Ended waits for a transaction
// that is ending the child: if it finds the child open, the child's
// outcome is not yet written and its wake will find this run waiting.
func (x *execution) wakeIfEnded(child string) {
	w := x.w
	ctx, cancel := context.WithTimeout(x.hard, 10*time.Second)
	defer cancel()
	ended, err := w.cfg.Driver.Ended(w.cfg.DB.WithContext(ctx), child)
	if err == nil && !ended {
		return // the child's own outcome wakes the run, or the wait's end
	}
	// Ended, or unknown (a database error): a run woken for nothing
	// finds its child open and waits again.
	if err := queue.Wake(w.cfg.DB.WithContext(ctx), x.run.ID, w.now()); err != nil {
		w.log.Warn("wake a run whose child ended", "run_id", x.run.ID, "child", child, "err", x.red.Error(err))
		return
	}
	w.Poke()
}
