package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// BenchmarkLoop measures a loop (issue 19): one run whose block with each
// makes 100 HTTP calls, 10 at a time, beside the same 100 calls made by
// 100 runs of a one-block flow started by 10 clients at once, through a
// real server on PostgreSQL. items/s counts HTTP calls done per second.
func BenchmarkLoop(b *testing.B) {
	if os.Getenv(storetest.EnvURL) == "" {
		b.Skipf("%s not set: the loop benchmark runs on PostgreSQL", storetest.EnvURL)
	}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
	defer target.Close()
	s := apptest.Start(b, storetest.PostgresConfig(b), func(c *app.Config) { c.RateLimit = -1 })
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "bench"})
	s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": visibleSecrets["API_TOKEN"], "project": "bench"})
	get := func(i string) map[string]any {
		return map[string]any{"url": "`${env.API_BASE}/item/${" + i + "}`", "headers": "({Authorization: `Bearer ${secrets.API_TOKEN}`})"}
	}
	s.Must(201, "POST", "/api/v1/projects/bench/flows", map[string]any{
		"name": "loop", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"API_BASE": target.URL},
		"blocks": []any{map[string]any{"id": "get", "type": "http", "each": "input.items", "concurrency": 10, "config": get("item")}},
	})
	s.Must(201, "POST", "/api/v1/projects/bench/flows", map[string]any{
		"name": "one", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"API_BASE": target.URL},
		"blocks": []any{map[string]any{"id": "get", "type": "http", "config": get("input.i")}},
	})
	items := make([]int, 100)
	for i := range items {
		items[i] = i
	}
	run := func(flow string, input map[string]any) {
		r := s.Do("POST", "/api/v1/projects/bench/flows/"+flow+"/runs?wait=120s", map[string]any{"environment": "production", "input": input})
		if r.Status != 200 || !strings.Contains(string(r.Body), `"succeeded"`) {
			b.Errorf("run of %s: %d %.300s", flow, r.Status, r.Body)
		}
	}
	b.Run("postgres/each", func(b *testing.B) {
		for range b.N {
			run("loop", map[string]any{"items": items})
		}
		b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "items/s")
	})
	b.Run("postgres/runs", func(b *testing.B) {
		for range b.N {
			var wg sync.WaitGroup
			next := make(chan int)
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						run("one", map[string]any{"i": i})
					}
				}()
			}
			for i := range 100 {
				next <- i
			}
			close(next)
			wg.Wait()
		}
		b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "items/s")
	})
}
