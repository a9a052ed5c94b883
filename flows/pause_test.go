package flows_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
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
		// The webhook's sender, who needs no token, is not told who
		// paused the flow.
		if r := s.Do("POST", "/hooks/billing/hook", map[string]any{"n": 3}); r.Status != 409 ||
			!strings.Contains(string(r.Body), `{"code":"flow_paused","message":"this flow is paused: it starts no run until it is resumed",`) {
			t.Errorf("a webhook of a paused flow: %d %s", r.Status, r.Body)
		}
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

		s.App.Flows.FireSchedules(context.Background(), tick.Add(10*time.Second)) // the scheduler's next second: still paused
		for _, name := range []string{"hook", "tick", "listener"} {
			if r := s.Must(200, "POST", "/api/v1/projects/billing/flows/"+name+"/resume", nil); r["paused_at"] != nil || r["paused_by"] != nil ||
				r["resumed_at"] == nil || r["resumed_by"] != f["paused_by"] {
				t.Errorf("resumed flow %s: %v", name, r)
			}
		}
		if r := s.Do("POST", "/hooks/billing/hook", map[string]any{"n": 4}); r.Status != 202 {
			t.Errorf("webhook after resume: %d %s", r.Status, r.Body)
		}
		s.Must(202, "POST", "/api/v1/projects/billing/flows/hook/runs", map[string]any{"environment": "development"})
		// The tick that passed while the flow was paused is not fired by
		// the scheduler's next look within its minute; the next tick is.
		s.App.Flows.FireSchedules(context.Background(), tick.Add(20*time.Second))
		if n := runs("tick"); n != 0 {
			t.Errorf("%d schedule runs right after resume, want none (the tick passed while paused)", n)
		}
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

// A pause races what reads the flow before it: a save of a new version
// (which read the row, then wrote it whole, and undid a pause committed
// in between: a quarter of the trials on PostgreSQL), and deliveries and
// events while the flow is paused and resumed back to back (an event
// was refused although some of its runs were queued; a delivery whose
// insert found the flow paused, resumed by the time it looked again,
// answered 500): deliveries are accepted or refused as paused, events
// accepted.
func TestPauseRaces(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		def := func(msg string) map[string]any {
			return map[string]any{"name": "busy", "trigger": map[string]any{"type": "webhook"},
				"blocks": []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "'" + msg + "'"}}}}
		}
		s.Must(201, "POST", "/api/v1/projects/ops/flows", def("v0"))
		for i := range 40 {
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				s.Must(200, "PUT", "/api/v1/projects/ops/flows/busy", def(fmt.Sprintf("v%d", i+1)))
			}()
			go func() { defer wg.Done(); s.Must(200, "POST", "/api/v1/projects/ops/flows/busy/pause", nil) }()
			wg.Wait()
			if f := s.Must(200, "GET", "/api/v1/projects/ops/flows/busy", nil); f["paused_at"] == nil {
				t.Fatalf("trial %d: the pause answered 200, and a save at the same moment undid it", i)
			}
			s.Must(200, "POST", "/api/v1/projects/ops/flows/busy/resume", nil)
		}

		for i := range 3 {
			s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{"name": fmt.Sprintf("on-%d", i),
				"trigger": map[string]any{"type": "event", "topic": "orders:*"},
				"blocks":  []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "input.topic"}}}})
		}
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				verb := []string{"pause", "resume"}[i%2]
				s.Must(200, "POST", "/api/v1/projects/ops/flows/busy/"+verb, nil)
				s.Must(200, "POST", "/api/v1/projects/ops/flows/on-1/"+verb, nil)
			}
		}()
		answers := map[string]int{}
		var mu sync.Mutex
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 60; i++ {
					var r apptest.Response
					if g%2 == 0 {
						r = s.Do("POST", "/hooks/ops/busy", map[string]any{"n": i})
					} else {
						r = s.Do("POST", "/api/v1/projects/ops/events", map[string]any{"topic": "orders:new", "environment": "development"})
					}
					mu.Lock()
					answers[fmt.Sprintf("%s %d", []string{"webhook", "event"}[g%2], r.Status)]++
					mu.Unlock()
					if r.Status != 202 && (g%2 == 1 || r.Status != 409) {
						t.Errorf("%s answered %d %s", []string{"a webhook", "an event"}[g%2], r.Status, r.Body)
					}
				}
			}()
		}
		for !func() bool {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, v := range answers {
				n += v
			}
			return n >= 240
		}() {
			runtime.Gosched()
		}
		stop.Store(true)
		wg.Wait()
		t.Logf("answers while pausing and resuming: %v", answers)
	}, func(c *app.Config) { c.RateLimit = -1 })
}
