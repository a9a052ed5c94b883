package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hushflow/hushflow/apps"
	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/blocks/app"
	"github.com/hushflow/hushflow/blocks/blockstest"
	"github.com/hushflow/hushflow/egress"
	"github.com/hushflow/hushflow/engine/ordered"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

// Planted secrets.
const (
	slackToken = `xoxb-CANARY-7391&<a>"%\bot`
	anthKey    = `sk-ant-CANARY-55&<k>"%\key`
)

func secrets() map[string]string {
	return map[string]string{"DEMO_BOT_SLACK_BOT_TOKEN": slackToken, "ANTHROPIC_API_KEY": anthKey}
}

func TestContract(t *testing.T) { blockstest.Run(t, app.Info()) }

// setup returns a service with a project "p" on SQLite.
func setup(t *testing.T) *apps.Service {
	t.Helper()
	db := storetest.Open(t, storetest.SQLiteConfig(t), schema.All())
	if _, err := projects.NewService(db).Create(context.Background(), "p", "admin"); err != nil {
		t.Fatal(err)
	}
	return apps.NewService(db, nil)
}

func install(t *testing.T, s *apps.Service, appName, name string, cfg map[string]string) {
	t.Helper()
	if _, _, err := s.Create(context.Background(), "p", apps.Request{App: appName, Name: name, Config: cfg}, "t"); err != nil {
		t.Fatal(err)
	}
}

func run(h *blockstest.Harness, s *apps.Service, cfg map[string]any) (map[string]any, error) {
	out, err := h.Run(context.Background(), app.Info(), cfg, &blocks.Env{Apps: s})
	if err != nil {
		return nil, err
	}
	return out.(map[string]any), nil
}

// slackServer checks the exact request chat.postMessage expects.
func slackServer(t *testing.T, answer func(body map[string]any) string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		switch {
		case r.Method != "POST" || r.URL.Path != "/api/chat.postMessage":
			w.Write([]byte(`{"ok":false,"error":"unknown_method"}`))
		case r.Header.Get("Authorization") != "Bearer "+slackToken:
			w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
		case r.Header.Get("Content-Type") != "application/json; charset=utf-8":
			w.Write([]byte(`{"ok":false,"error":"invalid_form_data"}`))
		case json.Unmarshal(raw, &body) != nil:
			w.Write([]byte(`{"ok":false,"error":"invalid_json"}`))
		default:
			w.Write([]byte(answer(body)))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSlack(t *testing.T) {
	srv := slackServer(t, func(b map[string]any) string {
		if b["channel"] != "C0123" {
			return `{"ok":false,"error":"channel_not_found"}`
		}
		return `{"ok":true,"channel":"C0123","ts":"1700000000.000100","message":{"text":` + mustJSON(b["text"]) + `}}`
	})
	s := setup(t)
	install(t, s, "slack", "demo-bot", map[string]string{
		"bot_token": "secrets.DEMO_BOT_SLACK_BOT_TOKEN",
		"base_url":  "'" + srv.URL + "/api'",
	})
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	out, err := run(h, s, map[string]any{"installation": "demo-bot", "action": "post_message",
		"with": map[string]any{"channel": "C0123", "text": "Order 42 shipped"}})
	if err != nil {
		t.Fatal(err)
	}
	body := ordered.Plain(out["body"]).(map[string]any)
	if out["status"] != 200 || body["ok"] != true || body["ts"] != "1700000000.000100" {
		t.Fatalf("%v", out)
	}
	ev := h.EventsOf("http_request")[0].Data
	if ev["headers"].(map[string]any)["Authorization"] != "[REDACTED:DEMO_BOT_SLACK_BOT_TOKEN]" {
		t.Fatalf("event headers %v", ev["headers"])
	}
	// Slack answers 200 with ok=false: an error naming the code.
	_, err = run(h, s, map[string]any{"installation": "demo-bot", "action": "post_message",
		"with": map[string]any{"channel": "C999", "text": "x"}})
	if err == nil || !strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("%v", err)
	}
	h.AssertNoLeak(err.Error())
	for _, c := range []map[string]any{
		{"installation": "nope", "action": "post_message", "with": map[string]any{"channel": "C"}},
		{"installation": "demo-bot", "action": "nope"},
		{"installation": "demo-bot", "action": "post_message", "with": map[string]any{"text": "no channel"}},
	} {
		if _, err := run(h, s, c); err == nil {
			t.Errorf("%v accepted", c)
		} else {
			h.AssertNoLeak(err.Error())
		}
	}
}

func TestAnthropic(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		var body struct {
			Model     string `json:"model"`
			MaxTokens int    `json:"max_tokens"`
			Messages  []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
		}
		raw, _ := io.ReadAll(r.Body)
		got.Store(string(raw))
		if r.Header.Get("X-Api-Key") != anthKey {
			w.WriteHeader(401)
			w.Write([]byte(`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`))
			return
		}
		if r.Method != "POST" || r.URL.Path != "/v1/messages" || r.Header.Get("Anthropic-Version") != "2023-06-01" ||
			r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "" ||
			json.Unmarshal(raw, &body) != nil || body.Model == "" || body.MaxTokens <= 0 || len(body.Messages) == 0 || body.Messages[0].Role != "user" {
			w.WriteHeader(400)
			w.Write([]byte(`{"type":"error","error":{"type":"invalid_request_error","message":"bad request shape"}}`))
			return
		}
		w.Write([]byte(`{"id":"msg_01","type":"message","role":"assistant","model":"` + body.Model +
			`","content":[{"type":"text","text":"Hi!"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":2}}`))
	}))
	defer srv.Close()
	s := setup(t)
	install(t, s, "anthropic", "claude", map[string]string{"api_key": "secrets.ANTHROPIC_API_KEY", "base_url": "'" + srv.URL + "'"})
	install(t, s, "anthropic", "claude-bad", map[string]string{"api_key": "secrets.DEMO_BOT_SLACK_BOT_TOKEN", "base_url": "'" + srv.URL + "'"})
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	with := map[string]any{"messages": []any{map[string]any{"role": "user", "content": "Hello"}}, "max_tokens": 64.0}
	out, err := run(h, s, map[string]any{"installation": "claude", "action": "create_message", "with": with})
	if err != nil {
		t.Fatal(err)
	}
	body := ordered.Plain(out["body"]).(map[string]any)
	if body["content"].([]any)[0].(map[string]any)["text"] != "Hi!" || body["model"] != "claude-sonnet-4-5" {
		t.Fatalf("%v", body)
	}
	if g := got.Load().(string); g != `{"max_tokens":64,"messages":[{"content":"Hello","role":"user"}],"model":"claude-sonnet-4-5"}` {
		t.Fatalf("body sent: %s", g)
	}
	if ev := h.EventsOf("http_request")[0].Data; ev["headers"].(map[string]any)["X-Api-Key"] != "[REDACTED:ANTHROPIC_API_KEY]" {
		t.Fatalf("%v", ev["headers"])
	}
	_, err = run(h, s, map[string]any{"installation": "claude-bad", "action": "create_message", "with": with})
	if err == nil || !strings.Contains(err.Error(), "status 401: authentication_error") {
		t.Fatalf("%v", err)
	}
	h.AssertNoLeak(err.Error())
}

func TestBearerAPI(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+slackToken || r.URL.Path != "/v1/items" || r.URL.Query().Get("limit") != "2" {
			w.WriteHeader(403)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`[{"id":1},{"id":2}]`))
	}))
	defer srv.Close()
	s := setup(t)
	install(t, s, "bearer_api", "api", map[string]string{"token": "secrets.DEMO_BOT_SLACK_BOT_TOKEN", "base_url": "'" + srv.URL + "'"})
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	out, err := run(h, s, map[string]any{"installation": "api", "action": "request",
		"with": map[string]any{"path": "/v1/items", "query": map[string]any{"limit": 2.0}}})
	if err != nil || len(out["body"].([]any)) != 2 {
		t.Fatalf("%v %v", out, err)
	}
	h.AssertNoLeak()
}

// TestEgress: an installation's base_url cannot reach internal addresses
// by default, and a pinned token cannot be sent to another host through a
// base_url override.
func TestEgress(t *testing.T) {
	var hits atomic.Int32
	srv := slackServer(t, func(map[string]any) string { hits.Add(1); return `{"ok":true}` })
	s := setup(t)
	install(t, s, "slack", "demo-bot", map[string]string{"bot_token": "secrets.DEMO_BOT_SLACK_BOT_TOKEN", "base_url": "'" + srv.URL + "/api'"})
	cfg := map[string]any{"installation": "demo-bot", "action": "post_message", "with": map[string]any{"channel": "C0123", "text": "x"}}

	def := blockstest.NewHarness(t, secrets(), blockstest.Options{Policy: &egress.Policy{}})
	if _, err := run(def, s, cfg); !errors.Is(err, egress.ErrRefused) {
		t.Fatalf("default policy: %v", err)
	}
	pinned := blockstest.NewHarness(t, secrets(), blockstest.Options{Allowed: map[string][]string{"DEMO_BOT_SLACK_BOT_TOKEN": {"slack.com"}}})
	_, err := run(pinned, s, cfg)
	if !errors.Is(err, egress.ErrPinned) || !strings.Contains(err.Error(), `secret "DEMO_BOT_SLACK_BOT_TOKEN" may only be sent to slack.com, not 127.0.0.1`) {
		t.Fatalf("pinning: %v", err)
	}
	if r := pinned.Refused(); len(r) != 1 || r[0] != "DEMO_BOT_SLACK_BOT_TOKEN@127.0.0.1" {
		t.Fatalf("audit %v", r)
	}
	def.AssertNoLeak()
	pinned.AssertNoLeak(err.Error())
	if hits.Load() != 0 {
		t.Fatal("the request left")
	}
	// Pinned to the right host, it goes.
	ok := blockstest.NewHarness(t, secrets(), blockstest.Options{Allowed: map[string][]string{"DEMO_BOT_SLACK_BOT_TOKEN": {"127.0.0.1"}}})
	if _, err := run(ok, s, cfg); err != nil || hits.Load() != 1 {
		t.Fatalf("%v", err)
	}
}

func TestNoResolver(t *testing.T) {
	h := blockstest.NewHarness(t, nil, blockstest.Options{})
	// At save time there is no resolver and expression fields are absent.
	if _, err := h.Decode(app.Info(), map[string]any{"with": map[string]any{}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(context.Background(), app.Info(), map[string]any{"installation": "x", "action": "y"}, nil); err == nil {
		t.Fatal("ran without a resolver")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
