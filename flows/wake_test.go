package flows_test

import (
	"fmt"
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
