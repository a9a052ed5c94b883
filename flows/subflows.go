package flows

import (
	"context"
	"errors"
	"fmt"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// MaxFlowDepth bounds how deep sub-flows nest: a run started by a flow
// block has the depth of its parent plus one, and a flow block of a run
// at this depth fails.
const MaxFlowDepth = 8

// StartChild starts the run of a sub-flow for an attempt of a parent's
// flow block, once: asked again (the block runs again after a wait or a
// resume), it returns the run it started. The child runs in the parent's
// project and environment, as the parent's actor.
func (s *Service) StartChild(ctx context.Context, req model.ChildRequest) (*Run, error) {
	p := req.Parent
	if r, err := s.childOf(ctx, p.ID, req.Block, req.Attempt); err == nil || !errors.Is(err, store.ErrNotFound) {
		return r, err
	}
	if p.Depth+1 > MaxFlowDepth {
		return nil, apperr.Invalidf("flow_depth", "sub-flows nest at most %d deep: this run is at depth %d (a flow that calls itself without end?)", MaxFlowDepth, p.Depth)
	}
	f, _, err := s.Get(ctx, p.Project, req.Flow)
	if err != nil {
		return nil, err
	}
	version := f.Version
	if req.Version > 0 {
		var n int64
		if err := s.db.WithContext(ctx).Model(&FlowVersion{}).Where("flow_id = ? AND version = ?", f.ID, req.Version).Count(&n).Error; err != nil {
			return nil, store.Translate(err)
		}
		if n == 0 {
			return nil, fmt.Errorf("flow %s has no version %d; %s: %w", apperr.Echo(f.Name), req.Version, versionsOf(f.Version), store.ErrNotFound)
		}
		version = req.Version
	}
	r, err := s.enqueueRun(ctx, s.db.DB, f, RunRequest{Project: p.Project, Flow: f.Name, Environment: p.Environment,
		Input: req.Input, Trigger: "flow", Actor: p.CreatedBy}, func(r *Run) ([]any, error) {
		r.FlowVersion = version
		r.ParentRunID, r.ParentBlock, r.ParentAttempt, r.Depth = p.ID, req.Block, req.Attempt, p.Depth+1
		if req.Seal == nil {
			return nil, nil
		}
		sealed, err := req.Seal(r.ID)
		if err != nil {
			return nil, err
		}
		return []any{&model.Checkpoint{RunID: r.ID, Block: model.InheritedCheckpoint, State: model.CheckpointDone, Output: sealed, CreatedAt: r.QueuedAt}}, nil
	})
	if err = store.Translate(err); errors.Is(err, store.ErrConflict) {
		// Started meanwhile by another claim of the parent.
		return s.childOf(ctx, p.ID, req.Block, req.Attempt)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// childOf returns the run that attempt of block of run parent started.
func (s *Service) childOf(ctx context.Context, parent, block string, attempt int) (*Run, error) {
	var r Run
	err := s.db.WithContext(ctx).Where("parent_run_id = ? AND parent_block = ? AND parent_attempt = ?", parent, block, attempt).First(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, store.NotFound("child run", block)
	}
	return &r, store.Translate(err)
}

// Children returns the runs that run id's flow blocks started, oldest
// first.
func (s *Service) Children(ctx context.Context, id string) ([]Run, error) {
	var rs []Run
	err := s.db.WithContext(ctx).Where("parent_run_id = ?", id).Order("id").Find(&rs).Error
	return rs, store.Translate(err)
}

// cancelChildren cancels the open runs that run id started, and theirs.
func (s *Service) cancelChildren(ctx context.Context, id, actor string) error {
	var open []string
	if err := s.db.WithContext(ctx).Model(&Run{}).Where("parent_run_id = ? AND status IN ?", id, model.OpenStatuses).Pluck("id", &open).Error; err != nil {
		return store.Translate(err)
	}
	for _, c := range open {
		if _, err := s.Cancel(ctx, c, actor); err != nil {
			return err
		}
	}
	return nil
}
