package flows_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/internal/apptest"
)

// POST .../runs?wait=D answers the run as it is when D is over (202),
// never an error because the wait ended while the run was being read; a
// wait that is no duration is refused before any run starts.
func TestWaitEndsWithTheRun(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "p"})
		s.Must(201, "POST", "/api/v1/projects/p/flows", map[string]any{
			"name": "slow", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "d", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "'1h'"}}},
		})
		for _, w := range []string{"banana", "0s", "6m", "-1s"} {
			r := s.Do("POST", "/api/v1/projects/p/flows/slow/runs?wait="+w, map[string]any{"environment": "development"})
			if r.Status != 400 || !strings.Contains(string(r.Body), "invalid_wait") || !strings.Contains(string(r.Body), "no run was started") {
				t.Errorf("wait=%s: %d %s", w, r.Status, r.Body)
			}
		}
		if runs := s.Must(200, "GET", "/api/v1/projects/p/runs", nil)["runs"].([]any); len(runs) != 0 {
			t.Fatalf("refused waits started %d runs", len(runs))
		}
		// A wait over before the run could be read at all.
		run := s.Must(202, "POST", "/api/v1/projects/p/flows/slow/runs", map[string]any{"environment": "development"})
		over, cancel := context.WithCancel(context.Background())
		cancel()
		r, err := s.App.Flows.Wait(over, run["id"].(string))
		if err != nil || r == nil || r.ID != run["id"] || r.Finished() {
			t.Fatalf("Wait with its context over: %v, %v", r, err)
		}
		// Waits that end as the run is read: 202 every time.
		for i := 0; i < 20; i++ {
			r := s.Do("POST", "/api/v1/projects/p/flows/slow/runs?wait=1ms", map[string]any{"environment": "development"})
			if r.Status != 202 || !strings.Contains(string(r.Body), `"id"`) {
				t.Fatalf("wait=1ms: %d %s", r.Status, r.Body)
			}
		}
	})
}
