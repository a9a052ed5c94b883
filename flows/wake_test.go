package flows_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// TestClaimLoopWakesWithoutPolling: with the idle poll set to an hour, runs
// still start at once, because what makes a run claimable in this process
// wakes the claim loop: queueing it, and, while the one worker slot is
// taken, the end of the run in it (issue 21: the idle poll backs off to
// 1 s, so a missing wake-up would cost up to a second per run; here it
// would cost an hour).
func TestClaimLoopWakesWithoutPolling(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := serverOn(t, b.Config(t), func(c *app.Config) {
				c.Workers, c.ClaimPoll, c.ClaimMaxPoll, c.RateLimit = 1, time.Hour, time.Hour, -1
			})
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "quick", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "double", "type": "code", "config": map[string]any{"code": "return input.n * 2"}}},
			})
			// Queued together: one runs, the others wait for its slot.
			const n = 6
			ids := make([]string, n)
			for i := range ids {
				ids[i] = s.Must(202, "POST", "/api/v1/projects/ops/flows/quick/runs",
					map[string]any{"environment": "development", "input": map[string]any{"n": i}})["id"].(string)
			}
			apptest.Eventually(t, 30*time.Second, "every run to succeed", func() error {
				for i, id := range ids {
					r := s.Must(200, "GET", "/api/v1/runs/"+id, nil)
					if r["status"] != "succeeded" {
						return fmt.Errorf("run %d is %v", i, r["status"])
					}
				}
				return nil
			})
		})
	}
}

// A run queued through a process with a free slot starts there at once:
// no claim, no wake-up of the claim loop (whose poll is an hour here).
// (TestClaimLoopWakesWithoutPolling covers runs queued while the slots
// are full: they wait for the claim loop, which a run that ends wakes.)
func TestQueuedRunStartsAtOnce(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := serverOn(t, b.Config(t), func(c *app.Config) {
				c.Workers, c.ClaimPoll, c.ClaimMaxPoll, c.RateLimit = 2, time.Hour, time.Hour, -1
			})
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "quick", "trigger": map[string]any{"type": "webhook"},
				"blocks": []any{map[string]any{"id": "double", "type": "code", "config": map[string]any{"code": "return input.n * 2"}}},
			})
			for i := 0; i < 5; i++ {
				r := s.Must(200, "POST", "/api/v1/projects/ops/flows/quick/runs?wait=60s",
					map[string]any{"environment": "development", "input": map[string]any{"n": i}})
				if r["status"] != "succeeded" || r["attempt"] != float64(1) || r["output"] != float64(2*i) {
					t.Fatalf("run %d: status %v, attempt %v, output %v", i, r["status"], r["attempt"], r["output"])
				}
				evs := events(t, s, r["id"].(string))
				checkSequence(t, r["id"].(string), evs)
			}
			wh := s.Do("POST", "/hooks/ops/quick", map[string]any{"n": 21})
			if wh.Status != 202 {
				t.Fatalf("webhook: %d %s", wh.Status, wh.Body)
			}
			apptest.Eventually(t, 30*time.Second, "the webhook's run to succeed", func() error {
				rs := s.Must(200, "GET", "/api/v1/projects/ops/runs?flow=quick&limit=1", nil)["runs"].([]any)
				if st := rs[0].(map[string]any)["status"]; st != "succeeded" {
					return fmt.Errorf("webhook run is %v", st)
				}
				return nil
			})
			if m := string(s.Do("GET", "/metrics", nil).Body); !strings.Contains(m, `hushflow_run_starts_total{how="dispatched"} 6`) ||
				strings.Contains(m, `hushflow_run_starts_total{how="claimed"}`) {
				t.Errorf("want 6 runs dispatched, none claimed:\n%s", grepLines(m, "run_starts"))
			}
		})
	}
}

// On PostgreSQL a run queued through a replica without workers (an
// API-only one) starts at once on another whose poll is an hour: the
// queuing replica notifies every claim loop. When the listening
// connection is cut, the listener connects again by itself.
func TestReplicasNotifiedOfQueuedRuns(t *testing.T) {
	if os.Getenv(storetest.EnvURL) == "" {
		t.Skip("PostgreSQL only: on SQLite one process queues and claims every run")
	}
	dbc := storetest.PostgresConfig(t)
	worker := serverOn(t, dbc, func(c *app.Config) {
		c.ClaimPoll, c.ClaimMaxPoll, c.RateLimit = time.Hour, time.Hour, -1
	})
	apiOnly := dbc
	apiOnly.DataDir = t.TempDir()
	api := serverOn(t, apiOnly, func(c *app.Config) { c.NoWorkers, c.RateLimit = true, -1 })
	api.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
	api.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
		"name": "quick", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{map[string]any{"id": "double", "type": "code", "config": map[string]any{"code": "return input.n * 2"}}},
	})
	runOne := func(n int) {
		t.Helper()
		id := api.Must(202, "POST", "/api/v1/projects/ops/flows/quick/runs",
			map[string]any{"environment": "development", "input": map[string]any{"n": n}})["id"].(string)
		apptest.Eventually(t, 30*time.Second, "the run to succeed on the other replica", func() error {
			if r := api.Must(200, "GET", "/api/v1/runs/"+id, nil); r["status"] != "succeeded" {
				return fmt.Errorf("run is %v", r["status"])
			}
			return nil
		})
	}
	runOne(1)

	// Cut the listening connection: the listener connects again (after a
	// second), and says so in the log. (A terminated backend shows in
	// pg_stat_activity until it has exited: the new one has another pid.)
	sql := storetest.Open(t, dbc, nil)
	const listening = "FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN hushflow_runs_due%'"
	var old []int64
	if err := sql.Raw("SELECT pid " + listening).Scan(&old).Error; err != nil || len(old) != 1 {
		t.Fatalf("listening connections %v (%v), want 1", old, err)
	}
	var cut int64
	if err := sql.Raw("SELECT COUNT(pg_terminate_backend(pid)) "+listening+" AND pid = ?", old[0]).Scan(&cut).Error; err != nil || cut != 1 {
		t.Fatalf("terminated %d listening connections (%v), want 1", cut, err)
	}
	apptest.Eventually(t, 30*time.Second, "the listener to connect again", func() error {
		if !strings.Contains(worker.Logs.String(), "listen for due runs: lost the connection") {
			return fmt.Errorf("no log line about the lost listening connection")
		}
		var pids []int64
		sql.Raw("SELECT pid "+listening+" AND pid <> ?", old[0]).Scan(&pids)
		if len(pids) != 1 {
			return fmt.Errorf("%d new listening connections", len(pids))
		}
		return nil
	})
	runOne(2)
}
