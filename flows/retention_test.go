package flows_test

import (
	"context"
	"regexp"
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
// start, then every hour. Here a run that read a secret ends, the clock
// moves two hours on, and a replica with a retention of one hour (runs
// and audit reads) starts: the run is gone, counted in
// hushflow_runs_pruned_total and said in the log, with the schedule tick
// of that time and the audit records of the run's reads; the record of
// the secret's creation stays.
func TestRetentionDeletesOldRuns(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			dbc := b.Config(t)
			clock := &apptest.Clock{}
			opts := func(c *app.Config) { c.Now = clock.Now; c.RunRetention = time.Hour; c.AuditRetention = time.Hour }
			s := serverOn(t, dbc, opts)
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "shop"})
			s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "GREETING", "value": "retention-value-5Jq8Rw2n", "project": "shop"})
			s.Must(201, "POST", "/api/v1/projects/shop/flows", map[string]any{"name": "quick", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "'hello ' + secrets.GREETING.length"}}}})
			id := s.Must(200, "POST", "/api/v1/projects/shop/flows/quick/runs?wait=30s", map[string]any{"environment": "development"})["id"].(string)
			if err := s.App.DB.Exec("INSERT INTO schedule_ticks (flow_id, tick, run_id) VALUES ('f', ?, '')", clock.Now().UTC().Truncate(time.Minute)).Error; err != nil {
				t.Fatal(err)
			}
			actions := func() string {
				var as []string
				s.App.DB.Raw("SELECT action FROM secret_audit WHERE run_id = ? OR action = 'create' ORDER BY action", id).Scan(&as)
				return strings.Join(as, " ")
			}
			if got := actions(); got != "create redaction_load resolve" {
				t.Fatalf("audit records before the prune: %q", got)
			}
			s.Stop()

			clock.Advance(2 * time.Hour)
			s = serverOn(t, dbc, opts)
			waitFor(t, 30*time.Second, "the run past the retention to be deleted", func() bool {
				return s.Do("GET", "/api/v1/runs/"+id, nil).Status == 404
			})
			// The count and the lines follow the deletes.
			waitFor(t, 30*time.Second, "the prune's log lines and metric", func() bool {
				m := s.Do("GET", "/metrics", nil)
				return strings.Contains(string(m.Body), "hushflow_runs_pruned_total 1\n") &&
					strings.Contains(s.Logs.String(), `"msg":"deleted the runs past their retention","retention":"1h","runs":1,"schedule_ticks":1`) &&
					// (records: the run's two, and reads the new server made
					// as it started, whose time is the real clock's, an hour
					// before the test's moved one)
					regexp.MustCompile(`"msg":"deleted the audit records of reads past their retention","retention":"1h","records":[1-9]`).MatchString(s.Logs.String())
			})
			var ticks int64
			s.App.DB.Table("schedule_ticks").Count(&ticks)
			if ticks != 0 {
				t.Errorf("%d schedule ticks left", ticks)
			}
			if got := actions(); got != "create" {
				t.Errorf("audit records after the prune: %q, want the creation only", got)
			}
		})
	}
}
