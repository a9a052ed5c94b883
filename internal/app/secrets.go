package app

import (
	"context"
	"errors"
	"time"

	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/metrics"
	"github.com/hushflow/hushflow/secrets"
)

// flowSecrets adapts the secret store to what flows need.
type flowSecrets struct {
	s *secrets.Store
	m *metrics.Metrics // counts resolutions
}

var _ flows.Secrets = flowSecrets{}

func (f flowSecrets) ForRun(ctx context.Context, project, environment, runID string) (flows.RunSecrets, error) {
	rr := f.s.NewRunResolver(project, environment, runID)
	loaded, err := rr.Load(ctx)
	if err != nil {
		return nil, err
	}
	vis := make([]flows.VisibleSecret, len(loaded))
	for i, l := range loaded {
		vis[i] = flows.VisibleSecret{Name: l.Meta.Name, Value: l.Value.Reveal(), AllowedHosts: l.Meta.AllowedHosts}
		for _, p := range l.Previous {
			vis[i].Previous = append(vis[i].Previous, p.Reveal())
		}
	}
	return runSecrets{rr: rr, vis: vis, m: f.m}, nil
}

func (f flowSecrets) Resolve(ctx context.Context, req flows.ResolveRequest) (string, error) {
	v, _, err := f.s.Resolve(ctx, secrets.Access{Project: req.Project, Environment: req.Environment, Name: req.Name,
		RunID: req.RunID, BlockID: req.BlockID, Actor: "trigger"})
	f.m.SecretResolved(resolution(err))
	return v.Reveal(), engineErr(err)
}

func (f flowSecrets) Names(ctx context.Context, project, environment string) ([]string, error) {
	return f.s.Names(ctx, project, environment)
}

type runSecrets struct {
	rr  *secrets.RunResolver
	vis []flows.VisibleSecret
	m   *metrics.Metrics
}

func (r runSecrets) Visible() []flows.VisibleSecret { return r.vis }

func (r runSecrets) Flush(ctx context.Context) error { return r.rr.Flush(ctx) }

func (r runSecrets) Pending() (any, func(bool)) { return r.rr.Pending() }

func (r runSecrets) Lead(rows any, done func(error)) { r.rr.Lead(rows, done) }

func (r runSecrets) Resolve(ctx context.Context, block, name string, sc engine.Scope) (flows.VisibleSecret, error) {
	v, m, err := r.rr.Resolve(ctx, block, name, secrets.Scope{Project: sc.Project, Environment: sc.Environment})
	r.m.SecretResolved(resolution(err))
	return flows.VisibleSecret{Name: name, Value: v.Reveal(), AllowedHosts: m.AllowedHosts}, engineErr(err)
}

// resolution is the metrics result of a secret read.
func resolution(err error) string {
	switch {
	case err == nil:
		return metrics.ResultOK
	case errors.Is(err, secrets.ErrUnknownSecret):
		return metrics.ResultUnknown
	default:
		return metrics.ResultError
	}
}

// engineErr makes an unknown secret recognizable to the engine, keeping
// the store's message (it names the key and the scope).
func engineErr(err error) error {
	if err != nil && errors.Is(err, secrets.ErrUnknownSecret) && !errors.Is(err, engine.ErrUnknownSecret) {
		return unknownSecret{err}
	}
	return err
}

type unknownSecret struct{ err error }

func (u unknownSecret) Error() string   { return u.err.Error() }
func (u unknownSecret) Unwrap() []error { return []error{u.err, engine.ErrUnknownSecret} }

// recordExposure records a secret value a run found where it should never
// be: the audit record and the mark on the secret (once per run, block,
// sink and secret), and the counter by sink.
func (a *App) recordExposure(ctx context.Context, e flows.Exposure) error {
	r := e.Run
	recorded, err := a.Secrets.RecordExposure(ctx, secrets.Exposure{Project: r.Project, Environment: e.Environment, Name: e.Secret,
		RunID: r.ID, RunProject: r.Project, RunEnvironment: r.Environment, BlockID: e.Block, Sink: e.Sink, Loaded: e.Loaded})
	if recorded {
		a.Metrics.SecretExposed(e.Sink)
		a.Log.Warn("secret possibly exposed: rotate it", "secret", e.Secret, "run_id", r.ID, "block", e.Block, "sink", e.Sink)
	}
	return err
}

// recordEgressRefused audits a request of run r refused by pinning. The
// refusal stands whether or not its record is written.
func (a *App) recordEgressRefused(r *flows.Run, secret, host string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := a.Secrets.RecordEgressRefused(ctx, secrets.EgressRefused{Project: r.Project, Environment: r.Environment,
		Name: secret, RunID: r.ID, Host: host})
	if err != nil {
		a.Log.Error("record a refused request in the audit", "secret", secret, "run_id", r.ID, "err", err)
	}
}
