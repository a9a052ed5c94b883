package flows

import (
	"context"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/store"
)

// Pause stops flow name of project from starting runs, by any trigger:
// an API call, a rerun or a sub-flow call is refused (409 flow_paused), a
// webhook delivery too (the sender may deliver it again once the flow is
// resumed), an event is not taken and a schedule's ticks pass unfired.
// Runs already queued, running or waiting go on; cancel them to stop
// them. Each run's insert checks the pause in its own statement, so no
// run asked for after Pause returns is stored. Pausing a paused flow
// changes nothing.
func (s *Service) Pause(ctx context.Context, project, name, actor string) error {
	return s.setPaused(ctx, project, name, map[string]any{"paused_at": s.now(), "paused_by": actor}, "paused_at IS NULL")
}

// Resume lets a paused flow start runs again. Nothing it missed while
// paused is run: webhook deliveries were refused, events not taken,
// ticks not fired.
func (s *Service) Resume(ctx context.Context, project, name, actor string) error {
	return s.setPaused(ctx, project, name, map[string]any{"paused_at": nil, "paused_by": "", "resumed_at": s.now(), "resumed_by": actor},
		"paused_at IS NOT NULL")
}

// setPaused sets the pause columns of the flow when cond holds (a pause
// or resume that changes nothing writes nothing); a flow that does not
// exist is a NotFound.
func (s *Service) setPaused(ctx context.Context, project, name string, cols map[string]any, cond string) error {
	res := s.db.WithContext(ctx).Model(&Flow{}).Scopes(model.FlowNamed(project, name)).Where(cond).UpdateColumns(cols)
	if res.Error != nil {
		return store.Translate(res.Error)
	}
	if res.RowsAffected == 0 {
		var n int64
		if err := s.db.WithContext(ctx).Model(&Flow{}).Scopes(model.FlowNamed(project, name)).Count(&n).Error; err != nil {
			return store.Translate(err)
		}
		if n == 0 {
			return store.NotFound("flow", name)
		}
	}
	return nil
}
