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

	_ "github.com/hushflow/hushflow/blocks/all"
	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// Canary secrets: high-entropy values with characters that every
// encoding treats specially, and a multi-line one.
const (
	canaryToken = `tok_9fK2&x<Q>"7%zL\mW3pR8vN1`
	canaryPEM   = "-----BEGIN TEST KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm\n-----END TEST KEY-----"
)

func setup(t *testing.T, s *apptest.Server) {
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
	s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": canaryToken, "project": "billing"})
	s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "PEM", "value": canaryPEM, "project": "billing", "environment": "production"})
}

// target is a local service that checks the bearer token and echoes what
// it received.
func target(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+canaryToken {
			w.WriteHeader(401)
			fmt.Fprintf(w, `{"error":"invalid key %s"}`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": "msg_1", "echo_auth": r.Header.Get("Authorization"),
			"body": string(body), "b64": base64.StdEncoding.EncodeToString([]byte("user:" + canaryToken))})
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func TestRunEndToEnd(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		srv, hits := target(t)
		flow := map[string]any{
			"name":    "notify",
			"trigger": map[string]any{"type": "manual"},
			"env":     map[string]string{"API_BASE": srv.URL},
			"blocks": []any{
				map[string]any{"id": "call", "type": "http", "config": map[string]any{
					"method":  "'POST'",
					"url":     "`${env.API_BASE}/messages?token=${secrets.API_TOKEN}`",
					"headers": "({\"Authorization\": `Bearer ${secrets.API_TOKEN}`})",
					"body":    "({text: input.text, key: secrets.API_TOKEN})",
				}},
				map[string]any{"id": "report", "type": "code", "if": "steps.call.output.status == 200",
					"config": map[string]any{"code": "console.log('sent', steps.call.output.body.id, secrets.API_TOKEN); return {id: steps.call.output.body.id, auth: steps.call.output.body.echo_auth, pem: await secrets.get('PEM', {environment: 'production'})}"}},
				map[string]any{"id": "never", "type": "log", "if": "steps.call.output.status != 200",
					"config": map[string]any{"message": "'unreachable'"}},
			},
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow)
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/notify/runs?wait=60s",
			map[string]any{"environment": "development", "input": map[string]any{"text": "hello"}})
		if run["status"] != "succeeded" {
			t.Fatalf("run: %v", run)
		}
		if hits.Load() != 1 {
			t.Fatalf("target hit %d times", hits.Load())
		}
		out := run["output"].(map[string]any)
		if out["id"] != "msg_1" || !strings.Contains(out["auth"].(string), "[REDACTED") || !strings.Contains(out["pem"].(string), "[REDACTED") {
			t.Fatalf("output %v", out)
		}
		id := run["id"].(string)
		ev := s.Must(200, "GET", "/api/v1/runs/"+id+"/events", nil)
		var types []string
		for _, e := range ev["events"].([]any) {
			m := e.(map[string]any)
			types = append(types, fmt.Sprint(m["type"], ":", m["block"]))
			// One form of mask wherever the secret shows (issue 18 item
			// 6): the whole credential header, in the block's shown
			// configuration and in its request, names the secret as its
			// occurrences elsewhere do.
			d, _ := m["data"].(map[string]any)
			switch m["type"] {
			case "block_started":
				if m["block"] == "call" {
					h, _ := d["config"].(map[string]any)["headers"].(map[string]any)
					if h["Authorization"] != "[REDACTED:API_TOKEN]" {
						t.Errorf("block_started config headers: %v", d["config"])
					}
				}
			case "http_request":
				if h, _ := d["headers"].(map[string]any); h["Authorization"] != "[REDACTED:API_TOKEN]" {
					t.Errorf("http_request headers: %v", d["headers"])
				}
			}
			if m["type"] == "block_skipped" {
				// The inspector shows a skipped block's type too.
				if d, _ := m["data"].(map[string]any); d["type"] == nil || d["if"] == nil {
					t.Errorf("block_skipped data: %v", m["data"])
				}
			}
		}
		got := strings.Join(types, " ")
		for _, want := range []string{"run_queued:", "run_started:", "block_started:call", "http_request:call", "http_response:call",
			"block_finished:call", "log:report", "block_finished:report", "block_skipped:never", "run_finished:"} {
			if !strings.Contains(got, want) {
				t.Errorf("events lack %s: %s", want, got)
			}
		}
		// Every surface: API responses, stored rows, server logs.
		stream := s.Do("GET", "/api/v1/runs/"+id+"/events?follow=1", nil)
		list := s.Do("GET", "/api/v1/projects/billing/runs", nil)
		for name, text := range map[string]string{
			"run response": mustJSON(run), "events": mustJSON(ev), "event stream": string(stream.Body),
			"run list": string(list.Body), "database": apptest.DumpTables(t, s.App.DB), "server log": s.Logs.String(),
		} {
			apptest.AssertAbsent(t, name, text, canaryToken, canaryPEM, strings.Split(canaryPEM, "\n")[1])
		}
		if !strings.Contains(string(stream.Body), "event: end") {
			t.Errorf("stream did not end: %.300s", stream.Body)
		}
	})
}

// An endpoint echoes the Authorization header: the next block gets the
// real value, while every stored view shows it masked.
func TestEchoedSecretStaysRealInsideTheRun(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		srv, _ := target(t)
		var second sync.Map
		check := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			second.Store("auth", r.Header.Get("X-Echoed"))
			w.WriteHeader(204)
		}))
		defer check.Close()
		flow := map[string]any{
			"name": "echo", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "first", "type": "http", "config": map[string]any{
					"url": "'" + srv.URL + "/x'", "headers": "({Authorization: 'Bearer ' + secrets.API_TOKEN})"}},
				map[string]any{"id": "second", "type": "http", "config": map[string]any{
					"url": "'" + check.URL + "/y'", "headers": "({'X-Echoed': steps.first.output.body.echo_auth})"}},
			},
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow)
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/echo/runs?wait=60s", map[string]any{"environment": "development"})
		if run["status"] != "succeeded" {
			t.Fatalf("run: %v", run)
		}
		if v, _ := second.Load("auth"); v != "Bearer "+canaryToken {
			t.Fatalf("second block got %q, want the real echoed value", v)
		}
		ev := s.Do("GET", "/api/v1/runs/"+run["id"].(string)+"/events", nil)
		if !strings.Contains(string(ev.Body), "[REDACTED") {
			t.Errorf("events show no mask: %.500s", ev.Body)
		}
		apptest.AssertAbsent(t, "events", string(ev.Body), canaryToken)
		apptest.AssertAbsent(t, "database", apptest.DumpTables(t, s.App.DB), canaryToken)
	})
}

func TestBadFlowsAndRuns(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		bad := map[string]any{
			"name": "bad", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{
				map[string]any{"id": "a", "type": "http", "config": map[string]any{"url": "`https://x/${secrets.API_TOKEN`"}},
				map[string]any{"id": "a", "type": "nope"},
				map[string]any{"id": "c", "type": "log", "if": "steps.zzz.output ==", "config": map[string]any{"message": "steps.later.output"}},
				map[string]any{"id": "later", "type": "code", "config": map[string]any{"code": "return (1 +;"}},
			},
		}
		r := s.Do("POST", "/api/v1/projects/billing/flows", bad)
		if r.Status != 400 {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		probs := r.JSON(t)["error"].(map[string]any)["problems"].([]any)
		text := mustJSON(probs)
		for _, want := range []string{`"block":"a","column":32,"field":"url","line":1`, "duplicate block id", `unknown block type \"nope\"`,
			`"block":"c","column":19,"field":"if","line":1`, "steps.later is not an earlier block", `"block":"later","column":12,"field":"code","line":1`} {
			if !strings.Contains(text, want) {
				t.Errorf("problems lack %s: %s", want, text)
			}
		}
		if r := s.Do("POST", "/api/v1/projects/billing/flows/missing/runs", map[string]any{"environment": "development"}); r.Status != 404 {
			t.Errorf("unknown flow: %d %s", r.Status, r.Body)
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "ok", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'hi'"}}}})
		big := map[string]any{"environment": "development", "input": strings.Repeat("x", 300<<10)}
		if r := s.Do("POST", "/api/v1/projects/billing/flows/ok/runs", big); r.Status != 413 {
			t.Errorf("big input: %d %s", r.Status, r.Body)
		}
		if r := s.Do("POST", "/api/v1/projects/billing/flows/ok/runs", map[string]any{"environment": "moon"}); r.Status != 400 ||
			!strings.Contains(string(r.Body), "use one of: development, production, staging") {
			t.Errorf("unknown environment: %d %s", r.Status, r.Body)
		}
		// A project that does not exist is a 404 on every route, also
		// for an admin; a list does not answer an empty 200.
		for _, p := range []string{"/api/v1/projects/nope/flows", "/api/v1/projects/nope/runs", "/api/v1/projects/nope/installations"} {
			if r := s.Do("GET", p, nil); r.Status != 404 || !strings.Contains(string(r.Body), `project \"nope\" not found`) {
				t.Errorf("GET %s: %d %s", p, r.Status, r.Body)
			}
		}
		// Webhooks reveal nothing: a missing project, a missing flow and a
		// flow without a webhook trigger answer the same.
		var bodies []string
		for _, p := range []string{"/hooks/nope/x", "/hooks/billing/missing", "/hooks/billing/ok"} {
			r := s.DoToken("", "POST", p, "{}")
			if r.Status != 404 {
				t.Errorf("POST %s: %d %s", p, r.Status, r.Body)
			}
			var e struct {
				Error struct{ Message string } `json:"error"`
			}
			_ = json.Unmarshal(r.Body, &e)
			bodies = append(bodies, strings.Split(e.Error.Message, " ")[0])
		}
		if bodies[0] != bodies[1] || bodies[1] != bodies[2] {
			t.Errorf("webhook 404s differ: %q", bodies)
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestConcurrencyLimitPerFlow(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "slow", "max_concurrent_runs": 2,
			"trigger": map[string]any{"type": "manual"},
			"blocks":  []any{map[string]any{"id": "wait", "type": "delay", "config": map[string]any{"duration": "'10s'"}}}})
		var ids []string
		for i := 0; i < 2; i++ {
			ids = append(ids, s.Must(202, "POST", "/api/v1/projects/billing/flows/slow/runs", map[string]any{"environment": "development"})["id"].(string))
		}
		r := s.Do("POST", "/api/v1/projects/billing/flows/slow/runs", map[string]any{"environment": "development"})
		if r.Status != 429 || !strings.Contains(string(r.Body), "max_concurrent_runs") || r.Header.Get("Retry-After") != "1" {
			t.Fatalf("third run: %d %v %s", r.Status, r.Header, r.Body)
		}
		for _, id := range ids {
			s.Must(200, "POST", "/api/v1/runs/"+id+"/cancel", nil)
		}
	})
}

// The server-wide default bound (counted at most once a second while a
// flow is under half of it) still refuses the run over it.
func TestConcurrencyLimitDefault(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "slow",
			"trigger": map[string]any{"type": "manual"},
			"blocks":  []any{map[string]any{"id": "wait", "type": "delay", "config": map[string]any{"duration": "'10s'"}}}})
		var ids []string
		for range 4 {
			ids = append(ids, s.Must(202, "POST", "/api/v1/projects/billing/flows/slow/runs", map[string]any{"environment": "development"})["id"].(string))
		}
		r := s.Do("POST", "/api/v1/projects/billing/flows/slow/runs", map[string]any{"environment": "development"})
		if r.Status != 429 || !strings.Contains(string(r.Body), "max_concurrent_runs") {
			t.Fatalf("fifth run: %d %s", r.Status, r.Body)
		}
		for _, id := range ids {
			s.Must(200, "POST", "/api/v1/runs/"+id+"/cancel", nil)
		}
	}, func(c *app.Config) { c.MaxConcurrentRuns = 4 })
}

// A run-time expression error names the block, the field, the position and
// the unknown secret's scope, each once.
func TestRunErrorNamesBlockOnce(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "miss",
			"trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "call", "type": "log", "config": map[string]any{
				"message": "`token ${secrets.NOT_DEFINED_ANYWHERE}`"}}}})
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/miss/runs?wait=30s", map[string]any{"environment": "development"})
		msg, _ := run["error"].(string)
		if run["status"] != "failed" || strings.Count(msg, `block "call"`) != 1 || !strings.Contains(msg, `field "message"`) ||
			strings.Contains(msg, "field message:") || !strings.Contains(msg, `"NOT_DEFINED_ANYWHERE"`) || !strings.Contains(msg, "environment development") {
			t.Fatalf("run error: %q", msg)
		}
		// The inspector shows the block starting, then failing.
		ev := s.Must(200, "GET", "/api/v1/runs/"+run["id"].(string)+"/events", nil)
		var types []string
		for _, e := range ev["events"].([]any) {
			types = append(types, e.(map[string]any)["type"].(string))
		}
		if got := strings.Join(types, ","); got != "run_queued,run_started,block_started,block_failed,run_finished" {
			t.Fatalf("events: %s", got)
		}
	})
}

// A duration written as a constant ('168h', 7200000, '2' + 'h') is checked
// when the flow is saved: one a block would refuse when the run reaches
// it (a delay over 1h) or that is no duration is refused at once, naming
// the block and field; one computed at run time is not (the block checks
// it then), nor one within bounds.
func TestConstantDurationsCheckedAtSave(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		flow := func(name string, blocks ...any) map[string]any {
			return map[string]any{"name": name, "trigger": map[string]any{"type": "manual"}, "blocks": blocks}
		}
		delay := func(id, d string) map[string]any {
			return map[string]any{"id": id, "type": "delay", "timeout": "3h", "config": map[string]any{"duration": d}}
		}
		r := s.Do("POST", "/api/v1/projects/billing/flows", flow("long",
			map[string]any{"id": "first", "type": "log", "config": map[string]any{"message": "'hi'"}},
			delay("week", "'168h'"), delay("ms", "7200000"), delay("sum", "'2' + 'h'"), delay("word", "'soon'")))
		if r.Status != 400 {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
		text := mustJSON(r.JSON(t)["error"].(map[string]any)["problems"])
		for _, want := range []string{
			`"block":"week","field":"duration","message":"168h0m0s is not between 0 and 1h0m0s, the most a delay block allows"`,
			`"block":"ms","field":"duration","message":"2h0m0s is not between 0 and 1h0m0s`,
			`"block":"sum","field":"duration","message":"2h0m0s is not between 0 and 1h0m0s`,
			`"block":"word","field":"duration","message":"not a duration`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("problems lack %s: %s", want, text)
			}
		}
		if strings.Contains(text, `"block":"first"`) {
			t.Errorf("a problem for a block without one: %s", text)
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("fine", delay("short", "'30m'"), delay("computed", "input.wait")))
		// Any constant of the wrong type for its field: a flow block's
		// version failed only when the run reached it ("json: cannot
		// unmarshal string into Go struct field Flow.version of type int").
		call := func(id, version string) map[string]any {
			return map[string]any{"id": id, "type": "flow", "config": map[string]any{"flow": "'fine'", "version": version}}
		}
		r = s.Do("POST", "/api/v1/projects/billing/flows", flow("typed", call("str", "'3'"), call("frac", "2.5"),
			map[string]any{"id": "obj", "type": "http", "config": map[string]any{"url": "'https://example.com'", "method": "({})"}}))
		text = mustJSON(r.JSON(t)["error"].(map[string]any)["problems"])
		for _, want := range []string{
			`"block":"str","field":"version","message":"version is a string, where a whole number is wanted"`,
			`"block":"frac","field":"version","message":"version is the number 2.5, where a whole number is wanted"`,
			`"block":"obj","field":"method","message":"method is an object, where a string is wanted"`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("problems lack %s: %s", want, text)
			}
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", flow("typed-ok", call("pinned", "1"), call("computed", "input.v")))
	})
}
