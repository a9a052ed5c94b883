package flows_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/store/storetest"
)

// A server killed (SIGKILL) in the middle of a run: after a restart on the
// same database, the interrupted run is failed with a reason and the runs
// still queued are executed; no run stays running.
func TestCrashMidRun(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Config(t)
			// SQLite: the restarted server opens the same data dir.
			cfg := serveConfig{bin: hushflowBinary(t), db: db, dataDir: db.DataDir, extra: []string{"HUSHFLOW_RUN_LEASE=2s", "HUSHFLOW_WORKERS=1"}}
			p := startServe(t, cfg)
			p.must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			p.must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "slow", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{
					map[string]any{"id": "before", "type": "log", "config": map[string]any{"message": "'starting'"}},
					map[string]any{"id": "wait", "type": "delay", "config": map[string]any{"duration": "input.wait"}},
					map[string]any{"id": "after", "type": "log", "config": map[string]any{"message": "'done'"}},
				},
			})
			run := func(wait string) string {
				m := p.must(202, "POST", "/api/v1/projects/ops/flows/slow/runs", map[string]any{"environment": "development", "input": map[string]any{"wait": wait}})
				return m["id"].(string)
			}
			// One worker: the long run holds it, the short ones stay queued.
			long := run("30s")
			waitFor(t, 20*time.Second, "the long run to reach its delay block", func() bool {
				_, ev := p.do("GET", "/api/v1/runs/"+long+"/events", nil)
				return strings.Contains(eventList(ev), "block_started:wait")
			})
			short := []string{run("10ms"), run("10ms")}
			p.kill()

			p = startServe(t, cfg)
			status := func(id string) map[string]any { return p.must(200, "GET", "/api/v1/runs/"+id, nil) }
			waitFor(t, 30*time.Second, "every run to end", func() bool {
				for _, id := range append([]string{long}, short...) {
					if s := status(id)["status"]; s == "queued" || s == "running" {
						return false
					}
				}
				return true
			})
			r := status(long)
			if r["status"] != "failed" || !strings.Contains(fmt.Sprint(r["error"]), "lease expired") {
				t.Errorf("interrupted run: %v, want failed with the lease reason", r)
			}
			_, ev := p.do("GET", "/api/v1/runs/"+long+"/events", nil)
			if evs := eventList(ev); !strings.Contains(evs, "run_finished:") || strings.Contains(evs, ":after") {
				t.Errorf("interrupted run's events: %s", evs)
			}
			for _, id := range short {
				if r := status(id); r["status"] != "succeeded" {
					t.Errorf("queued run after restart: %v", r)
				}
			}
		})
	}
}

// A server stopped gracefully (SIGINT) in the middle of a run fails the run
// at once with a reason that says so.
func TestShutdownMidRun(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := b.Config(t)
			cfg := serveConfig{bin: hushflowBinary(t), db: db, dataDir: db.DataDir}
			p := startServe(t, cfg)
			p.must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			p.must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "slow", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "wait", "type": "delay", "config": map[string]any{"duration": "'30s'"}}},
			})
			id := p.must(202, "POST", "/api/v1/projects/ops/flows/slow/runs", map[string]any{"environment": "development"})["id"].(string)
			waitFor(t, 20*time.Second, "the run to reach its delay block", func() bool {
				_, ev := p.do("GET", "/api/v1/runs/"+id+"/events", nil)
				return strings.Contains(eventList(ev), "block_started:wait")
			})
			p.interrupt()
			p = startServe(t, cfg)
			r := p.must(200, "GET", "/api/v1/runs/"+id, nil)
			if r["status"] != "failed" || !strings.Contains(fmt.Sprint(r["error"]), "the server shut down while this run was running") {
				t.Fatalf("run after a graceful shutdown: %v", r)
			}
		})
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventList is "type:block type:block ..." of an events response.
func eventList(resp map[string]any) string {
	var out []string
	es, _ := resp["events"].([]any)
	for _, e := range es {
		m, _ := e.(map[string]any)
		b, _ := m["block"].(string)
		out = append(out, fmt.Sprint(m["type"], ":", b))
	}
	return strings.Join(out, " ")
}
