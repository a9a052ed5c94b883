package flows_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/internal/apptest"
)

// panicBlock panics with the secret it was given: a block with a bug.
type panicBlock struct {
	Value string `json:"value"`
}

func (b *panicBlock) Run(context.Context, *blocks.Input) (any, error) {
	panic("bug while holding " + b.Value)
}

func init() {
	blocks.MustRegister(blocks.Info{ID: "test_panic", Spec: blocks.Spec{Summary: "panics (tests only)",
		Fields: []blocks.Field{{Name: "value", Type: blocks.String}}}, New: func() blocks.Block { return new(panicBlock) }})
}

// A panic inside a block fails the run with a clear, redacted error; the
// server keeps running runs.
func TestPanicInBlockFailsTheRun(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "buggy", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "b", "type": "test_panic", "config": map[string]any{"value": "secrets.API_TOKEN"}}}})
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/buggy/runs?wait=30s", map[string]any{"environment": "development"})
		if run["status"] != "failed" || !strings.Contains(run["error"].(string), "block panicked") {
			t.Fatalf("run: %v", run)
		}
		ev := s.Do("GET", "/api/v1/runs/"+run["id"].(string)+"/events", nil)
		apptest.AssertAbsent(t, "run", mustJSON(run)+string(ev.Body)+s.Logs.String()+apptest.DumpTables(t, s.App.DB), canaryToken)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "fine", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'ok'"}}}})
		if r := s.Must(200, "POST", "/api/v1/projects/billing/flows/fine/runs?wait=30s", map[string]any{"environment": "development"}); r["status"] != "succeeded" {
			t.Fatalf("next run: %v", r)
		}
	})
}
