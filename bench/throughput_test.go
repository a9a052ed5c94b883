package bench

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	_ "github.com/hushflow/hushflow/blocks/all"
	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// flowJSON is the benchmark flow (flowBlocks) as the API takes it.
func flowJSON(base string) map[string]any {
	var blocks []any
	for _, b := range flowBlocks {
		cfg := map[string]any{}
		for _, f := range b.fields {
			cfg[f[0]] = f[1]
		}
		m := map[string]any{"id": b.id, "type": b.typ, "config": cfg}
		if b.cond != "" {
			m["if"] = b.cond
		}
		blocks = append(blocks, m)
	}
	return map[string]any{"name": "bench", "trigger": map[string]any{"type": "manual"},
		"env": map[string]string{"API_BASE": base}, "blocks": blocks}
}

// BenchmarkRunThroughput runs the benchmark flow end to end through a real
// server on PostgreSQL: each iteration is one run started through the API
// and waited for (queue, claim, three blocks with a real HTTP call, events
// stored redacted, outcome). Several clients start runs at once, so runs/s
// is the server's throughput with its default 8 workers of apptest.
func BenchmarkRunThroughput(b *testing.B) {
	if os.Getenv(storetest.EnvURL) == "" {
		b.Skipf("%s not set: the throughput benchmark runs on PostgreSQL", storetest.EnvURL)
	}
	var hits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"msg_1","echo_auth":%q}`, r.Header.Get("Authorization"))
	}))
	defer target.Close()
	s := apptest.Start(b, storetest.PostgresConfig(b), func(c *app.Config) { c.RateLimit = -1 })
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "bench"})
	for name, v := range visibleSecrets {
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": name, "value": v, "project": "bench"})
	}
	s.Must(201, "POST", "/api/v1/projects/bench/flows", flowJSON(target.URL))
	body := map[string]any{"environment": "production", "input": flowInput}
	b.Run("postgres", func(b *testing.B) {
		b.SetParallelism(4) // 4 x GOMAXPROCS clients
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r := s.Do("POST", "/api/v1/projects/bench/flows/bench/runs?wait=60s", body)
				if r.Status != 200 || !strings.Contains(string(r.Body), `"succeeded"`) {
					b.Errorf("run: %d %.300s", r.Status, r.Body)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
	})
}
