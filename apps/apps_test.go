package apps_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/apps"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

func TestManifests(t *testing.T) {
	want := map[string]string{"slack": "post_message", "anthropic": "create_message", "bearer_api": "request"}
	for _, m := range apps.Manifests() {
		if a, ok := want[m.Name]; ok {
			if m.Actions[a] == nil {
				t.Errorf("%s has no action %s", m.Name, a)
			}
			delete(want, m.Name)
		}
		for _, f := range m.Config {
			if f.Doc == "" {
				t.Errorf("%s.%s has no doc", m.Name, f.Name)
			}
		}
	}
	if len(want) != 0 {
		t.Fatalf("missing manifests %v", want)
	}
	if m, _ := apps.Lookup("slack"); m.Webhook == nil || m.Webhook.Verify != "slack" {
		t.Fatal("slack has no webhook verification")
	}
}

func TestBuild(t *testing.T) {
	ctx := context.Background()
	slack, _ := apps.Lookup("slack")
	req, err := slack.Build(ctx, "post_message", map[string]string{"bot_token": "xoxb-1"}, map[string]any{"channel": "C1", "text": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	if req.Method != "POST" || req.URL.String() != "https://slack.com/api/chat.postMessage" ||
		req.Header.Get("Authorization") != "Bearer xoxb-1" || req.Header.Get("Content-Type") != "application/json; charset=utf-8" ||
		string(body) != `{"channel":"C1","text":"hi"}` {
		t.Fatalf("%s %s %v %s", req.Method, req.URL, req.Header, body)
	}
	if _, err := slack.Build(ctx, "post_message", map[string]string{"bot_token": "x"}, map[string]any{"text": "hi"}); err == nil ||
		!strings.Contains(err.Error(), "with.channel is required") {
		t.Fatalf("missing input: %v", err)
	}
	if _, err := slack.Build(ctx, "nope", nil, nil); err == nil || !strings.Contains(err.Error(), "post_message") {
		t.Fatalf("unknown action: %v", err)
	}

	anth, _ := apps.Lookup("anthropic")
	req, err = anth.Build(ctx, "create_message", map[string]string{"api_key": "k", "base_url": "http://127.0.0.1:9/"},
		map[string]any{"messages": []any{map[string]any{"role": "user", "content": "Hello"}}, "max_tokens": 50.0})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(req.Body)
	if req.URL.String() != "http://127.0.0.1:9/v1/messages" || req.Header.Get("X-Api-Key") != "k" ||
		string(body) != `{"max_tokens":50,"messages":[{"content":"Hello","role":"user"}],"model":"claude-sonnet-4-5"}` {
		t.Fatalf("%s %v %s", req.URL, req.Header, body)
	}

	api, _ := apps.Lookup("bearer_api")
	req, err = api.Build(ctx, "request", map[string]string{"token": "t", "base_url": "https://api.example.com/base"},
		map[string]any{"path": "/v1/items/a b", "query": map[string]any{"limit": 2.0}})
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != "GET" || req.URL.String() != "https://api.example.com/base/v1/items/a%20b?limit=2" || req.Body != nil {
		t.Fatalf("%s %s", req.Method, req.URL)
	}
	for _, p := range []string{"/../admin", "@evil.example/x"} {
		req, err := api.Build(ctx, "request", map[string]string{"token": "t", "base_url": "https://api.example.com"}, map[string]any{"path": p})
		if err == nil && req.URL.Host != "api.example.com" {
			t.Fatalf("path %q escaped the base URL: %s", p, req.URL)
		} else if err == nil && strings.Contains(req.URL.Path, "..") {
			t.Fatalf("path %q: %s", p, req.URL)
		}
	}
	if _, err := api.Build(ctx, "request", map[string]string{"token": "t"}, map[string]any{"path": "/"}); err == nil {
		t.Fatal("bearer_api without base_url")
	}
	if _, err := api.Build(ctx, "request", map[string]string{"token": "t\r\nX-Evil: 1", "base_url": "https://a.example"}, map[string]any{"path": "/"}); err == nil {
		t.Fatal("header injection")
	}
}

func TestVerifySlack(t *testing.T) {
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	body := []byte(`token=x&team_id=T1&command=/weather&text=94070`)
	now := time.Unix(1_700_000_000, 0)
	good := apps.SignSlack(secret, body, now.Add(-time.Minute))
	if err := apps.VerifySlack(secret, good, body, now); err != nil {
		t.Fatalf("correct signature: %v", err)
	}
	// Slack's documented example.
	doc := http.Header{}
	doc.Set("X-Slack-Request-Timestamp", "1531420618")
	doc.Set("X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")
	docBody := []byte("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
	if err := apps.VerifySlack(secret, doc, docBody, time.Unix(1531420618, 0)); err != nil {
		t.Fatalf("Slack's example: %v", err)
	}
	wrongSig := apps.SignSlack("another-secret", body, now)
	stale := apps.SignSlack(secret, body, now.Add(-10*time.Minute))
	future := apps.SignSlack(secret, body, now.Add(10*time.Minute))
	for name, c := range map[string]struct {
		h    http.Header
		body []byte
	}{
		"wrong secret":    {wrongSig, body},
		"stale":           {stale, body},
		"future":          {future, body},
		"tampered body":   {good, append([]byte("x"), body...)},
		"missing headers": {http.Header{}, body},
	} {
		err := apps.VerifySlack(secret, c.h, c.body, now)
		if !errors.Is(err, apps.ErrSignature) {
			t.Errorf("%s: %v", name, err)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error shows the secret", name)
		}
	}
}

func TestVerifyGitHub(t *testing.T) {
	// GitHub's documented example.
	h := http.Header{}
	h.Set("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	if err := apps.VerifyGitHub("It's a Secret to Everybody", h, []byte("Hello, World!")); err != nil {
		t.Fatal(err)
	}
	if err := apps.VerifyGitHub("wrong", h, []byte("Hello, World!")); !errors.Is(err, apps.ErrSignature) {
		t.Fatal(err)
	}
	if err := apps.VerifyGitHub("It's a Secret to Everybody", http.Header{}, nil); !errors.Is(err, apps.ErrSignature) {
		t.Fatal(err)
	}
}

func newService(t *testing.T, db *store.DB) *apps.Service {
	t.Helper()
	if _, err := projects.NewService(db).Create(context.Background(), "p", "admin"); err != nil {
		t.Fatal(err)
	}
	return apps.NewService(db, func(ctx context.Context, project string) ([]string, error) {
		return []string{"DEMO_BOT_SLACK_BOT_TOKEN", "DEMO_BOT_SLACK_SIGNING_SECRET"}, nil
	})
}

func TestService(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := newService(t, db)
		good := apps.Request{App: "slack", Name: "demo-bot", Config: map[string]string{
			"bot_token":      "secrets.DEMO_BOT_SLACK_BOT_TOKEN",
			"signing_secret": "secrets['DEMO_BOT_SLACK_SIGNING_SECRET']",
		}}
		inst, warnings, err := s.Create(ctx, "p", good, "alice")
		if err != nil || len(warnings) != 0 {
			t.Fatalf("%v %v", warnings, err)
		}
		if inst.Config["bot_token"] != "secrets.DEMO_BOT_SLACK_BOT_TOKEN" || inst.CreatedBy != "alice" || inst.Project != "p" {
			t.Fatalf("%+v", inst)
		}
		if _, _, err := s.Create(ctx, "p", good, "alice"); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate: %v", err)
		}
		for name, c := range map[string]struct {
			r    apps.Request
			code string
		}{
			"unknown app":    {apps.Request{App: "nope", Name: "x"}, "unknown_app"},
			"bad name":       {apps.Request{App: "slack", Name: "Bad Name", Config: good.Config}, "invalid_name"},
			"missing":        {apps.Request{App: "slack", Name: "x", Config: map[string]string{}}, "invalid_config"},
			"unknown field":  {apps.Request{App: "slack", Name: "x", Config: map[string]string{"bot_token": "secrets.A", "colour": "'red'"}}, "invalid_config"},
			"syntax":         {apps.Request{App: "slack", Name: "x", Config: map[string]string{"bot_token": "secrets.A +"}}, "invalid_expression"},
			"literal secret": {apps.Request{App: "slack", Name: "x", Config: map[string]string{"bot_token": "'xoxb-123'"}}, "literal_secret"},
			// Issue 16 item 5: a reference does not excuse a literal token.
			"literal beside a secret": {apps.Request{App: "slack", Name: "x", Config: map[string]string{"bot_token": "secrets.A || 'xoxb-1234-5678-abcdef'"}}, "literal_secret"},
			"literal in a template":   {apps.Request{App: "slack", Name: "x", Config: map[string]string{"bot_token": "`${secrets.A}xoxb-1234-5678-abcdef`"}}, "literal_secret"},
			"no base_url":             {apps.Request{App: "bearer_api", Name: "x", Config: map[string]string{"token": "secrets.A"}}, "invalid_config"},
			"too long a name":         {apps.Request{App: "slack", Name: strings.Repeat("a", 64), Config: good.Config}, "invalid_name"},
		} {
			_, _, err := s.Create(ctx, "p", c.r, "alice")
			if e, ok := apperr.As(err); !ok || e.Code != c.code {
				t.Errorf("%s: %v, want %s", name, err, c.code)
			}
		}
		// A name that resolves nowhere is a warning, not an error.
		_, warnings, err = s.Create(ctx, "p", apps.Request{App: "bearer_api", Name: "api", Config: map[string]string{
			"token": "secrets.MISSING_TOKEN", "base_url": "'https://api.example.com'"}}, "bob")
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "MISSING_TOKEN") {
			t.Fatalf("%v %v", warnings, err)
		}
		list, err := s.List(ctx, "p")
		if err != nil || len(list) != 2 || list[0].Name != "api" {
			t.Fatalf("%v %v", list, err)
		}
		up, _, err := s.Update(ctx, "p", "demo-bot", apps.Request{Config: map[string]string{
			"bot_token": "secrets.DEMO_BOT_SLACK_BOT_TOKEN", "base_url": "'http://127.0.0.1:1'"}}, "carol")
		if err != nil || up.Config["base_url"] != "'http://127.0.0.1:1'" || up.UpdatedBy != "carol" || up.App != "slack" {
			t.Fatalf("%+v %v", up, err)
		}
		if _, _, err := s.Update(ctx, "p", "demo-bot", apps.Request{App: "anthropic", Config: good.Config}, "x"); err == nil {
			t.Fatal("app changed")
		}
		got, err := s.Get(ctx, "p", "demo-bot")
		if err != nil || got.Config["base_url"] == "" || got.CreatedBy != "alice" {
			t.Fatalf("%+v %v", got, err)
		}
		if err := s.Delete(ctx, "p", "demo-bot"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, "p", "demo-bot"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "p", "demo-bot"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if _, err := s.List(ctx, "other"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}

		// Webhook verification with the installation's signing secret.
		const signing = "sig-secret-0123456789"
		if _, _, err := s.Create(ctx, "p", good, "alice"); err != nil {
			t.Fatal(err)
		}
		eval := func(_ context.Context, expr string) (any, error) {
			if expr == "secrets['DEMO_BOT_SLACK_SIGNING_SECRET']" {
				return signing, nil
			}
			return nil, errors.New("unexpected " + expr)
		}
		body, _ := json.Marshal(map[string]any{"type": "event_callback"})
		if err := s.VerifyWebhook(ctx, "p", "demo-bot", eval, apps.SignSlack(signing, body, time.Now()), body); err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyWebhook(ctx, "p", "demo-bot", eval, apps.SignSlack("wrong", body, time.Now()), body); !errors.Is(err, apps.ErrSignature) {
			t.Fatal(err)
		}
	})
}

// Issue 15: which actions may be sent again after an interruption.
func TestRepeatSafe(t *testing.T) {
	for _, c := range []struct {
		app, action string
		with        map[string]any
		safe        bool
	}{
		{"slack", "post_message", map[string]any{"channel": "C1"}, false},
		{"anthropic", "create_message", nil, true}, // marked idempotent
		{"bearer_api", "request", map[string]any{"method": "GET", "path": "/x"}, true},
		{"bearer_api", "request", map[string]any{"path": "/x"}, true}, // GET by default
		{"bearer_api", "request", map[string]any{"method": "delete", "path": "/x"}, true},
		{"bearer_api", "request", map[string]any{"method": "POST", "path": "/x"}, false},
		{"slack", "no_such_action", nil, false},
	} {
		m, _ := apps.Lookup(c.app)
		if got := m.RepeatSafe(c.action, c.with); got != c.safe {
			t.Errorf("%s.%s %v: safe %v, want %v", c.app, c.action, c.with, got, c.safe)
		}
	}
}
