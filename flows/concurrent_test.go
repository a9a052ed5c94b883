package flows_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
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

// A flow's own max_concurrent_runs holds when runs are asked for at the
// same moment. Each request counted the open runs apart from the others:
// eight at once against a limit of one stored up to six on PostgreSQL (a
// helper's trial), two on SQLite.
func TestConcurrencyLimitUnderConcurrentRequests(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{"name": "one", "trigger": map[string]any{"type": "manual"},
			"max_concurrent_runs": 1,
			"blocks":              []any{map[string]any{"id": "nap", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "'1h'"}}}})
		for round := range 4 {
			var wg sync.WaitGroup
			codes := make([]int, 8)
			ids := make([]string, 8)
			for i := range codes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := s.Do("POST", "/api/v1/projects/ops/flows/one/runs", map[string]any{"environment": "development"})
					codes[i] = r.Status
					if r.Status == 202 {
						ids[i], _ = r.JSON(t)["id"].(string)
					}
				}()
			}
			wg.Wait()
			sort.Ints(codes)
			if fmt.Sprint(codes) != "[202 429 429 429 429 429 429 429]" {
				t.Errorf("round %d: answers %v, want one 202 and seven 429 (the limit is 1)", round, codes)
			}
			for _, id := range ids {
				if id != "" {
					s.Must(200, "POST", "/api/v1/runs/"+id+"/cancel", nil)
				}
			}
			waitFor(t, 30*time.Second, "the canceled runs to end", func() bool {
				var open int64
				s.App.DB.Table("runs").Where("flow = ? AND status IN ?", "one", []string{"queued", "running", "waiting"}).Count(&open)
				return open == 0
			})
		}
	}, func(c *app.Config) { c.RateLimit = -1 })
}

// A webhook whose sender gave up while its run was being stored (the
// database slow: here a lock on runs) is not a server error: the server
// logs it at INFO, not "request failed" at ERROR (a helper saw those
// lines by the dozen when a replica was stopped for seconds).
func TestClientGoneIsNoServerError(t *testing.T) {
	b := storetest.Backends(t)
	if len(b) < 2 {
		t.Skip("PostgreSQL only: on SQLite a run's insert does not stop with its request (store.DB.Short)")
	}
	s := serverOn(t, b[1].Config(t))
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
	s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{"name": "hook", "trigger": map[string]any{"type": "webhook"},
		"blocks": []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "'hi'"}}}})
	lock := s.App.DB.Begin()
	if err := lock.Exec("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE").Error; err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "POST", s.URL+"/hooks/ops/hook", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	waitFor(t, 30*time.Second, "the webhook's insert to wait for the lock", func() bool {
		var n int64
		s.App.DB.Raw("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(&n)
		return n > 0
	})
	cancel() // the sender gives up
	<-done
	waitFor(t, 30*time.Second, "the server to log the canceled request", func() bool {
		return strings.Contains(s.Logs.String(), "request canceled by its client")
	})
	if strings.Contains(s.Logs.String(), `request failed`) {
		t.Errorf("a sender that went away was logged as a failure:\n%s", s.Logs.String())
	}
}
