package flows_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// Run retention: PruneRuns deletes the runs that ended before the time
// it is given, with their events, and keeps the open runs, a finished
// child whose parent is open, and the runs that ended later.
func TestPruneRuns(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "quick", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "'hello ' + input.n"}}}})
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "broken", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "boom", "type": "code", "config": map[string]any{"code": "throw new Error('no')"}}}})
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "slow", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "nap", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "'1h'"}}}})
		// A parent that waits after its child ended: the child stays.
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "parent", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "call", "type": "flow", "config": map[string]any{"flow": "'quick'", "input": "({n: 7})"}},
				map[string]any{"id": "nap", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "'1h'"}},
			}})
		run := func(flow string, n int) string {
			t.Helper()
			r := s.Must(200, "POST", "/api/v1/projects/billing/flows/"+flow+"/runs?wait=30s",
				map[string]any{"environment": "development", "input": map[string]any{"n": n}})
			return r["id"].(string)
		}
		old := []string{run("quick", 1), run("quick", 2), run("broken", 3)}
		waiting := s.Must(202, "POST", "/api/v1/projects/billing/flows/slow/runs", map[string]any{"environment": "development"})["id"].(string)
		parent := s.Must(202, "POST", "/api/v1/projects/billing/flows/parent/runs", map[string]any{"environment": "development"})["id"].(string)
		waitFor(t, 30*time.Second, "the run to wait", func() bool {
			return s.Must(200, "GET", "/api/v1/runs/"+waiting, nil)["status"] == "waiting"
		})
		// The parent waits for its child, then in its delay.
		waitRun(t, s, parent, "the parent to wait in its delay", func(r map[string]any, evs string) bool {
			return r["status"] == "waiting" && strings.Contains(evs, "block_waiting:nap")
		})
		var child string
		s.App.DB.Raw("SELECT id FROM runs WHERE parent_run_id = ?", parent).Scan(&child)
		if child == "" || s.Must(200, "GET", "/api/v1/runs/"+child, nil)["status"] != "succeeded" {
			t.Fatalf("the parent's child %q has not ended", child)
		}
		before := time.Now()
		late := run("quick", 4)

		n, err := s.App.Flows.PruneRuns(context.Background(), before)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(old) {
			t.Errorf("deleted %d runs, want %d", n, len(old))
		}
		for _, id := range old {
			if r := s.Do("GET", "/api/v1/runs/"+id, nil); r.Status != 404 {
				t.Errorf("run %s past the retention: %d %s", id, r.Status, r.Body)
			}
			var evs, cps int64
			s.App.DB.Table("events").Where("run_id = ?", id).Count(&evs)
			s.App.DB.Table("run_checkpoints").Where("run_id = ?", id).Count(&cps)
			if evs != 0 || cps != 0 {
				t.Errorf("run %s deleted, but %d events and %d checkpoints left", id, evs, cps)
			}
		}
		for _, id := range []string{waiting, parent, child, late} {
			if r := s.Do("GET", "/api/v1/runs/"+id, nil); r.Status != 200 {
				t.Errorf("run %s kept: %d %s", id, r.Status, r.Body)
			}
		}
		if evs := events(t, s, late); len(evs) == 0 {
			t.Errorf("the kept run lost its events")
		}

		// Once the parent ended, its child goes with it.
		s.Must(200, "POST", "/api/v1/runs/"+parent+"/cancel", nil)
		s.Must(200, "POST", "/api/v1/runs/"+waiting+"/cancel", nil)
		if n, err := s.App.Flows.PruneRuns(context.Background(), time.Now()); err != nil || n != 4 {
			t.Errorf("second prune: %d runs, %v; want 4 (the parent, its child, the canceled run and the late one)", n, err)
		}
		var left int64
		s.App.DB.Table("runs").Count(&left)
		if left != 0 {
			t.Errorf("%d runs left", left)
		}
		// Nothing left: a prune finds nothing.
		if n, err := s.App.Flows.PruneRuns(context.Background(), time.Now()); err != nil || n != 0 {
			t.Errorf("third prune: %d runs, %v", n, err)
		}
	})
}

// A worker replica deletes the runs past the retention on its own: at
// start, then every hour. Here a run ends, the clock moves two hours on,
// and a replica with a retention of one hour starts: the run is gone,
// counted in hushflow_runs_pruned_total and said in the log.
func TestRetentionDeletesOldRuns(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			dbc := b.Config(t)
			clock := &apptest.Clock{}
			opts := func(c *app.Config) { c.Now = clock.Now; c.RunRetention = time.Hour }
			s := serverOn(t, dbc, opts)
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "shop"})
			s.Must(201, "POST", "/api/v1/projects/shop/flows", map[string]any{"name": "quick", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "'hello'"}}}})
			id := s.Must(200, "POST", "/api/v1/projects/shop/flows/quick/runs?wait=30s", map[string]any{"environment": "development"})["id"].(string)
			s.Stop()

			clock.Advance(2 * time.Hour)
			s = serverOn(t, dbc, opts)
			waitFor(t, 30*time.Second, "the run past the retention to be deleted", func() bool {
				return s.Do("GET", "/api/v1/runs/"+id, nil).Status == 404
			})
			// The count and the line follow the delete.
			waitFor(t, 30*time.Second, "the prune's log line and metric", func() bool {
				m := s.Do("GET", "/metrics", nil)
				return strings.Contains(string(m.Body), "hushflow_runs_pruned_total 1\n") &&
					strings.Contains(s.Logs.String(), `"msg":"deleted the runs past their retention","retention":"1h","runs":1`)
			})
		})
	}
}
