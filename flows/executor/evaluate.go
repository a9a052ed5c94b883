package executor

import (
	"context"
	"errors"

	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/plan"
	"github.com/hushflow/hushflow/redact"
)

// Evaluate evaluates one expression as a block of a run of project in
// environment would (the editor's live preview) and returns its value
// redacted with every secret visible there. Secret reads are audited like
// a run's, with run id "evaluate". It needs no Start.
func (w *Worker) Evaluate(ctx context.Context, project, environment, expression string, input any, actor string) (any, error) {
	red := redact.New()
	var rs model.RunSecrets
	if w.cfg.Secrets != nil {
		var err error
		if rs, err = w.cfg.Secrets.ForRun(ctx, project, environment, "evaluate"); err != nil {
			return nil, err
		}
		if err = rs.Flush(ctx); err != nil {
			return nil, err
		}
		red = w.redactorFor(rs.Visible())
	}
	p, err := w.cfg.Engine.Compile(engine.Field, expression, engine.WithField("expression"))
	if err != nil {
		return nil, red.Error(err)
	}
	x := &execution{w: w, run: &model.Run{ID: "evaluate", Project: project, Environment: environment, Flow: "(preview)", CreatedBy: actor},
		red: red, secrets: rs, input: input, steps: map[string]any{}, condSteps: map[string]any{}, plan: &plan.Plan{}}
	var vis []model.VisibleSecret
	if rs != nil {
		vis = rs.Visible()
	}
	x.guard.start(red, vis, w.derivers)
	v, err := x.script(ctx, p, x.env("preview"))
	if err != nil {
		var ee *engine.Error
		if errors.As(err, &ee) {
			return nil, ee.Redacted(red.String)
		}
		return nil, red.Error(err)
	}
	return red.Value(v), nil
}
