package flows_test

import (
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
)

// Projects take turns at the workers: one project's burst of 300 runs,
// queued before another project's run, does not make that run wait for
// the burst. Before, the claim took the oldest due runs of all projects,
// and the quiet project's run started after the whole burst.
func TestProjectsTakeTurns(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		for _, p := range []string{"busy", "quiet"} {
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": p})
			s.Must(201, "POST", "/api/v1/projects/"+p+"/flows", map[string]any{
				"name": "work", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "wait", "type": "delay", "config": map[string]any{"duration": "'100ms'"}}},
			})
		}
		const burst = 300
		var wg sync.WaitGroup
		jobs := make(chan int)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range jobs {
					if r := s.Do("POST", "/api/v1/projects/busy/flows/work/runs", map[string]any{"environment": "development"}); r.Status != 202 {
						t.Errorf("queue a run of the burst: %d %s", r.Status, r.Body)
					}
				}
			}()
		}
		for i := range burst {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		open := func(project string) int {
			m := s.Must(200, "GET", "/api/v1/projects/"+project+"/runs?status=queued&limit=200", nil)
			return len(m["runs"].([]any))
		}
		if n := open("busy"); n < 150 {
			t.Fatalf("only %d runs of the burst still queued: the test needs more of a backlog", n)
		}
		id := s.Must(202, "POST", "/api/v1/projects/quiet/flows/work/runs", map[string]any{"environment": "development"})["id"].(string)
		var r map[string]any
		waitFor(t, time.Minute, "the quiet project's run to end", func() bool {
			r = s.Must(200, "GET", "/api/v1/runs/"+id, nil)
			return r["status"] == "succeeded" || r["status"] == "failed"
		})
		if n := open("busy"); n < 100 {
			t.Errorf("the quiet project's run ended with %d runs of the burst queued before it still waiting; it waited for the burst", n)
		}
	}, func(c *app.Config) { c.Workers, c.RateLimit = 4, -1 })
}
