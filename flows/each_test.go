package flows_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// Blocks with each (issue 19 item 1).

// gate is a local service that holds each request until `batch` requests
// wait together, or until all `total` requests arrived: a block whose
// iterations do not run `batch` at a time never gets an answer. It
// records the largest number of requests in its handler at once.
type gate struct {
	*httptest.Server
	batch, total int

	mu      sync.Mutex // guards arrived, waiting and open
	arrived int
	waiting int
	open    chan struct{}

	inflight, maxInflight atomic.Int64
}

func newGate(t *testing.T, batch, total int) *gate {
	g := &gate{batch: batch, total: total, open: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := g.inflight.Add(1)
		defer g.inflight.Add(-1)
		for {
			m := g.maxInflight.Load()
			if n <= m || g.maxInflight.CompareAndSwap(m, n) {
				break
			}
		}
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		g.arrived++
		g.waiting++
		open := g.open
		if g.waiting == g.batch || g.arrived == g.total {
			close(g.open)
			g.open, g.waiting = make(chan struct{}), 0
		}
		g.mu.Unlock()
		select {
		case <-open:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"got":%s}`, body)
	}))
	t.Cleanup(g.Close)
	return g
}

// A block with each over 100 items and concurrency 10 sends 100 requests,
// never more than 10 at once (and 10 at once, or the gate would hold them
// for ever), and its output is the 100 responses in input order.
func TestEachConcurrency(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		const n = 100
		g := newGate(t, 10, n)
		items := make([]any, n)
		for i := range items {
			items[i] = map[string]any{"n": i}
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "fanout", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"BASE": g.URL},
			"blocks": []any{
				map[string]any{"id": "post", "type": "http", "each": "input.items", "concurrency": 10,
					"config": map[string]any{"method": "'POST'", "url": "`${env.BASE}/items/${index}`", "body": "({n: item.n, index})"}},
			},
		})
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/fanout/runs?wait=120s",
			map[string]any{"environment": "development", "input": map[string]any{"items": items}})
		if run["status"] != "succeeded" {
			t.Fatalf("run: %v", run)
		}
		g.mu.Lock()
		arrived := g.arrived
		g.mu.Unlock()
		if arrived != n {
			t.Errorf("%d requests, want %d", arrived, n)
		}
		if m := g.maxInflight.Load(); m != 10 {
			t.Errorf("at most %d requests at once, want 10", m)
		}
		out, _ := run["output"].([]any)
		if len(out) != n {
			t.Fatalf("output has %d entries: %v", len(out), run["output"])
		}
		for i, o := range out {
			got := o.(map[string]any)["body"].(map[string]any)["got"].(map[string]any)
			if got["n"] != float64(i) || got["index"] != float64(i) {
				t.Fatalf("output[%d] is the response to %v", i, got)
			}
		}
		evs := events(t, s, run["id"].(string))
		checkSequence(t, run["id"].(string), evs)
		counts := map[string]int{}
		seen := map[float64]bool{}
		for _, e := range evs {
			counts[e["type"].(string)]++
			if e["type"] == "http_request" {
				seen[e["data"].(map[string]any)["index"].(float64)] = true
			}
		}
		if counts["block_started"] != 1 || counts["block_finished"] != 1 || counts["iteration_started"] != n || counts["iteration_finished"] != n || len(seen) != n {
			t.Errorf("events: %v, http_request indexes %d", counts, len(seen))
		}
		if d := eventData(evs, "block_started", "post"); d["items"] != float64(n) || d["concurrency"] != float64(10) {
			t.Errorf("block_started: %v", d)
		}
	})
}

// eachFailFlow runs a code block over four items; the second throws an
// error that holds a secret's value, the fourth is skipped by its if.
func eachFailFlow(name string, cont bool) map[string]any {
	return map[string]any{
		"name": name, "trigger": map[string]any{"type": "manual"},
		"blocks": []any{
			map[string]any{"id": "loop", "type": "code", "each": "[1, 2, 3, 4]", "if": "index != 3", "continue_on_error": cont, "retry": map[string]any{"attempts": 2},
				"config": map[string]any{"code": "if (item == 2) throw new Error('bad ' + secrets.API_TOKEN); return {n: item * 10, index}"}},
		},
	}
}

// An iteration that fails (after its retries) fails the block and the
// run; with continue_on_error its entry is the error, redacted, and the
// run succeeds. The secret never shows in the output, events, database or
// log.
func TestEachFailure(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", eachFailFlow("strict", false))
		s.Must(201, "POST", "/api/v1/projects/billing/flows", eachFailFlow("tolerant", true))

		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/strict/runs?wait=60s", map[string]any{"environment": "development"})
		errText, _ := run["error"].(string)
		if run["status"] != "failed" || !strings.HasPrefix(errText, `block "loop": item 1: `) || !strings.Contains(errText, "bad [REDACTED:API_TOKEN]") {
			t.Fatalf("strict run: %v", run)
		}
		evs := events(t, s, run["id"].(string))
		if d := eventData(evs, "iteration_retry", "loop"); d["index"] != float64(1) {
			t.Errorf("iteration_retry: %v", d)
		}
		if d := eventData(evs, "block_failed", "loop"); d["index"] != float64(1) || !strings.Contains(d["error"].(string), "[REDACTED:API_TOKEN]") {
			t.Errorf("block_failed: %v", d)
		}
		if types := eventTypes(evs); strings.Count(types, "iteration_started:loop") != 2 {
			t.Errorf("iterations after the failure: %s", types)
		}
		texts := map[string]string{"strict run": mustJSON(run), "strict events": mustJSON(evs)}

		run = s.Must(200, "POST", "/api/v1/projects/billing/flows/tolerant/runs?wait=60s", map[string]any{"environment": "development"})
		if run["status"] != "succeeded" {
			t.Fatalf("tolerant run: %v", run)
		}
		out, _ := run["output"].([]any)
		if len(out) != 4 || mustJSON(out[0]) != `{"index":0,"n":10}` || mustJSON(out[2]) != `{"index":2,"n":30}` || out[3] != nil {
			t.Fatalf("output %v", run["output"])
		}
		failed, _ := out[1].(map[string]any)
		if failed["failed"] != true || !strings.HasSuffix(failed["error"].(string), "Error: bad [REDACTED:API_TOKEN]") || len(failed) != 2 {
			t.Fatalf("output[1] %v", out[1])
		}
		evs = events(t, s, run["id"].(string))
		if d := eventData(evs, "iteration_failed", "loop"); d["index"] != float64(1) || d["continued"] != true {
			t.Errorf("iteration_failed: %v", d)
		}
		if d := eventData(evs, "iteration_skipped", "loop"); d["index"] != float64(3) {
			t.Errorf("iteration_skipped: %v", d)
		}
		if d := eventData(evs, "block_finished", "loop"); d["items"] != float64(4) {
			t.Errorf("block_finished: %v", d)
		}
		texts["tolerant run"], texts["tolerant events"] = mustJSON(run), mustJSON(evs)
		texts["database"], texts["server log"] = apptest.DumpTables(t, s.App.DB), s.Logs.String()
		for name, text := range texts {
			apptest.AssertAbsent(t, name, text, canaryToken)
		}
	})
}

// More items than the block's max_items, or than the server's limit,
// fail the block before any iteration, naming the block, the count and
// the limit.
func TestEachItemLimit(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		flow := func(name string, maxItems int) map[string]any {
			b := map[string]any{"id": "loop", "type": "code", "each": "input.items", "config": map[string]any{"code": "return item"}}
			if maxItems > 0 {
				b["max_items"] = maxItems
			}
			return map[string]any{"name": name, "trigger": map[string]any{"type": "manual"}, "blocks": []any{b}}
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("small", 2))
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("big", 0))
		items := make([]int, 1001)
		for name, want := range map[string]string{
			"small": `block "loop": each gave 1001 items, over the limit of 2 (the block's max_items)`,
			"big":   `block "loop": each gave 1001 items, over the limit of 1000 (the server's limit, HUSHFLOW_MAX_EACH_ITEMS)`,
		} {
			run := s.Must(200, "POST", "/api/v1/projects/billing/flows/"+name+"/runs?wait=60s",
				map[string]any{"environment": "development", "input": map[string]any{"items": items}})
			if run["status"] != "failed" || run["error"] != want {
				t.Errorf("%s: %v", name, run)
			}
			if strings.Contains(eventTypes(events(t, s, run["id"].(string))), "iteration_") {
				t.Errorf("%s: an iteration ran", name)
			}
		}
	})
}

// Saving refuses a bad each, concurrency or max_items, item or index in
// the condition or a field of a block without each (a script that binds
// the name itself is left alone), and in each itself.
func TestEachValidation(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		bad := map[string]any{
			"name": "bad", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "a", "type": "log", "each": "input.items.", "config": map[string]any{"message": "'a'"}},
				map[string]any{"id": "b", "type": "log", "each": "[1]", "concurrency": 51, "max_items": -1, "if": "index > 0 && item != nil",
					"config": map[string]any{"message": "`${item}`"}},
				map[string]any{"id": "c", "type": "log", "if": "index > 0", "concurrency": 2, "config": map[string]any{"message": "'c'"}},
				map[string]any{"id": "d", "type": "log", "each": "steps.e.output", "config": map[string]any{"message": "'d'"}},
				map[string]any{"id": "e", "type": "log", "config": map[string]any{"message": "'e'"}},
				map[string]any{"id": "f", "type": "log", "config": map[string]any{"message": "`${item.name}`"}},
				map[string]any{"id": "g", "type": "code", "config": map[string]any{"code": "const item = 1; return [1].map(index => item + index)"}},
				map[string]any{"id": "h", "type": "log", "each": "[index]", "config": map[string]any{"message": "'h'"}},
			},
		}
		r := s.Do("POST", "/api/v1/projects/billing/flows", bad)
		if r.Status != 400 {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		probs := r.JSON(t)["error"].(map[string]any)["problems"].([]any)
		text := mustJSON(probs)
		for _, want := range []string{
			`"block":"a","column":`,
			`"block":"b","field":"concurrency","message":"concurrency must be 1 to 50"`,
			`"block":"b","field":"max_items","message":"max_items must be 1 to 100000"`,
			`"block":"c","column":1,"field":"if","line":1,"message":"item and index are defined only in a block with each"`,
			`"block":"c","field":"concurrency","message":"concurrency applies only to a block with each"`,
			`"block":"d","field":"each","message":"steps.e is not an earlier block"`,
			`"block":"f","field":"message","message":"item and index are defined only in a block with each"`,
			`"block":"h","field":"each","message":"item and index are not defined in each itself, which gives the items"`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("problems lack %s:\n%s", want, text)
			}
		}
		if len(probs) != 8 {
			t.Errorf("%d problems: %s", len(probs), text)
		}
		var p []map[string]any
		_ = json.Unmarshal([]byte(text), &p)
		if p[0]["field"] != "each" {
			t.Errorf("first problem: %v", p[0])
		}
	})
}

// A run interrupted in the middle of a loop (its replica stops while the
// fourth iteration's request is in flight) resumes without repeating the
// iterations that finished: each has its checkpoint. The interrupted one,
// a GET, runs again; the output is every response in input order.
func TestEachResumesAfterFinishedIterations(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			dbc := b.Config(t)
			fx := newEffects(t, "/slow")
			grace := func(c *app.Config) { c.ShutdownGrace = 100 * time.Millisecond }
			s := serverOn(t, dbc, grace)
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "shop"})
			paths := []string{"a", "b", "c", "slow", "d", "e"}
			s.Must(201, "POST", "/api/v1/projects/shop/flows", map[string]any{
				"name": "loop", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"FX": fx.URL},
				"blocks": []any{
					map[string]any{"id": "first", "type": "code", "config": map[string]any{"code": "return input.paths"}},
					map[string]any{"id": "get", "type": "http", "each": "steps.first.output",
						"config": map[string]any{"url": "`${env.FX}/${item}?run=${run.id}`"}},
				},
			})
			id := s.Must(202, "POST", "/api/v1/projects/shop/flows/loop/runs",
				map[string]any{"environment": "development", "input": map[string]any{"paths": paths}})["id"].(string)
			select {
			case <-fx.arrived:
			case <-time.After(30 * time.Second):
				t.Fatal("the request did not arrive")
			}
			s.Stop() // the fourth iteration's request is in flight

			close(fx.release)
			s = serverOn(t, dbc, grace)
			r := waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool {
				return r["status"] == "succeeded" || r["status"] == "failed"
			})
			if r["status"] != "succeeded" {
				t.Fatalf("run: %v", r)
			}
			for _, p := range paths {
				want := 1
				if p == "slow" {
					want = 2
				}
				if n := fx.count("/"+p, id); n != want {
					t.Errorf("/%s: %d requests, want %d", p, n, want)
				}
			}
			out, _ := r["output"].([]any)
			if len(out) != len(paths) {
				t.Fatalf("output %v", r["output"])
			}
			for i, o := range out {
				if got := o.(map[string]any)["body"].(map[string]any)["path"]; got != "/"+paths[i] {
					t.Errorf("output[%d] is the response of %v", i, got)
				}
			}
			evs := events(t, s, id)
			checkSequence(t, id, evs)
			if d := eventData(evs, "iteration_interrupted", "get"); d["index"] != float64(3) {
				t.Errorf("iteration_interrupted: %v", d)
			}
			// The block's own events close too, before the run is released.
			if d := eventData(evs, "block_interrupted", "get"); d["interrupted"] != true || d["items"] != float64(len(paths)) || d["index"] != nil {
				t.Errorf("block_interrupted: %v", d)
			}
			if types := eventTypes(evs); !strings.Contains(types, "iteration_interrupted:get block_interrupted:get run_released:") {
				t.Errorf("events %s", types)
			}
			var restored any
			for _, e := range evs {
				if e["type"] == "block_started" && e["block"] == "get" {
					restored = e["data"].(map[string]any)["restored"]
				}
			}
			if restored != float64(3) {
				t.Errorf("the resumed block_started says restored %v, want 3", restored)
			}
		})
	}
}

// The secret reads of a loop are audited per iteration: one record per
// iteration that read it, naming block[index].
func TestEachAuditsPerIteration(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "audited", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "loop", "type": "code", "each": "[1, 2, 3]", "concurrency": 3,
					"config": map[string]any{"code": "return secrets.API_TOKEN.length + item"}},
			},
		})
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/audited/runs?wait=30s", map[string]any{"environment": "development"})
		if run["status"] != "succeeded" {
			t.Fatalf("run: %v", run)
		}
		var blocks []string
		if err := s.App.DB.Table("secret_audit").Where("run_id = ? AND secret_name = ?", run["id"], "API_TOKEN").Order("block_id").Pluck("block_id", &blocks).Error; err != nil {
			t.Fatal(err)
		}
		if strings.Join(blocks, ",") != "loop[0],loop[1],loop[2]" {
			t.Errorf("audit records by block: %v", blocks)
		}
	})
}

// An each expression that throws fails the block with an error that names
// the block once, the field and the position.
func TestEachExpressionError(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "each-throws", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "loop", "type": "log", "each": "input.missing.items", "config": map[string]any{"message": "'x'"}}},
		})
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/each-throws/runs?wait=30s", map[string]any{"environment": "development"})
		msg, _ := run["error"].(string)
		if run["status"] != "failed" || strings.Count(msg, `block "loop"`) != 1 || !strings.HasPrefix(msg, `block "loop" field "each" 1:`) || !strings.Contains(msg, "TypeError") {
			t.Errorf("error %q", msg)
		}
		// Not an array: the error names the JavaScript type, not Go's.
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "each-number", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "loop", "type": "log", "each": "input.n", "config": map[string]any{"message": "'x'"}}},
		})
		for _, n := range []any{5, 5.5} {
			run = s.Must(200, "POST", "/api/v1/projects/billing/flows/each-number/runs?wait=30s", map[string]any{"environment": "development", "input": map[string]any{"n": n}})
			if msg, _ := run["error"].(string); run["status"] != "failed" || !strings.HasSuffix(msg, "each must give an array, not a number") {
				t.Errorf("n=%v: error %q", n, msg)
			}
		}
	})
}

// A run canceled while a loop's iterations wait on their requests ends
// the block's events as it ends a block's: each running iteration has its
// iteration_failed, and the block its one block_failed (canceled, who
// asked, no index) before run_finished. A block with each used to end on
// its iterations' events alone, its block_started left open.
func TestEachCanceled(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		g := newGate(t, 100, 100) // never opens for four items
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "stuck", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"BASE": g.URL},
			"blocks": []any{
				map[string]any{"id": "post", "type": "http", "each": "[1, 2, 3, 4]", "concurrency": 2,
					"config": map[string]any{"method": "'POST'", "url": "`${env.BASE}/items/${index}`", "body": "({n: item})"}},
			},
		})
		id := s.Must(202, "POST", "/api/v1/projects/billing/flows/stuck/runs", map[string]any{"environment": "development"})["id"].(string)
		waitFor(t, 30*time.Second, "two iterations' requests", func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return g.arrived == 2
		})
		s.Must(200, "POST", "/api/v1/runs/"+id+"/cancel", nil)
		r := waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool { return r["status"] == "canceled" })
		evs := events(t, s, id)
		checkSequence(t, id, evs)
		var iterFailed, blockFailed int
		for _, e := range evs {
			d, _ := e["data"].(map[string]any)
			switch e["type"] {
			case "iteration_failed":
				iterFailed++
				if d["canceled"] != true || d["index"] == nil {
					t.Errorf("iteration_failed: %v", d)
				}
			case "block_failed":
				blockFailed++
				if d["canceled"] != true || d["index"] != nil || d["items"] != float64(4) || !strings.Contains(fmt.Sprint(d["error"]), "canceled") {
					t.Errorf("block_failed: %v", d)
				}
			case "block_interrupted", "block_finished":
				t.Errorf("%s: %v", e["type"], d)
			}
		}
		if iterFailed != 2 || blockFailed != 1 {
			t.Errorf("%d iteration_failed and %d block_failed, want 2 and 1: %s", iterFailed, blockFailed, eventTypes(evs))
		}
		types := eventTypes(evs)
		if !strings.HasSuffix(types, "block_failed:post run_finished:") {
			t.Errorf("events end %s, want block_failed:post run_finished:", types)
		}
		if r["status"] != "canceled" {
			t.Errorf("run: %v", r)
		}
	})
}
