package metrics_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/hushflow/hushflow/blocks/all"
	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
)

func TestMain(m *testing.M) { apptest.Main(m) }

const token = "tok_metrics_7Hq2xZ9pLw4v"

// series is a parsed /metrics page: one value per series line.
type series map[string]float64

func scrape(t *testing.T, s *apptest.Server) series {
	t.Helper()
	r := s.DoToken("", "GET", "/metrics", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics = %d %s", r.Status, r.Body)
	}
	apptest.AssertAbsent(t, "/metrics", string(r.Body), token)
	out := series{}
	sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// get sums the series of name whose labels include every label given as
// `key="value"`; found is false when there is none.
func (m series) get(name string, labels ...string) (sum float64, found bool) {
	for k, v := range m {
		n, ls, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains("{"+ls, "{"+l) && !strings.Contains(ls, ","+l) {
				ok = false
			}
		}
		if ok {
			sum += v
			found = true
		}
	}
	return sum, found
}

// After a few runs, /metrics has every metric of docs/metrics.md with the
// right counts, and no label or value shows a secret or a path.
func TestMetricsAfterRuns(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		var mu sync.Mutex
		var traceparents []string
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			traceparents = append(traceparents, r.Header.Get("Traceparent"))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"ok":true,"echo":"` + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") + `"}`))
		}))
		t.Cleanup(target.Close)

		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": token, "project": "ops"})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
			"name": "good", "trigger": map[string]any{"type": "manual"},
			"env": map[string]string{"BASE": target.URL},
			"blocks": []any{
				map[string]any{"id": "call", "type": "http", "config": map[string]any{
					"url": "`${env.BASE}/ping`", "headers": "({Authorization: `Bearer ${secrets.API_TOKEN}`})"}},
				map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "`echo: ${steps.call.output.body.echo}`"}},
			},
		})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
			"name": "bad", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "missing", "type": "log", "config": map[string]any{"message": "secrets.NOT_THERE"}}},
		})
		var runIDs []string
		for range 3 {
			run := s.Must(200, "POST", "/api/v1/projects/ops/flows/good/runs?wait=30s", map[string]any{"environment": "production"})
			if run["status"] != "succeeded" {
				t.Fatalf("run: %v", run)
			}
			runIDs = append(runIDs, run["id"].(string))
		}
		if run := s.Must(200, "POST", "/api/v1/projects/ops/flows/bad/runs?wait=30s", map[string]any{"environment": "production"}); run["status"] != "failed" {
			t.Fatalf("bad run: %v", run)
		}

		// The hooks run just after the outcome is stored: wait for them.
		var m series
		apptest.Eventually(t, 10*time.Second, "the 4 runs in hushflow_runs_total", func() error {
			m = scrape(t, s)
			if n, _ := m.get("hushflow_runs_total"); n < 4 {
				return fmt.Errorf("hushflow_runs_total = %g", n)
			}
			return nil
		})
		// One scrape gathers the metrics in parallel, so it is no
		// snapshot: it can see a run counted but not yet its duration.
		// RunFinished observes the duration first, so the next scrape
		// sees both.
		m = scrape(t, s)
		for _, c := range []struct {
			name   string
			labels []string
			want   float64 // -1: at least one
		}{
			{"hushflow_runs_total", []string{`status="succeeded"`}, 3},
			{"hushflow_runs_total", []string{`status="failed"`}, 1},
			{"hushflow_run_duration_seconds_count", []string{`status="succeeded"`}, 3},
			{"hushflow_run_duration_seconds_count", []string{`status="failed"`}, 1},
			{"hushflow_block_duration_seconds_count", []string{`status="succeeded"`, `type="http"`}, 3},
			{"hushflow_block_duration_seconds_count", []string{`status="succeeded"`, `type="log"`}, 3},
			{"hushflow_block_duration_seconds_count", []string{`status="failed"`, `type="log"`}, 1},
			{"hushflow_secret_resolutions_total", []string{`result="ok"`}, -1},
			{"hushflow_secret_resolutions_total", []string{`result="unknown"`}, -1},
			// Each good run masks the token in the http block's config
			// and response, and in the log line.
			{"hushflow_redactions_total", nil, -1},
			{"hushflow_queue_depth", nil, 0},
			{"hushflow_queue_oldest_age_seconds", nil, 0},
			{"hushflow_http_request_duration_seconds_count", []string{`method="POST"`, `route="/api/v1/projects/:project/flows/:flow/runs"`, `status="200"`}, 4},
			{"hushflow_http_request_duration_seconds_count", []string{`method="POST"`, `route="/api/v1/secrets"`, `status="201"`}, 1},
			{"go_goroutines", nil, -1},
		} {
			got, found := m.get(c.name, c.labels...)
			switch {
			case !found:
				t.Errorf("%s%v: missing", c.name, c.labels)
			case c.want < 0 && got < 1, c.want >= 0 && got != c.want:
				t.Errorf("%s%v = %g, want %g", c.name, c.labels, got, c.want)
			}
		}
		if n, _ := m.get("hushflow_redactions_total"); n < 9 {
			t.Errorf("hushflow_redactions_total = %g, want at least 9 (3 masks per good run)", n)
		}

		// Traceparent: trace id = the run id, a span id per request.
		mu.Lock()
		defer mu.Unlock()
		if len(traceparents) != 3 {
			t.Fatalf("target saw %d requests", len(traceparents))
		}
		re := regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`)
		for i, tp := range traceparents {
			g := re.FindStringSubmatch(tp)
			if g == nil || g[1] != strings.ReplaceAll(runIDs[i], "-", "") {
				t.Errorf("request %d: traceparent %q, run %s", i, tp, runIDs[i])
			}
		}

		if r := s.DoToken("", "GET", "/readyz", nil); r.Status != http.StatusOK {
			t.Errorf("readyz = %d %s", r.Status, r.Body)
		}

		// Logs: each run's end is a line with its run id; each request's
		// line has a request id.
		logs := s.Logs.String()
		for _, id := range runIDs {
			if !regexp.MustCompile(`"msg":"run finished".*"run_id":"` + id + `".*"status":"succeeded"`).MatchString(logs) {
				t.Errorf("no run finished line for run %s", id)
			}
		}
		if !regexp.MustCompile(`"msg":"http".*"path":"/metrics".*"request_id":"[0-9a-f]{16}"`).MatchString(logs) {
			t.Errorf("no access log line with a request id")
		}
	}, func(c *app.Config) { c.Traceparent = true })
}

// The queue metrics count queued runs on an API-only replica (no
// workers), and the age grows with the queue's clock.
func TestQueueMetrics(t *testing.T) {
	apptest.SkipShort(t)
	clock := &apptest.Clock{}
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
			"name": "wait", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "'hi'"}}},
		})
		for range 2 {
			s.Must(202, "POST", "/api/v1/projects/ops/flows/wait/runs", map[string]any{"environment": "production"})
		}
		m := scrape(t, s)
		if n, _ := m.get("hushflow_queue_depth"); n != 2 {
			t.Errorf("hushflow_queue_depth = %g, want 2", n)
		}
		if age, _ := m.get("hushflow_queue_oldest_age_seconds"); age >= 60 {
			t.Errorf("hushflow_queue_oldest_age_seconds = %g just after queuing, want under 60", age)
		}
		clock.Advance(2 * time.Minute)
		m = scrape(t, s)
		if n, _ := m.get("hushflow_queue_depth"); n != 2 {
			t.Errorf("hushflow_queue_depth = %g two minutes later, want 2", n)
		}
		if age, _ := m.get("hushflow_queue_oldest_age_seconds"); age < 120 || age >= 180 {
			t.Errorf("hushflow_queue_oldest_age_seconds = %g two minutes later, want about 120", age)
		}
		if r := s.DoToken("", "GET", "/readyz", nil); r.Status != http.StatusOK {
			t.Errorf("readyz of an API-only replica = %d %s", r.Status, r.Body)
		}
	}, func(c *app.Config) { c.NoWorkers = true; c.Now = clock.Now })
}
