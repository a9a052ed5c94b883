package flows_test

import (
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
)

// Saves of one flow at the same moment each make a version of their own.
// On PostgreSQL two that read the same version both wrote the next, and
// all but one failed with 409 "already exists: flow_versions_pkey" (5 of
// 8 here).
func TestConcurrentSaves(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		def := func(msg string) map[string]any {
			return map[string]any{"name": "busy", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "'" + msg + "'"}}}}
		}
		s.Must(201, "POST", "/api/v1/projects/ops/flows", def("v0"))
		var wg sync.WaitGroup
		versions := make([]int, 8)
		for i := range versions {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := s.Do("PUT", "/api/v1/projects/ops/flows/busy", def(fmt.Sprintf("v%d", i+1)))
				if r.Status != 200 {
					t.Errorf("save %d: %d %s", i+1, r.Status, r.Body)
					return
				}
				if v, ok := r.JSON(t)["version"].(float64); ok {
					versions[i] = int(v)
				}
			}()
		}
		wg.Wait()
		sort.Ints(versions)
		if fmt.Sprint(versions) != "[2 3 4 5 6 7 8 9]" {
			t.Errorf("versions made: %v, want 2 to 9, one each", versions)
		}
		if vs := s.Must(200, "GET", "/api/v1/projects/ops/flows/busy/versions", nil)["versions"].([]any); len(vs) != 9 {
			t.Errorf("%d versions stored, want 9", len(vs))
		}
	}, func(c *app.Config) { c.RateLimit = -1 })
}
