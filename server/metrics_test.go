package server_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/metrics"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/server"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

// API latency is labelled by route template: the project name in the
// path never reaches a label.
func TestMetricsRouteLabels(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		a := newAPIWith(t, db, func(d *server.Deps) { d.Metrics = metrics.New(nil) })
		if r := a.do("POST", "/api/v1/projects", map[string]string{"name": "zebra-project-7"}); r.Status != http.StatusCreated {
			t.Fatalf("create project: %d %s", r.Status, r.Body)
		}
		for range 3 {
			a.do("GET", "/api/v1/projects/zebra-project-7", nil)
		}
		a.do("GET", "/api/v1/projects/no-such-project-9", nil)
		a.do("GET", "/api/v1/no/such/route/42", nil)
		a.doToken("", "GET", "/totally-unknown-path-55", nil)
		r := a.doToken("", "GET", "/metrics", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET /metrics = %d %s", r.Status, r.Body)
		}
		body := string(r.Body)
		for _, want := range []string{
			`hushflow_http_request_duration_seconds_count{method="POST",route="/api/v1/projects",status="201"} 1`,
			`hushflow_http_request_duration_seconds_count{method="GET",route="/api/v1/projects/:project",status="200"} 3`,
			`hushflow_http_request_duration_seconds_count{method="GET",route="/api/v1/projects/:project",status="404"} 1`,
			`route="unmatched",status="404"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		for _, leak := range []string{"zebra-project-7", "no-such-project-9", "/no/such/route", "totally-unknown"} {
			if strings.Contains(body, leak) {
				t.Errorf("/metrics shows %q from a request path", leak)
			}
		}
	})
}

func TestMetricsToken(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		a := newAPIWith(t, db, func(d *server.Deps) { d.Metrics, d.MetricsToken = metrics.New(nil), "scrape-token-123" })
		for _, tc := range []struct {
			token string
			want  int
		}{{"", 401}, {"wrong", 401}, {a.token, 401}, {"scrape-token-123", 200}} {
			if r := a.doToken(tc.token, "GET", "/metrics", nil); r.Status != tc.want {
				t.Errorf("token %q: GET /metrics = %d, want %d", tc.token, r.Status, tc.want)
			}
		}
		// Without metrics there is no /metrics route.
		rec := httptest.NewRecorder()
		server.New(server.Deps{DB: db}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET /metrics without metrics = %d", rec.Code)
		}
	})
}

// Readiness reflects the run workers: 200 before they start (an API-only
// replica) and while they run, 503 once they stopped.
func TestReadinessReflectsWorkers(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteConfig(t), schema.All())
	keys, err := secrets.ParseKeyring("k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	fs := flows.New(flows.Config{DB: db, Projects: projects.NewService(db), Registry: blocks.NewRegistry(), Sealer: keys})
	srv := server.New(server.Deps{DB: db, Flows: fs})
	ready := func() int {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code
	}
	if c := ready(); c != http.StatusOK {
		t.Fatalf("before the workers start: %d", c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); fs.Start(ctx) }()
	<-fs.Started()
	if c := ready(); c != http.StatusOK {
		t.Errorf("with the workers running: %d", c)
	}
	cancel()
	<-done
	if c := ready(); c != http.StatusServiceUnavailable {
		t.Errorf("with the workers stopped: %d, want 503", c)
	}
	if err := fs.Healthy(); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("Healthy() = %v", err)
	}
}
