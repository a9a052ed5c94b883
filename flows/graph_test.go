package flows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// Blocks with needs: parallel branches (issue 19 item 2).

// seqOf is the seq of the event of type typ of block, or 0.
func seqOf(evs []map[string]any, typ, block string) int {
	for _, e := range evs {
		if b, _ := e["block"].(string); e["type"] == typ && b == block {
			return int(e["seq"].(float64))
		}
	}
	return 0
}

// countToken counts tok among the words of s.
func countToken(s, tok string) int {
	n := 0
	for _, w := range strings.Fields(s) {
		if w == tok {
			n++
		}
	}
	return n
}

// Two blocks with no needs between them run at once: their requests meet
// at a gate that answers only when both wait together (run one after the
// other, the first would never get an answer and the run would fail). A
// block that needs both reads both outputs; the run's output is the last
// block's, or that of the block the flow's output names.
func TestParallelBranches(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		g := newGate(t, 2, 2)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "fan", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"BASE": g.URL},
			"blocks": []any{
				map[string]any{"id": "a", "type": "http", "timeout": "20s",
					"config": map[string]any{"method": "'POST'", "url": "`${env.BASE}/a`", "body": "({from: 'a'})"}},
				map[string]any{"id": "b", "type": "http", "timeout": "20s", "needs": []string{},
					"config": map[string]any{"method": "'POST'", "url": "`${env.BASE}/b`", "body": "({from: 'b'})"}},
				map[string]any{"id": "join", "type": "code", "needs": []string{"a", "b"},
					"config": map[string]any{"code": "return [steps.a.output.body.got.from, steps.b.output.body.got.from]"}},
			},
		})
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/fan/runs?wait=60s", map[string]any{"environment": "development"})
		if run["status"] != "succeeded" {
			t.Fatalf("run: %v", run)
		}
		if got := mustJSON(run["output"]); got != `["a","b"]` {
			t.Errorf("output %s", got)
		}
		if m := g.maxInflight.Load(); m != 2 {
			t.Errorf("at most %d requests at once, want 2", m)
		}
		evs := events(t, s, run["id"].(string))
		checkSequence(t, run["id"].(string), evs)
		if seqOf(evs, "block_started", "join") < max(seqOf(evs, "block_finished", "a"), seqOf(evs, "block_finished", "b")) {
			t.Errorf("join started before both blocks it needs finished: %s", eventTypes(evs))
		}

		// Two delays of 1 s side by side overlap: each starts before the
		// other finishes.
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "naps", "trigger": map[string]any{"type": "manual"}, "output": "one",
			"blocks": []any{
				map[string]any{"id": "one", "type": "delay", "config": map[string]any{"duration": "'1s'"}},
				map[string]any{"id": "two", "type": "delay", "needs": []string{}, "config": map[string]any{"duration": "'1s'"}},
				map[string]any{"id": "both", "type": "code", "needs": []string{"one", "two"}, "config": map[string]any{"code": "return 'joined'"}},
			},
		})
		start := time.Now()
		run = s.Must(200, "POST", "/api/v1/projects/billing/flows/naps/runs?wait=60s", map[string]any{"environment": "development"})
		took := time.Since(start)
		if run["status"] != "succeeded" {
			t.Fatalf("run: %v", run)
		}
		evs = events(t, s, run["id"].(string))
		if seqOf(evs, "block_started", "two") > seqOf(evs, "block_finished", "one") || seqOf(evs, "block_started", "one") > seqOf(evs, "block_finished", "two") {
			t.Errorf("the two delays did not overlap: %s", eventTypes(evs))
		}
		if w, _ := run["output"].(map[string]any); w == nil || w["waited_ms"] == nil {
			t.Errorf("the output names block one (a delay): %v", run["output"])
		}
		t.Logf("two 1 s delays side by side, then a block that needs both: %s from the request to the answer", took.Round(time.Millisecond))
	})
}

// Flows without needs run as they always did: each block after the one
// before it; a block with needs: [] starts with the run, and one whose
// needs were skipped by their if still runs.
func TestNeedsKeepListOrder(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "mixed", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "a", "type": "code", "config": map[string]any{"code": "return 1"}},
				map[string]any{"id": "b", "type": "code", "config": map[string]any{"code": "return steps.a.output + 1"}},
				map[string]any{"id": "skipped", "type": "code", "needs": []string{}, "if": "false", "config": map[string]any{"code": "return 0"}},
				map[string]any{"id": "c", "type": "code", "needs": []string{"b", "skipped"},
					"config": map[string]any{"code": "return [steps.a.output, steps.b.output, steps.skipped === undefined]"}},
			},
		})
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/mixed/runs?wait=30s", map[string]any{"environment": "development"})
		if run["status"] != "succeeded" || mustJSON(run["output"]) != `[1,2,true]` {
			t.Fatalf("run: %v", run)
		}
		evs := events(t, s, run["id"].(string))
		if seqOf(evs, "block_started", "b") < seqOf(evs, "block_finished", "a") {
			t.Errorf("b (no needs) started before a, the block before it, finished: %s", eventTypes(evs))
		}
		assertNoCheckpoints(t, s, run["id"].(string))
	})
}

// A block that fails stops the graph: no block starts after it, those
// running finish, and the flow's on_error handler runs with the failed
// block. With continue_on_error, the blocks that need it run.
func TestBranchFailure(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		flow := func(name string, cont bool) map[string]any {
			return map[string]any{
				"name": name, "trigger": map[string]any{"type": "manual"},
				"blocks": []any{
					map[string]any{"id": "bad", "type": "code", "continue_on_error": cont, "config": map[string]any{"code": "throw new Error('boom')"}},
					map[string]any{"id": "slow", "type": "delay", "needs": []string{}, "config": map[string]any{"duration": "'300ms'"}},
					map[string]any{"id": "after", "type": "code", "needs": []string{"bad", "slow"}, "config": map[string]any{"code": "return steps.bad.output"}},
				},
				"on_error": []any{
					map[string]any{"id": "alert", "type": "code", "config": map[string]any{"code": "return failed_block"}},
				},
			}
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("fails", false))
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/fails/runs?wait=30s", map[string]any{"environment": "development"})
		if run["status"] != "failed" || !strings.Contains(run["error"].(string), "boom") {
			t.Fatalf("run: %v", run)
		}
		evs := events(t, s, run["id"].(string))
		checkSequence(t, run["id"].(string), evs)
		types := eventTypes(evs)
		if !strings.Contains(types, "block_finished:slow") || strings.Contains(types, "block_started:after") {
			t.Errorf("the running branch should finish and no block start after the failure: %s", types)
		}
		if d := eventData(evs, "block_finished", "alert"); d["output"] != "bad" {
			t.Errorf("on_error saw failed_block %v: %s", d["output"], types)
		}

		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("continues", true))
		run = s.Must(200, "POST", "/api/v1/projects/billing/flows/continues/runs?wait=30s", map[string]any{"environment": "development"})
		out, _ := run["output"].(map[string]any)
		if run["status"] != "succeeded" || out["failed"] != true {
			t.Fatalf("run: %v", run)
		}
	})
}

// needs are checked before a flow is saved: unknown ids, a block needing
// itself or one id twice, a cycle, steps.X of a block not needed, needs
// in on_error, an output that names no block.
func TestNeedsValidation(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		code := func(id string, needs []string, src string) map[string]any {
			b := map[string]any{"id": id, "type": "code", "config": map[string]any{"code": src}}
			if needs != nil {
				b["needs"] = needs
			}
			return b
		}
		r := s.Do("POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "bad", "trigger": map[string]any{"type": "manual"}, "output": "nope",
			"blocks": []any{
				code("a", []string{"ghost", "a"}, "return 1"),
				code("b", []string{}, "return steps.a.output"),
				code("c", []string{"b", "b"}, "return 1"),
			},
			"on_error": []any{code("h", []string{"a"}, "return 1")},
		})
		if r.Status != 400 {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		text := mustJSON(r.JSON(t)["error"].(map[string]any)["problems"])
		for _, want := range []string{
			`"block":"a","field":"needs","message":"needs names \"ghost\", which is not a block of the flow"`,
			`"block":"a","field":"needs","message":"a block cannot need itself"`,
			`"block":"c","field":"needs","message":"needs names \"b\" twice"`,
			`"block":"h","field":"needs","message":"on_error blocks run in order and have no needs"`,
			`"field":"output","message":"output names \"nope\", which is not a block of the flow"`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("problems lack %s:\n%s", want, text)
			}
		}

		// With valid needs, steps.X must name a block needed, directly or
		// not: c reads a through b; d, which starts with the run, may not.
		// A repeated need (itself included) is one problem, and hides
		// none of the others: d's steps.a is still checked.
		r = s.Do("POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "twice", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				code("a", nil, "return 1"),
				code("c", []string{"a", "a"}, "return 1"),
				code("d", []string{"c", "d", "d"}, "return steps.a.output"),
			},
		})
		text = mustJSON(r.JSON(t)["error"].(map[string]any)["problems"])
		if r.Status != 400 || strings.Count(text, "cannot need itself") != 1 || strings.Count(text, "twice") != 1 {
			t.Errorf("repeated needs: %d %s", r.Status, text)
		}
		r = s.Do("POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "twice2", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				code("a", nil, "return 1"),
				code("c", []string{"a", "a"}, "return 1"),
				code("d", []string{}, "return steps.a.output"),
			},
		})
		text = mustJSON(r.JSON(t)["error"].(map[string]any)["problems"])
		if r.Status != 400 || !strings.Contains(text, `"block":"d","field":"code","message":"steps.a is not a block this block needs`) {
			t.Errorf("a repeated need hid the other problems: %d %s", r.Status, text)
		}

		r = s.Do("POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "unneeded", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				code("a", nil, "return 1"),
				code("b", []string{"a"}, "return 1"),
				code("c", []string{"b"}, "return steps.a.output"),
				code("d", []string{}, "return steps.a.output"),
			},
		})
		text = mustJSON(r.JSON(t)["error"].(map[string]any)["problems"])
		if r.Status != 400 || strings.Count(text, "steps.a") != 1 || !strings.Contains(text,
			`"block":"d","field":"code","message":"steps.a is not a block this block needs, directly or through the blocks it needs; add \"a\" to its needs"`) {
			t.Errorf("steps of a block not needed: %d %s", r.Status, text)
		}

		r = s.Do("POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "loop", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				code("x", []string{"z"}, "return 1"),
				code("y", nil, "return 1"),
				code("z", nil, "return 1"),
			},
		})
		if r.Status != 400 || !strings.Contains(string(r.Body), `the blocks' needs form a cycle: \"x\" → \"y\" → \"z\" → \"x\"`) {
			t.Fatalf("a cycle: %d %s", r.Status, r.Body)
		}
	})
}

// A branch in a durable wait: the run waits once the other branch has
// finished, and takes up where it was when the wait ends; a second branch
// with a longer wait makes the run wait again. No finished block runs
// twice.
func TestBranchDurableWaits(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			clock := &apptest.Clock{}
			s := serverOn(t, b.Config(t), func(c *app.Config) { c.Now = clock.Now })
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
			s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
				"name": "waits", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{
					map[string]any{"id": "short", "type": "delay", "timeout": "2m", "config": map[string]any{"duration": "'60s'"}},
					map[string]any{"id": "long", "type": "delay", "timeout": "3m", "needs": []string{}, "config": map[string]any{"duration": "'120s'"}},
					map[string]any{"id": "quick", "type": "code", "needs": []string{}, "config": map[string]any{"code": "return 7"}},
					map[string]any{"id": "end", "type": "code", "needs": []string{"short", "long", "quick"},
						"config": map[string]any{"code": "return [steps.short.output.waited_ms, steps.long.output.waited_ms, steps.quick.output]"}},
				},
			})
			id := s.Must(202, "POST", "/api/v1/projects/ops/flows/waits/runs", map[string]any{"environment": "development"})["id"].(string)
			waitRun(t, s, id, "the run to wait", func(r map[string]any, _ string) bool { return r["status"] == "waiting" })
			clock.Advance(61 * time.Second)
			waitRun(t, s, id, "the short wait to end and the run to wait again", func(r map[string]any, evs string) bool {
				return r["status"] == "waiting" && strings.Contains(evs, "block_finished:short")
			})
			clock.Advance(60 * time.Second)
			r := waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool {
				return r["status"] != "waiting" && r["status"] != "queued" && r["status"] != "running"
			})
			out, _ := r["output"].([]any)
			if r["status"] != "succeeded" || len(out) != 3 || out[0].(float64) < 60000 || out[1].(float64) < 120000 || out[2] != float64(7) {
				t.Fatalf("run: %v", r)
			}
			evs := events(t, s, id)
			checkSequence(t, id, evs)
			types := eventTypes(evs)
			for _, blk := range []string{"short", "long", "quick", "end"} {
				if n := countToken(types, "block_finished:"+blk); n != 1 {
					t.Errorf("block %s finished %d times: %s", blk, n, types)
				}
			}
			if strings.Count(types, "block_started:quick") != 1 || strings.Count(types, "run_resumed") != 2 {
				t.Errorf("events: %s", types)
			}
			assertNoCheckpoints(t, s, id)
		})
	}
}

// A replica stopped while one branch's request is in flight: the branch
// that finished is not run again on the next replica; the interrupted one
// (a GET, safe to repeat) is; the block that needs both runs once.
func TestBranchResumesAfterInterruption(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			dbc := b.Config(t)
			fx := newEffects(t, "/slow")
			grace := func(c *app.Config) { c.ShutdownGrace = 100 * time.Millisecond }
			s := serverOn(t, dbc, grace)
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "shop"})
			s.Must(201, "POST", "/api/v1/projects/shop/flows", map[string]any{
				"name": "branches", "trigger": map[string]any{"type": "manual"}, "env": map[string]string{"FX": fx.URL},
				"blocks": []any{
					map[string]any{"id": "fast", "type": "http", "config": map[string]any{"url": "`${env.FX}/fast?run=${run.id}`"}},
					map[string]any{"id": "slow", "type": "http", "needs": []string{}, "config": map[string]any{"url": "`${env.FX}/slow?run=${run.id}`"}},
					map[string]any{"id": "join", "type": "http", "needs": []string{"fast", "slow"}, "config": map[string]any{"url": "`${env.FX}/join?run=${run.id}`"}},
				},
			})
			id := s.Must(202, "POST", "/api/v1/projects/shop/flows/branches/runs", map[string]any{"environment": "development"})["id"].(string)
			select {
			case <-fx.arrived:
			case <-time.After(30 * time.Second):
				t.Fatal("the request did not arrive")
			}
			waitFor(t, 30*time.Second, "the fast branch's checkpoint", func() bool {
				var n int64
				s.App.DB.Table("run_checkpoints").Where("run_id = ? AND block = ?", id, "fast").Count(&n)
				return n == 1
			})
			s.Stop()

			close(fx.release)
			s = serverOn(t, dbc, grace)
			r := waitRun(t, s, id, "the run to end", func(r map[string]any, _ string) bool {
				return r["status"] == "succeeded" || r["status"] == "failed"
			})
			if r["status"] != "succeeded" {
				t.Fatalf("run: %v", r)
			}
			for path, want := range map[string]int{"/fast": 1, "/slow": 2, "/join": 1} {
				if n := fx.count(path, id); n != want {
					t.Errorf("%s: %d requests, want %d", path, n, want)
				}
			}
			evs := events(t, s, id)
			checkSequence(t, id, evs)
			if d := eventData(evs, "run_resumed", ""); d["from_block"] != "slow" {
				t.Errorf("run_resumed: %v", d)
			}
		})
	}
}
