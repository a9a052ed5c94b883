package flows_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/apptest"
)

// A paused flow starts no run by any trigger, and its runs already going
// on go on; resumed, it starts runs again. The webhook's flow is cached
// by the delivery before the pause: the pause is seen all the same (each
// run's insert checks it).
func TestPausedFlowStartsNoRun(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "hook",
			"trigger": map[string]any{"type": "webhook"},
			"blocks":  []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "'got ' + input.n"}}}})
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "caller", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "call", "type": "flow", "config": map[string]any{"flow": "'hook'", "input": "({n: 1})"}}}})
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "tick",
			"trigger": map[string]any{"type": "schedule", "cron": "* * * * *"},
			"blocks":  []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "input.scheduled_at"}}}})
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "listener",
			"trigger": map[string]any{"type": "event", "topic": "orders:*"},
			"blocks":  []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "input.topic"}}}})
		runs := func(flow string) int64 {
			var n int64
			s.App.DB.Table("runs").Where("project = ? AND flow = ?", "billing", flow).Count(&n)
			return n
		}
		refused := func(r apptest.Response, what string) {
			t.Helper()
			if r.Status != 409 || !strings.Contains(string(r.Body), `"code":"flow_paused"`) || !strings.Contains(string(r.Body), `is paused (by `) {
				t.Errorf("%s of a paused flow: %d %s, want 409 flow_paused", what, r.Status, r.Body)
			}
		}
		// A delivery before the pause: its flow is cached for the next.
		if r := s.Do("POST", "/hooks/billing/hook", map[string]any{"n": 1}); r.Status != 202 {
			t.Fatalf("webhook: %d %s", r.Status, r.Body)
		}
		first := s.Must(200, "POST", "/api/v1/projects/billing/flows/hook/runs?wait=30s", map[string]any{"environment": "development", "input": map[string]any{"n": 2}})["id"].(string)

		f := s.Must(200, "POST", "/api/v1/projects/billing/flows/hook/pause", nil)
		if f["paused_at"] == nil || f["paused_by"] == "" || f["definition"] == nil {
			t.Fatalf("paused flow: %v", f)
		}
		again := s.Must(200, "POST", "/api/v1/projects/billing/flows/hook/pause", nil)
		if again["paused_at"] != f["paused_at"] {
			t.Errorf("a second pause moved paused_at: %v, then %v", f["paused_at"], again["paused_at"])
		}
		for _, fl := range s.Must(200, "GET", "/api/v1/projects/billing/flows", nil)["flows"].([]any) {
			if m := fl.(map[string]any); m["name"] == "hook" && m["paused_at"] == nil {
				t.Errorf("the flow list does not say hook is paused: %v", m)
			}
		}
		before := runs("hook")
		refused(s.Do("POST", "/hooks/billing/hook", map[string]any{"n": 3}), "a webhook")
		refused(s.Do("POST", "/api/v1/projects/billing/flows/hook/runs", map[string]any{"environment": "development"}), "an API run")
		refused(s.Do("POST", "/api/v1/runs/"+first+"/rerun", nil), "a rerun")
		parent := s.Must(200, "POST", "/api/v1/projects/billing/flows/caller/runs?wait=30s", map[string]any{"environment": "development"})
		if parent["status"] != "failed" || !strings.Contains(parent["error"].(string), "is paused") {
			t.Errorf("a sub-flow call of a paused flow: %v %v, want failed, saying the flow is paused", parent["status"], parent["error"])
		}
		if n := runs("hook"); n != before {
			t.Errorf("%d runs of the paused flow stored, want none", n-before)
		}

		s.Must(200, "POST", "/api/v1/projects/billing/flows/tick/pause", nil)
		s.Must(200, "POST", "/api/v1/projects/billing/flows/listener/pause", nil)
		tick := time.Now().UTC().Truncate(time.Minute).Add(10 * time.Minute) // a minute the real scheduler does not fire
		s.App.Flows.FireSchedules(context.Background(), tick)
		s.Must(202, "POST", "/api/v1/projects/billing/events", map[string]any{"topic": "orders:created", "environment": "development", "payload": map[string]any{}})
		if n, m := runs("tick"), runs("listener"); n != 0 || m != 0 {
			t.Errorf("paused flows ran: %d schedule runs, %d event runs", n, m)
		}

		for _, name := range []string{"hook", "tick", "listener"} {
			if r := s.Must(200, "POST", "/api/v1/projects/billing/flows/"+name+"/resume", nil); r["paused_at"] != nil {
				t.Errorf("resumed flow %s: %v", name, r)
			}
		}
		if r := s.Do("POST", "/hooks/billing/hook", map[string]any{"n": 4}); r.Status != 202 {
			t.Errorf("webhook after resume: %d %s", r.Status, r.Body)
		}
		s.Must(202, "POST", "/api/v1/projects/billing/flows/hook/runs", map[string]any{"environment": "development"})
		s.App.Flows.FireSchedules(context.Background(), tick.Add(time.Minute))
		if n := runs("tick"); n != 1 {
			t.Errorf("%d schedule runs after resume, want 1 (the missed tick is not fired)", n)
		}
		if r := s.Do("POST", "/api/v1/projects/billing/flows/nope/pause", nil); r.Status != 404 {
			t.Errorf("pause of no such flow: %d %s", r.Status, r.Body)
		}
	})
}

// Pausing a flow that receives webhooks all the time: every delivery
// sent after the pause's answer is refused, the runs stored are exactly
// those answered 202 (none refused and stored, none accepted and lost),
// and the flow can then be deleted while deliveries go on.
func TestPauseUnderLoad(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{"name": "steady", "trigger": map[string]any{"type": "webhook"},
			"blocks": []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "'n ' + input.n"}}}})
		type answer struct {
			sent   time.Time
			status int
		}
		var (
			mu      sync.Mutex
			answers []answer
			stop    atomic.Bool
			wg      sync.WaitGroup
		)
		accepted := make(chan struct{}, 1)
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; !stop.Load(); i++ {
					sent := time.Now()
					r := s.Do("POST", "/hooks/ops/steady", map[string]any{"n": i})
					mu.Lock()
					answers = append(answers, answer{sent, r.Status})
					mu.Unlock()
					if r.Status == 202 {
						select {
						case accepted <- struct{}{}:
						default:
						}
					}
				}
			}()
		}
		<-accepted // deliveries go through before the pause
		s.Must(200, "POST", "/api/v1/projects/ops/flows/steady/pause", nil)
		paused := time.Now()
		waitFor(t, 30*time.Second, "deliveries refused after the pause", func() bool {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, a := range answers {
				if a.sent.After(paused) {
					n++
				}
			}
			return n >= 20
		})
		var stored int64
		s.App.DB.Table("runs").Where("flow = ?", "steady").Count(&stored)
		// Paused, the flow can be deleted while deliveries keep coming
		// (before, a flow that kept receiving webhooks was rarely without
		// an open run): once its runs have ended.
		waitFor(t, 30*time.Second, "the paused flow's runs to end", func() bool {
			var open int64
			s.App.DB.Table("runs").Where("flow = ? AND status IN ?", "steady", []string{"queued", "running", "waiting"}).Count(&open)
			return open == 0
		})
		if r := s.Do("DELETE", "/api/v1/projects/ops/flows/steady", nil); r.Status != 204 {
			t.Errorf("delete of the paused flow under load: %d %s", r.Status, r.Body)
		}
		deleted := time.Now()
		stop.Store(true)
		wg.Wait()
		ok := 0
		for _, a := range answers {
			switch {
			case a.status == 202:
				ok++
				if a.sent.After(paused) {
					t.Errorf("a delivery sent %s after the pause was accepted", a.sent.Sub(paused))
				}
			case a.status == 404 && a.sent.After(paused): // the flow was deleted
			case a.status != 409:
				t.Errorf("a delivery answered %d", a.status)
			}
		}
		if int(stored) != ok {
			t.Errorf("%d runs stored, %d deliveries accepted", stored, ok)
		}
		t.Logf("%d deliveries, %d accepted before the pause, deleted %s after it", len(answers), ok, deleted.Sub(paused).Round(time.Millisecond))
	})
}
