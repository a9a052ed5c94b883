package flows_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
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

// TestCanceledCallerQueuesNoRun: a run's insert no longer carries the
// caller's cancellation into the database driver (on SQLite that cost a
// goroutine per run), so a caller already gone (a webhook sender that
// hung up) is checked for first: it queues nothing.
func TestCanceledCallerQueuesNoRun(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "gone"})
		s.Must(201, "POST", "/api/v1/projects/gone/flows", map[string]any{
			"name": "f", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "a", "type": "code", "config": map[string]any{"code": "return 1"}}},
		})
		s.Must(201, "POST", "/api/v1/projects/gone/flows", map[string]any{
			"name": "hook", "trigger": map[string]any{"type": "webhook"},
			"blocks": []any{map[string]any{"id": "a", "type": "code", "config": map[string]any{"code": "return 1"}}},
		})
		// Callers still there first: what the enqueue remembers (known
		// environments, the flow's count of open runs) is then warm, and
		// nothing before the insert itself reads the database.
		if _, err := s.App.Flows.Enqueue(context.Background(), flows.RunRequest{Project: "gone", Flow: "f", Environment: "development"}); err != nil {
			t.Fatal(err)
		}
		s.Must(202, "POST", "/hooks/gone/hook", map[string]any{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if r, err := s.App.Flows.Enqueue(ctx, flows.RunRequest{Project: "gone", Flow: "f", Environment: "development"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("enqueue for a caller gone: %v, %v; want context.Canceled", r, err)
		}
		// A webhook delivery whose sender hung up (its flow is looked up
		// without the request's cancellation on SQLite).
		if r, err := s.App.Flows.Webhook(ctx, "gone", "hook", http.Header{}, []byte(`{}`)); !errors.Is(err, context.Canceled) {
			t.Fatalf("webhook for a sender gone: %v, %v; want context.Canceled", r, err)
		}
		if got := s.Must(200, "GET", "/api/v1/projects/gone/runs", nil); len(got["runs"].([]any)) != 2 {
			t.Fatalf("want only the 2 runs of callers still there: %v", got)
		}
	})
}

// A run canceled while a worker runs it ends with who canceled it, as a
// queued one does ("canceled by admin"), in the run and in its
// run_finished event; before, the running one said only "canceled".
func TestCancelSaysWho(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		arrived := make(chan struct{}, 1)
		peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			<-r.Context().Done() // until the run's cancel ends the request
		}))
		defer peer.Close()
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "who"})
		s.Must(201, "POST", "/api/v1/projects/who/flows", map[string]any{
			"name": "slow", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"PEER": peer.URL},
			"blocks": []any{map[string]any{"id": "call", "type": "http", "config": map[string]any{"url": "env.PEER"}}},
		})
		actor := s.Must(200, "GET", "/api/v1/whoami", nil)["name"]
		want := fmt.Sprint("canceled by ", actor)
		run := s.Must(202, "POST", "/api/v1/projects/who/flows/slow/runs", map[string]any{"environment": "development"})
		id := run["id"].(string)
		<-arrived
		if got := s.Must(200, "GET", "/api/v1/runs/"+id, nil); got["status"] != "running" {
			t.Fatalf("run before the cancel: %v", got)
		}
		s.Must(200, "POST", "/api/v1/runs/"+id+"/cancel", nil)
		var got map[string]any
		waitFor(t, time.Minute, "the canceled run to end", func() bool {
			got = s.Must(200, "GET", "/api/v1/runs/"+id, nil)
			return got["status"] == "canceled"
		})
		if got["error"] != want {
			t.Errorf("running run canceled: error %q, want %q", got["error"], want)
		}
		if d := eventData(events(t, s, id), "run_finished", ""); d["error"] != want {
			t.Errorf("run_finished of the running run: %v", d)
		}
		// The block the cancel stopped says so, not "context canceled".
		if d := eventData(events(t, s, id), "block_failed", "call"); d["error"] != want || d["canceled"] != true {
			t.Errorf("block_failed of the canceled block: %v", d)
		}
		// One canceled while it waits (a delay) ends at once, the same way.
		s.Must(200, "PUT", "/api/v1/projects/who/flows/slow", map[string]any{
			"name": "slow", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "d", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "'1h'"}}},
		})
		waiting := s.Must(202, "POST", "/api/v1/projects/who/flows/slow/runs", map[string]any{"environment": "development"})["id"].(string)
		waitFor(t, time.Minute, "the run to wait", func() bool {
			return s.Must(200, "GET", "/api/v1/runs/"+waiting, nil)["status"] == "waiting"
		})
		if c := s.Must(200, "POST", "/api/v1/runs/"+waiting+"/cancel", nil); c["status"] != "canceled" || c["error"] != want {
			t.Errorf("waiting run canceled: %v", c)
		}
	})
}

// Paging parameters given wrong are refused, naming the rule; before, a
// cursor that is no run id gave the first page and after=abc every
// event, in silence.
func TestBadPagingRefused(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "pg"})
		s.Must(201, "POST", "/api/v1/projects/pg/flows", map[string]any{"name": "f", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "a", "type": "code", "config": map[string]any{"code": "return 1"}}}})
		id := s.Must(200, "POST", "/api/v1/projects/pg/flows/f/runs?wait=30s", map[string]any{"environment": "development"})["id"].(string)
		for path, want := range map[string]string{
			"/api/v1/projects/pg/runs?cursor=garbage":  "cursor must be the next_cursor of an earlier page",
			"/api/v1/runs/" + id + "/events?after=abc": "after must be a whole number",
			"/api/v1/runs/" + id + "/events?after=-1":  "after must be a whole number",
		} {
			if r := s.Do("GET", path, nil); r.Status != 400 || !strings.Contains(string(r.Body), want) {
				t.Errorf("GET %s: %d %s", path, r.Status, r.Body)
			}
		}
		if r := s.Must(200, "GET", "/api/v1/projects/pg/runs?cursor="+id, nil); len(r["runs"].([]any)) != 0 {
			t.Errorf("the page after the only run: %v", r)
		}
		if r := s.Must(200, "GET", "/api/v1/runs/"+id+"/events?after=2", nil); len(r["events"].([]any)) == 0 {
			t.Errorf("events after 2: %v", r)
		}
	})
}

// A run's events come in pages of 1,000 with "more" while others follow;
// paging with after gives each event once, in order. Before, nothing told
// a full page from the last one.
func TestEventPagesSayMore(t *testing.T) {
	apptest.SkipShort(t)
	s := apptest.Start(t, storetest.SQLiteConfig(t))
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "many"})
	s.Must(201, "POST", "/api/v1/projects/many/flows", map[string]any{"name": "loop", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{map[string]any{"id": "each", "type": "code", "each": "Array.from({length: 600}, (_, i) => i)",
			"config": map[string]any{"code": "return item"}}}})
	id := s.Must(200, "POST", "/api/v1/projects/many/flows/loop/runs?wait=120s", map[string]any{"environment": "development"})["id"].(string)
	after, total, pages := 0, 0, 0
	for {
		page := s.Must(200, "GET", fmt.Sprintf("/api/v1/runs/%s/events?after=%d", id, after), nil)
		evs := page["events"].([]any)
		pages++
		for _, e := range evs {
			seq := int(e.(map[string]any)["seq"].(float64))
			if seq <= after {
				t.Fatalf("page %d: seq %d after %d", pages, seq, after)
			}
			after = seq
			total++
		}
		if page["more"] != true {
			break
		}
		if pages > 10 {
			t.Fatal("more pages than events")
		}
	}
	if pages < 2 || total < 1001 {
		t.Fatalf("%d events in %d pages", total, pages)
	}
}
