package flows_test

import (
	"encoding/base64"
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

// Sub-flows: the flow block (issue 19 item 3).

// derivedValue is a value a parent flow makes at run time and masks with
// secrets.mask: the child it passes it to must mask it too.
const derivedValue = "derived-Zq81-xyzzy-4471-value"

// A parent calls a child that reads a secret and returns a value built
// from it: the parent's next block gets (and sends) the real value, and
// every view of both runs shows it masked. The runs are linked both ways.
func TestSubflow(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		var mu sync.Mutex
		var got []string
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, string(b))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"ok":true}`))
		}))
		t.Cleanup(sink.Close)

		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "child", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "build", "type": "code", "config": map[string]any{"code": "" +
					"console.log('passed', input.passed)\n" +
					"return {auth: 'Bearer ' + secrets.API_TOKEN, n: input.n * 2, passed: input.passed}"}},
			},
		})
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "parent", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"SINK": sink.URL},
			"blocks": []any{
				map[string]any{"id": "mk", "type": "code", "config": map[string]any{"code": "return secrets.mask('derived-' + input.k + '-value')"}},
				map[string]any{"id": "call", "type": "flow", "timeout": "1m",
					"config": map[string]any{"flow": "'child'", "input": "({n: input.n, passed: steps.mk.output})"}},
				map[string]any{"id": "send", "type": "http",
					"config": map[string]any{"method": "'POST'", "url": "`${env.SINK}/hook`", "body": "steps.call.output"}},
				map[string]any{"id": "done", "type": "code", "config": map[string]any{"code": "return {n: steps.call.output.n, auth: steps.call.output.auth}"}},
			},
		})
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/parent/runs?wait=60s",
			map[string]any{"environment": "development", "input": map[string]any{"n": 21, "k": "Zq81-xyzzy-4471"}})
		if run["status"] != "succeeded" {
			t.Fatalf("run: %v", run)
		}
		id := run["id"].(string)
		out := run["output"].(map[string]any)
		if out["n"] != float64(42) || out["auth"] != "Bearer [REDACTED:API_TOKEN]" {
			t.Errorf("output %v", out)
		}
		mu.Lock()
		sent := strings.Join(got, "\n")
		mu.Unlock()
		if !strings.Contains(sent, `"auth":"Bearer `+strings.ReplaceAll(canaryToken, `\`, `\\`)) && !strings.Contains(sent, "Bearer tok_9fK2") {
			t.Errorf("the local server did not get the real value: %s", sent)
		}
		if !strings.Contains(sent, derivedValue) {
			t.Errorf("the local server did not get the parent's value back: %s", sent)
		}

		// Linked both ways.
		view := s.Must(200, "GET", "/api/v1/runs/"+id, nil)
		children, _ := view["children"].([]any)
		if len(children) != 1 {
			t.Fatalf("children %v", view["children"])
		}
		ch := children[0].(map[string]any)
		cid := ch["id"].(string)
		if ch["flow"] != "child" || ch["status"] != "succeeded" || ch["parent_block"] != "call" {
			t.Errorf("child %v", ch)
		}
		child := s.Must(200, "GET", "/api/v1/runs/"+cid, nil)
		if child["parent_run_id"] != id || child["parent_block"] != "call" || child["depth"] != float64(1) || child["trigger"] != "flow" || child["environment"] != "development" {
			t.Errorf("child run %v", child)
		}
		list := s.Must(200, "GET", "/api/v1/projects/billing/runs?parent="+id, nil)
		if runs := list["runs"].([]any); len(runs) != 1 || runs[0].(map[string]any)["id"] != cid {
			t.Errorf("runs of parent: %v", list)
		}
		evs := events(t, s, id)
		checkSequence(t, id, evs)
		if d := eventData(evs, "flow_started", "call"); d["run_id"] != cid || d["flow"] != "child" {
			t.Errorf("flow_started: %v (%s)", d, eventTypes(evs))
		}
		checkSequence(t, cid, events(t, s, cid))

		// Every view of both runs, the run list and the database: the
		// secret, the value built from it and the parent's masked value
		// are masked, in their usual encodings.
		b64 := base64.StdEncoding.EncodeToString([]byte(derivedValue))
		for _, rid := range []string{id, cid} {
			for name, text := range map[string]string{
				"run":    string(s.Do("GET", "/api/v1/runs/"+rid, nil).Body),
				"events": string(s.Do("GET", "/api/v1/runs/"+rid+"/events", nil).Body),
			} {
				apptest.AssertAbsent(t, rid+" "+name, text, append(apptest.Forms(canaryToken), derivedValue, b64)...)
			}
		}
		apptest.AssertAbsent(t, "run list", string(s.Do("GET", "/api/v1/projects/billing/runs", nil).Body), canaryToken, derivedValue)
		apptest.AssertAbsent(t, "database", apptest.DumpTables(t, s.App.DB), canaryToken, derivedValue)
		apptest.AssertAbsent(t, "server log", s.Logs.String(), canaryToken, derivedValue)
		if !strings.Contains(string(s.Do("GET", "/api/v1/runs/"+cid+"/events", nil).Body), "passed [REDACTED") {
			t.Errorf("the child's log of the parent's value is not shown masked")
		}
		assertNoCheckpoints(t, s, id)
		assertNoCheckpoints(t, s, cid)
	})
}

// A child that fails fails its parent's flow block with the child's
// (redacted) error; a pinned version runs that version; an unknown flow
// or version fails the block; a flow that calls itself stops at the depth
// limit; a flow block cannot loop with each.
func TestSubflowErrorsAndVersions(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		flow := func(name string, blocks ...any) map[string]any {
			return map[string]any{"name": name, "trigger": map[string]any{"type": "manual"}, "blocks": blocks}
		}
		code := func(id, src string) map[string]any {
			return map[string]any{"id": id, "type": "code", "config": map[string]any{"code": src}}
		}
		call := func(cfg map[string]any) map[string]any {
			return map[string]any{"id": "call", "type": "flow", "timeout": "1m", "config": cfg}
		}
		start := func(name string) map[string]any {
			return s.Must(200, "POST", "/api/v1/projects/billing/flows/"+name+"/runs?wait=60s", map[string]any{"environment": "development"})
		}

		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("bad-child", code("boom", "throw new Error('no ' + secrets.API_TOKEN)")))
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("calls-bad", call(map[string]any{"flow": "'bad-child'"})))
		r := start("calls-bad")
		msg, _ := r["error"].(string)
		if r["status"] != "failed" || !strings.Contains(msg, `flow "bad-child": run `) || !strings.Contains(msg, "failed: ") || !strings.Contains(msg, "no [REDACTED:API_TOKEN]") {
			t.Errorf("a failed child: %v", r)
		}
		apptest.AssertAbsent(t, "failed parent", mustJSON(r), canaryToken)

		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("versioned", code("v", "return 1")))
		s.Must(200, "PUT", "/api/v1/projects/billing/flows/versioned", flow("versioned", code("v", "return 2")))
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("pinned", call(map[string]any{"flow": "'versioned'", "version": 1})))
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("latest", call(map[string]any{"flow": "'versioned'"})))
		if r := start("pinned"); r["output"] != float64(1) {
			t.Errorf("pinned version 1: %v", r)
		}
		if r := start("latest"); r["output"] != float64(2) {
			t.Errorf("current version: %v", r)
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("missing-version", call(map[string]any{"flow": "'versioned'", "version": 9})))
		if r := start("missing-version"); r["status"] != "failed" || !strings.Contains(r["error"].(string), `flow "versioned" has no version 9; its versions are 1 to `) {
			t.Errorf("unknown version: %v", r)
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("missing-flow", call(map[string]any{"flow": "'nope'"})))
		if r := start("missing-flow"); r["status"] != "failed" || !strings.Contains(r["error"].(string), `flow "nope" not found`) {
			t.Errorf("unknown flow: %v", r)
		}

		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("forever", call(map[string]any{"flow": "'forever'"})))
		r = start("forever")
		if r["status"] != "failed" || !strings.Contains(r["error"].(string), "sub-flows nest at most 8 deep") {
			t.Errorf("a flow calling itself: %v", r)
		}
		var n int64
		s.App.DB.Table("runs").Where("flow = ?", "forever").Count(&n)
		var open int64
		s.App.DB.Table("runs").Where("flow = ? AND status IN ?", "forever", []string{"queued", "running", "waiting"}).Count(&open)
		if n != 9 || open != 0 {
			t.Errorf("%d runs of a flow calling itself (want 9: depth 0 to 8), %d open", n, open)
		}

		bad := s.Do("POST", "/api/v1/projects/billing/flows", flow("looped",
			map[string]any{"id": "call", "type": "flow", "each": "[1, 2]", "config": map[string]any{"flow": "'versioned'"}}))
		if bad.Status != 400 || !strings.Contains(string(bad.Body), "a flow block cannot have each") {
			t.Errorf("flow block with each: %d %s", bad.Status, bad.Body)
		}
	})
}

// A parent waiting for its child does not hold a worker; canceling the
// parent cancels the child. A child that outlives its block's timeout is
// canceled and fails the block.
func TestSubflowCancelAndTimeout(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			clock := &apptest.Clock{}
			s := serverOn(t, b.Config(t), func(c *app.Config) { c.Now = clock.Now })
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "slow", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "nap", "type": "delay", "timeout": "1h", "config": map[string]any{"duration": "'30m'"}}},
			})
			s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "caller", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "call", "type": "flow", "timeout": "10m", "config": map[string]any{"flow": "'slow'"}}},
			})
			both := func(id string, status string) (map[string]any, map[string]any) {
				var parent, child map[string]any
				waitFor(t, 60*time.Second, "parent and child "+status, func() bool {
					parent = s.Must(200, "GET", "/api/v1/runs/"+id, nil)
					ch, _ := parent["children"].([]any)
					if len(ch) != 1 {
						return false
					}
					child = s.Must(200, "GET", "/api/v1/runs/"+ch[0].(map[string]any)["id"].(string), nil)
					return parent["status"] == status && child["status"] == status
				})
				return parent, child
			}

			id := s.Must(202, "POST", "/api/v1/projects/ops/flows/caller/runs", map[string]any{"environment": "development"})["id"].(string)
			both(id, "waiting")
			s.Must(200, "POST", "/api/v1/runs/"+id+"/cancel", nil)
			both(id, "canceled")

			// The block's timeout (10m) ends before the child (30m).
			id = s.Must(202, "POST", "/api/v1/projects/ops/flows/caller/runs", map[string]any{"environment": "development"})["id"].(string)
			both(id, "waiting")
			clock.Advance(11 * time.Minute)
			var parent, child map[string]any
			waitFor(t, 60*time.Second, "the parent to fail and the child to be canceled", func() bool {
				parent = s.Must(200, "GET", "/api/v1/runs/"+id, nil)
				ch, _ := parent["children"].([]any)
				child = s.Must(200, "GET", "/api/v1/runs/"+ch[0].(map[string]any)["id"].(string), nil)
				return parent["status"] == "failed" && child["status"] == "canceled"
			})
			if !strings.Contains(parent["error"].(string), "did not end within the block's timeout") {
				t.Errorf("parent %v, child %v", parent, child)
			}
		})
	}
}

// A child run canceled during its wait keeps no value its parent learnt
// at run time (secrets.mask) in its input at rest: the cancel redacts it
// with what the parent passed on, as the child's own end would.
func TestCanceledChildKeepsNoParentValueInInput(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "slow", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "wait", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "'1h'"}}},
		})
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "caller", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "mk", "type": "code", "config": map[string]any{"code": "return secrets.mask('derived-' + input.k + '-value')"}},
				map[string]any{"id": "call", "type": "flow", "timeout": "1h",
					"config": map[string]any{"flow": "'slow'", "input": "({passed: steps.mk.output})"}},
			},
		})
		id := s.Must(202, "POST", "/api/v1/projects/billing/flows/caller/runs",
			map[string]any{"environment": "development", "input": map[string]any{"k": "Zq81-xyzzy-4471"}})["id"].(string)
		cid := waitingChild(t, s, id)
		s.Must(200, "POST", "/api/v1/runs/"+cid+"/cancel", nil)
		waitFor(t, 30*time.Second, "the caller to end", func() bool {
			st := s.Must(200, "GET", "/api/v1/runs/"+id, nil)["status"]
			return st == "failed" || st == "succeeded" || st == "canceled"
		})
		apptest.AssertAbsent(t, "database", apptest.DumpTables(t, s.App.DB), derivedValue)
	})
}

// A parent that passes a secret (and a value it masked at run time) to a
// sub-flow stores the child's input masked, the real input sealed with
// what the child inherits: while the child runs or waits no row holds the
// values in clear, and the child still gets and sends the real ones. A
// rerun of the child starts from the real input too.
func TestChildInputSealedWhileOpen(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		var mu sync.Mutex
		var got []string
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			got = append(got, string(b))
			mu.Unlock()
			w.WriteHeader(204)
		}))
		defer sink.Close()
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "keeper", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "send", "type": "http", "config": map[string]any{"method": "'POST'", "url": fmt.Sprintf("%q", sink.URL),
					"body": "({v: input.v, m: input.m})"}},
				map[string]any{"id": "wait", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "'1h'"}},
			},
		})
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "passer", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "mk", "type": "code", "config": map[string]any{"code": "return secrets.mask('derived-' + input.k + '-value')"}},
				map[string]any{"id": "call", "type": "flow", "timeout": "1h",
					"config": map[string]any{"flow": "'keeper'", "input": "({v: secrets.API_TOKEN, m: steps.mk.output, n: 7})"}},
			},
		})
		id := s.Must(202, "POST", "/api/v1/projects/billing/flows/passer/runs",
			map[string]any{"environment": "development", "input": map[string]any{"k": "Zq81-xyzzy-4471"}})["id"].(string)
		cid := waitingChild(t, s, id)
		sentReal := func(body string) bool {
			var v map[string]string
			return json.Unmarshal([]byte(body), &v) == nil && v["v"] == canaryToken && v["m"] == derivedValue
		}
		mu.Lock()
		sent := append([]string(nil), got...)
		mu.Unlock()
		if len(sent) != 1 || !sentReal(sent[0]) {
			t.Fatalf("the child sent %q, want the real values", sent)
		}
		apptest.AssertAbsent(t, "database while the child waits", apptest.DumpTables(t, s.App.DB), canaryToken, derivedValue)
		if ev := string(s.Do("GET", "/api/v1/runs/"+cid+"/events", nil).Body); !strings.Contains(ev, `"v":"[REDACTED:API_TOKEN]"`) || !strings.Contains(ev, `"n":7`) {
			t.Errorf("the child's input as its events show it: %.2000s", ev)
		}
		// Ended, then rerun: the rerun sends the real values again.
		s.Must(200, "POST", "/api/v1/runs/"+cid+"/cancel", nil)
		re := s.Must(202, "POST", "/api/v1/runs/"+cid+"/rerun", nil)["id"].(string)
		waitFor(t, 30*time.Second, "the rerun to send", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) == 2
		})
		mu.Lock()
		if !sentReal(got[1]) {
			t.Errorf("the rerun sent %q, want the real values", got[1])
		}
		mu.Unlock()
		// The rerun inherits what the child knew: its input is masked from
		// the start too.
		apptest.AssertAbsent(t, "database while the rerun waits", apptest.DumpTables(t, s.App.DB), canaryToken, derivedValue)
		s.Must(200, "POST", "/api/v1/runs/"+re+"/cancel", nil)
		apptest.AssertAbsent(t, "database", apptest.DumpTables(t, s.App.DB), canaryToken, derivedValue)
	})
}

// A flow block that retries starts each attempt afresh: a new child, with
// its flow_started event (naming the version the child runs) and the
// block's whole timeout to wait for it. And a flow block woken before its
// child ended (by another branch's wait ending) reports the duration
// since it began to wait, not since it went back to waiting.
func TestFlowBlockAttemptsAndDurations(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "nap", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "d", "type": "delay", "config": map[string]any{"duration": "input.ms"}},
				map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": "if (input.fail) throw new Error('planned'); return input.ms"}},
			},
		})
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "retrier", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "call", "type": "flow", "timeout": "1m", "retry": map[string]any{"attempts": 2, "backoff": "10ms"},
				"config": map[string]any{"flow": "'nap'", "input": "({ms: 50, fail: true})"}}},
		})
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/retrier/runs?wait=60s", map[string]any{"environment": "development"})
		if run["status"] != "failed" {
			t.Fatalf("run: %v", run)
		}
		children := map[any]bool{}
		var waits []float64
		for _, e := range events(t, s, run["id"].(string)) {
			d, _ := e["data"].(map[string]any)
			switch e["type"] {
			case "flow_started":
				children[d["run_id"]] = true
				if d["version"] != float64(1) {
					t.Errorf("flow_started %v: want version 1", d)
				}
			case "block_waiting":
				if _, retry := d["next_attempt"]; !retry {
					waits = append(waits, d["for_ms"].(float64))
				}
			}
		}
		if len(children) != 2 {
			t.Errorf("%d children named by flow_started events, want 2", len(children))
		}
		for _, ms := range waits {
			if ms < 50_000 {
				t.Errorf("an attempt waited for its child at most %v ms, want the block's timeout (1m): %v", ms, waits)
			}
		}
		// Two branches: "long"'s child ends 400 ms after "short"'s.
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "branches", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "short", "type": "flow", "timeout": "1m", "config": map[string]any{"flow": "'nap'", "input": "({ms: 100})"}},
				map[string]any{"id": "long", "type": "flow", "timeout": "1m", "needs": []any{}, "config": map[string]any{"flow": "'nap'", "input": "({ms: 500})"}},
			},
		})
		run = s.Must(200, "POST", "/api/v1/projects/billing/flows/branches/runs?wait=60s", map[string]any{"environment": "development"})
		if run["status"] != "succeeded" {
			t.Fatalf("run: %v", run)
		}
		evs := events(t, s, run["id"].(string))
		if d := eventData(evs, "run_resumed", ""); !strings.Contains(fmt.Sprint(d["reason"]), `which block "short" waits for, ended`) {
			t.Errorf("the first run_resumed: %v", d)
		}
		for _, e := range evs {
			if e["type"] == "block_finished" && e["block"] == "long" {
				if ms := e["data"].(map[string]any)["duration_ms"].(float64); ms < 500 {
					t.Errorf("long took %v ms by its block_finished event; its child alone waited 500 ms", ms)
				}
			}
		}
	})
}

// Saving a flow whose flow block calls, by a constant name, a flow the
// project does not have warns (the flow may come later), with the nearest
// name; a call of itself or of an existing flow, or by a computed name,
// does not.
func TestUnknownCalledFlowWarns(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "send-invoice", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": "return 1"}}}})
		call := func(id, flow string) map[string]any {
			return map[string]any{"id": id, "type": "flow", "config": map[string]any{"flow": flow}}
		}
		r := s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "caller", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{call("typo", "'send-invoce'"), call("known", "'send-invoice'"), call("self", "'caller'"), call("computed", "input.flow")}})
		ws, _ := r["warnings"].([]any)
		if len(ws) != 1 || ws[0] != `block "typo" calls flow "send-invoce", which project "billing" does not have (yet); did you mean "send-invoice"?` {
			t.Errorf("warnings %q", ws)
		}
	})
}

// A rerun of a sub-flow's run masks and pins what that run inherited, as
// it did: another environment's pinned secret and a secrets.mask value
// its parent passed in its input. Neither reaches a host the secret is
// not allowed to, nor sits in clear in any row, for the child or for
// its reruns (of it open, and of it ended).
func TestRerunKeepsWhatTheRunInherited(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		const prod, mask = "prod-Pd4Gh8Jk2Lm6Nb9Vc3Xz7Qw5", "mask-Mk3Jq9Xv2Rt7Lp5Wz8Nc4Bh6"
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "PROD", "value": prod, "project": "billing",
			"environment": "production", "allowed_hosts": []string{"api.example.com"}})
		var hits atomic.Int64
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
		defer sink.Close()
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "psend", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "wait", "type": "delay", "timeout": "2h", "config": map[string]any{"duration": "input.wait || 0"}},
				map[string]any{"id": "send", "type": "http", "config": map[string]any{"url": fmt.Sprintf("%q", sink.URL),
					"query": "({p: input.p, m: input.m})"}},
			},
		})
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "pget", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": fmt.Sprintf(
					"const p = await secrets.get('PROD', {environment: 'production'}); return {p, m: secrets.mask('mask-' + %q.split('').reverse().join(''))}",
					reverseString(strings.TrimPrefix(mask, "mask-")))}},
				map[string]any{"id": "call", "type": "flow", "timeout": "1h",
					"config": map[string]any{"flow": "'psend'", "input": "({p: steps.c.output.p, m: steps.c.output.m, wait: input.wait || 0})"}},
			},
		})
		refused := func(id string) {
			t.Helper()
			r := waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool { return r["status"] == "failed" || r["status"] == "succeeded" })
			if msg, _ := r["error"].(string); r["status"] != "failed" || !strings.Contains(msg, `may only be sent to api.example.com`) {
				t.Errorf("run %s: %v", id, r)
			}
		}
		// The child ends refused; so does its rerun.
		first := s.Must(200, "POST", "/api/v1/projects/billing/flows/pget/runs?wait=60s", map[string]any{"environment": "development", "input": map[string]any{}})
		id := first["id"].(string)
		if kids := s.Must(200, "GET", "/api/v1/projects/billing/runs?parent="+id, nil)["runs"].([]any); len(kids) != 1 {
			t.Fatalf("the parent started %d children: %v", len(kids), first)
		}
		child := s.Must(200, "GET", "/api/v1/projects/billing/runs?parent="+id, nil)["runs"].([]any)[0].(map[string]any)["id"].(string)
		refused(child)
		refused(s.Must(202, "POST", "/api/v1/runs/"+child+"/rerun", nil)["id"].(string))
		// A child rerun while it waits: its rerun inherits too.
		id = s.Must(202, "POST", "/api/v1/projects/billing/flows/pget/runs", map[string]any{"environment": "development", "input": map[string]any{"wait": "1h"}})["id"].(string)
		open := waitingChild(t, s, id)
		re := s.Must(202, "POST", "/api/v1/runs/"+open+"/rerun", nil)["id"].(string)
		waitRun(t, s, re, "the rerun to wait", func(r map[string]any, _ string) bool { return r["status"] == "waiting" })
		apptest.AssertAbsent(t, "database while the reruns wait", apptest.DumpTables(t, s.App.DB), prod, mask)
		for _, r := range []string{re, id} {
			s.Must(200, "POST", "/api/v1/runs/"+r+"/cancel", nil)
		}
		if n := hits.Load(); n != 0 {
			t.Errorf("the sink got %d requests", n)
		}
		apptest.AssertAbsent(t, "database", apptest.DumpTables(t, s.App.DB), prod, mask)
		// A rerun's input is its run's, not pasted by anyone: no exposure
		// alert for the values it inherited.
		for _, r := range s.Must(200, "GET", "/api/v1/audit?project=billing&limit=1000", nil)["records"].([]any) {
			if rec := r.(map[string]any); rec["action"] == "exposure" && rec["sink"] == "run_input" {
				t.Errorf("an exposure record of a run's input: %v", rec)
			}
		}
	})
}

func reverseString(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// waitingChild waits for the one child run of run id (in project billing)
// to be waiting, and returns its id.
func waitingChild(t *testing.T, s *apptest.Server, id string) string {
	t.Helper()
	var cid string
	waitFor(t, 30*time.Second, "the child to wait", func() bool {
		runs := s.Must(200, "GET", "/api/v1/projects/billing/runs?parent="+id, nil)["runs"].([]any)
		if len(runs) == 1 && runs[0].(map[string]any)["status"] == "waiting" {
			cid = runs[0].(map[string]any)["id"].(string)
		}
		return cid != ""
	})
	return cid
}

// A rerun masks and pins the scope secrets its run's input held as they
// were when that run ended, whatever the scope holds by then: a secret
// shadowed by a more specific one, or given a new value with other
// allowed hosts, does not free the old value from its pin nor from its
// mask (an editor could otherwise send it anywhere through a rerun).
func TestRerunKeepsThePinsItsInputHad(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		const v0 = "ptok-V0-Zk39sLq0Wm2Rv8Tx7Qa"
		ptok := s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "PTOK", "value": v0, "project": "billing",
			"allowed_hosts": []string{"api.example.com"}})["id"].(string)
		var hits atomic.Int64
		sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
		defer sink.Close()
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "post", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "send", "type": "http", "config": map[string]any{"method": "'POST'",
				"url": fmt.Sprintf("%q", sink.URL), "body": "({k: input.k})"}}},
		})
		refused := func(what string, r map[string]any) {
			t.Helper()
			if msg, _ := r["error"].(string); r["status"] != "failed" || !strings.Contains(msg, "may only be sent to") {
				t.Errorf("%s: %v", what, r)
			}
		}
		// The caller passes the value: refused by its pin; the input is
		// masked at rest, the real one sealed with the value's pin.
		r0 := s.Must(200, "POST", "/api/v1/projects/billing/flows/post/runs?wait=60s", map[string]any{"environment": "development", "input": map[string]any{"k": v0}})
		refused("the run", r0)
		rerun := func() map[string]any {
			id := s.Must(202, "POST", "/api/v1/runs/"+r0["id"].(string)+"/rerun", nil)["id"].(string)
			return waitRun(t, s, id, "the rerun to end", func(r map[string]any, _ string) bool { return r["status"] == "failed" || r["status"] == "succeeded" })
		}
		// Shadowed by a more specific PTOK allowed to the sink.
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "PTOK", "value": "ptok-shadow-Kd92mZq0Lp4", "project": "billing",
			"environment": "development", "allowed_hosts": []string{"127.0.0.1"}})
		refused("the rerun with PTOK shadowed", rerun())
		// PTOK given a new value allowed to the sink (the shadow gone).
		shadow := s.Must(200, "GET", "/api/v1/secrets?project=billing&environment=development", nil)["secrets"].([]any)[0].(map[string]any)["id"].(string)
		if r := s.Do("DELETE", "/api/v1/secrets/"+shadow, nil); r.Status != 204 {
			t.Fatalf("delete the shadow: %d %s", r.Status, r.Body)
		}
		s.Must(200, "PUT", "/api/v1/secrets/"+ptok, map[string]any{"value": "ptok-V2-Jq93kdL2mX8pQ5w", "allowed_hosts": []string{"127.0.0.1"}})
		refused("the rerun with PTOK replaced", rerun())
		if n := hits.Load(); n != 0 {
			t.Errorf("the sink got %d requests", n)
		}
		apptest.AssertAbsent(t, "database", apptest.DumpTables(t, s.App.DB), v0)
	})
}
