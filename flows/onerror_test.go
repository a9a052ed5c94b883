package flows_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// Error handling in flows (issue 19 item 4): continue_on_error and the
// on_error handler.

// collector is a local service that keeps the body of every request by
// path, and drops the connection of a request to /drop without an answer
// (a failure of the http block, not a status).
type collector struct {
	*httptest.Server
	mu     sync.Mutex // guards bodies
	bodies map[string][]string
}

func newCollector(t *testing.T) *collector {
	c := &collector{bodies: map[string][]string{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.bodies[r.URL.Path] = append(c.bodies[r.URL.Path], string(body))
		c.mu.Unlock()
		if r.URL.Path == "/drop" {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.(*net.TCPConn).SetLinger(0)
				conn.Close()
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(c.Close)
	return c
}

// received is what path received, one body per request.
func (c *collector) received(path string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bodies[path]...)
}

func eventData(evs []map[string]any, typ, block string) map[string]any {
	for _, e := range evs {
		if b, _ := e["block"].(string); e["type"] == typ && b == block {
			d, _ := e["data"].(map[string]any)
			return d
		}
	}
	return nil
}

// A block with continue_on_error that fails for good (an http request
// whose connection drops, a code block that throws) does not fail the
// run: its output is {error, failed: true}, with the error redacted even
// inside the run, and later blocks and their conditions read it.
func TestContinueOnError(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		col := newCollector(t)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "tolerant", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"BASE": col.URL},
			"blocks": []any{
				map[string]any{"id": "call", "type": "http", "continue_on_error": true,
					"config": map[string]any{"url": "`${env.BASE}/drop?token=${secrets.API_TOKEN}`"}},
				map[string]any{"id": "boom", "type": "code", "continue_on_error": true, "retry": map[string]any{"attempts": 2},
					"config": map[string]any{"code": "throw new Error('bad ' + secrets.API_TOKEN)"}},
				map[string]any{"id": "report", "type": "http", "if": `steps.call.output.failed && steps.boom.output.error contains "bad"`,
					"config": map[string]any{"method": "'POST'", "url": "`${env.BASE}/report`",
						"body": "({call: steps.call.output, boom: steps.boom.output})"}},
				map[string]any{"id": "last", "type": "code", "config": map[string]any{"code": "return steps.boom.output"}},
			},
		})
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/tolerant/runs?wait=60s", map[string]any{"environment": "development"})
		if run["status"] != "succeeded" {
			t.Fatalf("run: %v", run)
		}
		// The run's output is the last block's: the continued block's
		// output as documented.
		out, _ := run["output"].(map[string]any)
		if out["failed"] != true || !strings.HasSuffix(out["error"].(string), "Error: bad [REDACTED:API_TOKEN]") || len(out) != 2 {
			t.Fatalf("output %v", out)
		}
		// What the report block sent holds the errors, redacted inside
		// the run too.
		got := col.received("/report")
		if len(got) != 1 {
			t.Fatalf("report received %d requests", len(got))
		}
		var sent struct{ Call, Boom map[string]any }
		if err := json.Unmarshal([]byte(got[0]), &sent); err != nil {
			t.Fatal(err)
		}
		// (The http block's error leaves the query out: the token is not
		// there to mask; the code block's error holds it.)
		if sent.Call["failed"] != true || !strings.Contains(sent.Call["error"].(string), "/drop") || sent.Boom["failed"] != true ||
			!strings.Contains(sent.Boom["error"].(string), "bad [REDACTED:API_TOKEN]") {
			t.Fatalf("report received %s", got[0])
		}
		apptest.AssertAbsent(t, "report request", got[0], canaryToken)

		id := run["id"].(string)
		evs := events(t, s, id)
		checkSequence(t, id, evs)
		types := eventTypes(evs)
		for _, want := range []string{"block_failed:call", "block_retry:boom", "block_failed:boom", "block_finished:report", "block_finished:last", "run_finished:"} {
			if !strings.Contains(types, want) {
				t.Errorf("events lack %s: %s", want, types)
			}
		}
		for _, b := range []string{"call", "boom"} {
			if d := eventData(evs, "block_failed", b); d["continued"] != true {
				t.Errorf("block_failed:%s: %v", b, d)
			}
		}
		for name, text := range map[string]string{"run": mustJSON(run), "events": mustJSON(evs),
			"database": apptest.DumpTables(t, s.App.DB), "server log": s.Logs.String()} {
			apptest.AssertAbsent(t, name, text, canaryToken)
		}
	})
}

// onErrorFlow fails in block "boom" with an error holding a secret's
// value; its on_error handler posts error and failed_block to base.
func onErrorFlow(name, base string, handler ...any) map[string]any {
	return map[string]any{
		"name": name, "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"BASE": base},
		"blocks": []any{
			map[string]any{"id": "first", "type": "code", "config": map[string]any{"code": "return {n: 1}"}},
			map[string]any{"id": "boom", "type": "code", "config": map[string]any{"code": "throw new Error('bad ' + secrets.API_TOKEN)"}},
			map[string]any{"id": "never", "type": "log", "config": map[string]any{"message": "'unreachable'"}},
		},
		"on_error": handler,
	}
}

// A flow's on_error handler runs when the run fails, with error (redacted)
// and failed_block in scope and the steps that finished before; the run
// still ends failed with its original error.
func TestOnError(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		col := newCollector(t)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", onErrorFlow("guarded", col.URL,
			map[string]any{"id": "notify", "type": "http", "config": map[string]any{"method": "'POST'", "url": "`${env.BASE}/alert`",
				"body": "({error, failed_block, first: steps.first.output.n})"}},
			map[string]any{"id": "check", "type": "code", "if": `failed_block == "boom" && error contains "REDACTED"`,
				"config": map[string]any{"code": "return [steps.notify.output.status, failed_block, error.includes(secrets.API_TOKEN)]"}},
		))
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/guarded/runs?wait=60s", map[string]any{"environment": "development"})
		id := run["id"].(string)
		msg, _ := run["error"].(string)
		if run["status"] != "failed" || !strings.HasPrefix(msg, `block "boom" 1:7: `) || !strings.HasSuffix(msg, "Error: bad [REDACTED:API_TOKEN]") || strings.Contains(msg, "on_error") {
			t.Fatalf("run: %v", run)
		}
		got := col.received("/alert")
		if len(got) != 1 {
			t.Fatalf("the handler sent %d requests", len(got))
		}
		var sent map[string]any
		if err := json.Unmarshal([]byte(got[0]), &sent); err != nil {
			t.Fatal(err)
		}
		if sent["failed_block"] != "boom" || sent["error"] != msg || sent["first"] != 1.0 {
			t.Fatalf("the handler sent %s; the run's error is %q", got[0], msg)
		}
		apptest.AssertAbsent(t, "handler request", got[0], canaryToken)

		evs := events(t, s, id)
		checkSequence(t, id, evs)
		types := eventTypes(evs)
		want := "block_failed:boom on_error_started: block_started:notify http_request:notify http_response:notify block_finished:notify " +
			"block_started:check block_finished:check on_error_finished: run_finished:"
		if !strings.Contains(types, want) || strings.Contains(types, "never") {
			t.Fatalf("events %s\nwant %s", types, want)
		}
		if d := eventData(evs, "on_error_started", ""); d["failed_block"] != "boom" || d["error"] != msg {
			t.Errorf("on_error_started: %v", d)
		}
		if d := eventData(evs, "block_finished", "check"); mustJSON(d["output"]) != `[200,"boom",false]` {
			t.Errorf("check: %v", d)
		}
		if d := eventData(evs, "on_error_finished", ""); d["status"] != "succeeded" {
			t.Errorf("on_error_finished: %v", d)
		}
		if d := eventData(evs, "run_finished", ""); d["status"] != "failed" || d["error"] != msg {
			t.Errorf("run_finished: %v", d)
		}
		assertNoCheckpoints(t, s, id)
		for name, text := range map[string]string{"run": mustJSON(run), "events": mustJSON(evs),
			"database": apptest.DumpTables(t, s.App.DB), "server log": s.Logs.String()} {
			apptest.AssertAbsent(t, name, text, canaryToken)
		}
	})
}

// A handler that fails itself stops there; the run ends failed with its
// original error, and the handler's failure is in its events and after
// the original error.
func TestOnErrorHandlerFails(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", onErrorFlow("doubly", "http://unused",
			map[string]any{"id": "broken", "type": "code", "config": map[string]any{"code": "throw new Error('handler broke on ' + failed_block)"}},
			map[string]any{"id": "skipped", "type": "log", "config": map[string]any{"message": "'not reached'"}},
		))
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/doubly/runs?wait=60s", map[string]any{"environment": "development"})
		msg, _ := run["error"].(string)
		original, _, _ := strings.Cut(msg, " (on_error handler: ")
		if run["status"] != "failed" || !strings.HasPrefix(original, `block "boom" 1:7: `) || !strings.HasSuffix(original, "Error: bad [REDACTED:API_TOKEN]") || !strings.Contains(msg, "(on_error handler: it failed too: ") ||
			!strings.Contains(msg, "handler broke on boom") {
			t.Fatalf("run: %v", run)
		}
		id := run["id"].(string)
		evs := events(t, s, id)
		checkSequence(t, id, evs)
		types := eventTypes(evs)
		if !strings.Contains(types, "on_error_started: block_started:broken block_failed:broken on_error_finished: run_finished:") ||
			strings.Contains(types, "skipped") {
			t.Fatalf("events %s", types)
		}
		if d := eventData(evs, "on_error_finished", ""); d["status"] != "failed" || !strings.Contains(d["error"].(string), "handler broke") {
			t.Errorf("on_error_finished: %v", d)
		}
		if d := eventData(evs, "on_error_started", ""); d["error"] != original {
			t.Errorf("on_error_started: %v", d)
		}
	})
}

// Saving refuses an on_error block whose id is a block's, a steps.X that
// is neither a block nor an earlier handler block, and error or
// failed_block outside on_error, each located by block and field.
func TestOnErrorValidation(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		bad := map[string]any{
			"name": "bad", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "a", "type": "log", "config": map[string]any{"message": "'a'"}},
				map[string]any{"id": "b", "type": "log", "if": `failed_block == "a"`, "config": map[string]any{"message": "'b'"}},
			},
			"on_error": []any{
				map[string]any{"id": "a", "type": "log", "config": map[string]any{"message": "'clash'"}},
				map[string]any{"id": "h1", "type": "log", "config": map[string]any{"message": "steps.h2.output"}},
				map[string]any{"id": "h2", "type": "log", "if": "steps.nope.output == 1", "config": map[string]any{"message": "steps.b.output + steps.h1.output + error"}},
			},
		}
		r := s.Do("POST", "/api/v1/projects/billing/flows", bad)
		if r.Status != 400 {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		probs := r.JSON(t)["error"].(map[string]any)["problems"].([]any)
		text := mustJSON(probs)
		for _, want := range []string{
			`"block":"a","field":"id","message":"on_error block id \"a\" is already the id of a block of the flow`,
			`"block":"h1","field":"message","message":"steps.h2 is neither a block of the flow nor an earlier on_error block"`,
			`"block":"h2","field":"if","message":"steps.nope is neither a block of the flow nor an earlier on_error block"`,
			`"block":"b","column":1,"field":"if","line":1,"message":"error and failed_block are defined only in the blocks of the flow's on_error list`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("problems lack %s:\n%s", want, text)
			}
		}
		if len(probs) != 4 {
			t.Errorf("%d problems: %s", len(probs), text)
		}
	})
}

// A run whose handler waits (a long delay) releases its worker like any
// durable wait; when the wait ends it resumes in the handler: neither the
// failed block nor the handler blocks that finished run again, and the
// run ends failed, once.
func TestOnErrorResumesAfterDurableWait(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			clock := &apptest.Clock{}
			s := serverOn(t, b.Config(t), func(c *app.Config) { c.Now = clock.Now })
			setup(t, s)
			fx := newEffects(t, "")
			s.Must(201, "POST", "/api/v1/projects/billing/flows", onErrorFlow("patient", fx.URL,
				map[string]any{"id": "before", "type": "http", "config": map[string]any{"url": "`${env.BASE}/before?run=${run.id}`"}},
				map[string]any{"id": "nap", "type": "delay", "timeout": "2m", "config": map[string]any{"duration": "'60s'"}},
				map[string]any{"id": "after", "type": "http", "config": map[string]any{"method": "'POST'", "url": "`${env.BASE}/after?run=${run.id}`",
					"body": "({error, failed_block, before: steps.before.output.body.path})"}},
			))
			id := s.Must(202, "POST", "/api/v1/projects/billing/flows/patient/runs", map[string]any{"environment": "development"})["id"].(string)
			waitRun(t, s, id, "the handler to wait", func(r map[string]any, _ string) bool { return r["status"] == "waiting" })
			clock.Advance(61 * time.Second)
			r := waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool {
				return r["status"] != "waiting" && r["status"] != "queued" && r["status"] != "running"
			})
			msg, _ := r["error"].(string)
			if r["status"] != "failed" || !strings.HasPrefix(msg, `block "boom" 1:7: `) || !strings.HasSuffix(msg, "Error: bad [REDACTED:API_TOKEN]") || strings.Contains(msg, "on_error") {
				t.Fatalf("run: %v", r)
			}
			if fx.count("/before", id) != 1 || fx.count("/after", id) != 1 {
				t.Errorf("before sent %d times, after %d", fx.count("/before", id), fx.count("/after", id))
			}
			evs := events(t, s, id)
			checkSequence(t, id, evs)
			types := eventTypes(evs)
			for block, n := range map[string]int{"first": 1, "boom": 1, "before": 1, "nap": 1, "after": 1, "never": 0} {
				if got := strings.Count(types, "block_started:"+block+" "); got != n {
					t.Errorf("block %s started %d times: %s", block, got, types)
				}
			}
			if strings.Count(types, "on_error_started:") != 1 ||
				!strings.Contains(types, "block_waiting:nap run_resumed: block_finished:nap block_started:after") {
				t.Errorf("events %s", types)
			}
			if d := eventData(evs, "run_resumed", ""); d["from_block"] != "nap" {
				t.Errorf("run_resumed: %v", d)
			}
			if d := eventData(evs, "block_finished", "after"); d == nil {
				t.Fatalf("no block_finished:after: %s", types)
			}
			assertNoCheckpoints(t, s, id)
		})
	}
}

// continue_on_error is for the block's own failure: a block stopped by its
// replica's shutdown is not turned into output. A GET resumes and runs
// again; a POST that may have acted fails the run (its on_error handler
// runs) rather than continue as if it had failed.
func TestContinueOnErrorNotOnShutdown(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			for _, method := range []string{"GET", "POST"} {
				t.Run(method, func(t *testing.T) {
					dbc := b.Config(t)
					fx := newEffects(t, "/slow")
					grace := func(c *app.Config) { c.ShutdownGrace = 100 * time.Millisecond }
					s := serverOn(t, dbc, grace)
					s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "shop"})
					s.Must(201, "POST", "/api/v1/projects/shop/flows", map[string]any{
						"name": "slow", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"FX": fx.URL},
						"blocks": []any{
							map[string]any{"id": "call", "type": "http", "continue_on_error": true,
								"config": map[string]any{"method": "'" + method + "'", "url": "`${env.FX}/slow?run=${run.id}`"}},
							map[string]any{"id": "use", "type": "code", "config": map[string]any{"code": "return steps.call.output"}},
						},
						"on_error": []any{map[string]any{"id": "tell", "type": "http", "config": map[string]any{
							"method": "'POST'", "url": "`${env.FX}/tell?run=${run.id}`", "body": "({failed_block})"}}},
					})
					id := s.Must(202, "POST", "/api/v1/projects/shop/flows/slow/runs", map[string]any{"environment": "development"})["id"].(string)
					select {
					case <-fx.arrived:
					case <-time.After(30 * time.Second):
						t.Fatal("the request did not arrive")
					}
					s.Stop() // the request is in flight

					close(fx.release)
					s = serverOn(t, dbc, grace)
					r := waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool {
						return r["status"] == "succeeded" || r["status"] == "failed"
					})
					evs := events(t, s, id)
					checkSequence(t, id, evs)
					types := eventTypes(evs)
					if !strings.Contains(types, "block_interrupted:call") {
						t.Errorf("events %s", types)
					}
					if d := eventData(evs, "block_interrupted", "call"); d["continued"] != nil {
						t.Errorf("block_interrupted: %v", d)
					}
					if method == "GET" {
						out, _ := r["output"].(map[string]any)
						if r["status"] != "succeeded" || out["status"] != 200.0 || out["failed"] != nil || fx.count("/slow", id) != 2 || fx.count("/tell", id) != 0 {
							t.Fatalf("run: %v (%d requests)", r, fx.count("/slow", id))
						}
						return
					}
					msg, _ := r["error"].(string)
					if r["status"] != "failed" || !strings.Contains(msg, `block "call" was interrupted`) || fx.count("/slow", id) != 1 {
						t.Fatalf("run: %v", r)
					}
					if strings.Contains(types, "block_started:use") || fx.count("/tell", id) != 1 {
						t.Errorf("the run went on, or its handler did not run: %s", types)
					}
					if d := eventData(evs, "on_error_started", ""); d["failed_block"] != "call" {
						t.Errorf("on_error_started: %v", d)
					}
				})
			}
		})
	}
}

// A cancel while the on_error handler waits (a durable delay) ends the run
// failed with its original error and "(on_error handler: it was
// canceled)", as a cancel while the handler runs does: the run had failed
// before the cancel.
func TestCancelDuringHandlerWait(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", onErrorFlow("patient", "",
			map[string]any{"id": "nap", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "'1h'"}},
			map[string]any{"id": "after", "type": "log", "config": map[string]any{"message": "'after'"}},
		))
		id := s.Must(202, "POST", "/api/v1/projects/billing/flows/patient/runs", map[string]any{"environment": "development"})["id"].(string)
		waitRun(t, s, id, "the handler to wait", func(r map[string]any, _ string) bool { return r["status"] == "waiting" })
		r := s.Must(200, "POST", "/api/v1/runs/"+id+"/cancel", nil)
		msg, _ := r["error"].(string)
		if r["status"] != "failed" || !strings.HasPrefix(msg, `block "boom" 1:7: `) || !strings.HasSuffix(msg, "Error: bad [REDACTED:API_TOKEN] (on_error handler: it was canceled)") {
			t.Fatalf("run: %v", r)
		}
		evs := events(t, s, id)
		checkSequence(t, id, evs)
		if d := eventData(evs, "on_error_finished", ""); d["status"] != "canceled" {
			t.Errorf("on_error_finished: %v (%s)", d, eventTypes(evs))
		}
		if d := eventData(evs, "run_finished", ""); d["status"] != "failed" {
			t.Errorf("run_finished: %v", d)
		}
		assertNoCheckpoints(t, s, id)
	})
}
