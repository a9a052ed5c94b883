package server_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/apps"
	"github.com/hushflow/hushflow/auth"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/server"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

// newAppsAPI is an API with installations; the project's secret names are
// DEMO_BOT_SLACK_BOT_TOKEN and DEMO_BOT_SLACK_SIGNING_SECRET.
func newAppsAPI(t *testing.T, db *store.DB) *api {
	t.Helper()
	authSvc := auth.New(auth.Config{DB: db})
	token, err := authSvc.Bootstrap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names := func(ctx context.Context, project string) ([]string, error) {
		return []string{"DEMO_BOT_SLACK_BOT_TOKEN", "DEMO_BOT_SLACK_SIGNING_SECRET"}, nil
	}
	s := server.New(server.Deps{DB: db, Auth: authSvc, Projects: projects.NewService(db), Apps: apps.NewService(db, names)})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &api{t: t, url: ts.URL, token: token, db: db}
}

func TestInstallations(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		a := newAppsAPI(t, db)
		for _, p := range []string{"alpha", "beta"} {
			if r := a.do("POST", "/api/v1/projects", map[string]string{"name": p}); r.Status != 201 {
				t.Fatalf("project: %d %s", r.Status, r.Body)
			}
		}
		r := a.do("GET", "/api/v1/apps", nil)
		if r.Status != 200 || !strings.Contains(string(r.Body), `"post_message"`) || !strings.Contains(string(r.Body), `"create_message"`) {
			t.Fatalf("apps: %d %s", r.Status, r.Body)
		}
		body := map[string]any{"app": "slack", "name": "demo-bot", "config": map[string]string{
			"bot_token":      "secrets.DEMO_BOT_SLACK_BOT_TOKEN",
			"signing_secret": "secrets.DEMO_BOT_SLACK_SIGNING_SECRET",
		}}
		r = a.do("POST", "/api/v1/projects/alpha/installations", body)
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		got := r.JSON(t)
		if got["config"].(map[string]any)["bot_token"] != "secrets.DEMO_BOT_SLACK_BOT_TOKEN" || got["warnings"] != nil {
			t.Fatalf("%s", r.Body)
		}
		if r := a.do("POST", "/api/v1/projects/alpha/installations", body); r.Status != 409 {
			t.Fatalf("duplicate: %d %s", r.Status, r.Body)
		}
		// A secret name that resolves nowhere is a warning.
		r = a.do("POST", "/api/v1/projects/alpha/installations", map[string]any{"app": "anthropic", "name": "claude",
			"config": map[string]string{"api_key": "secrets.ANTHROPIC_API_KEY"}})
		if r.Status != 201 || !strings.Contains(string(r.Body), `"warnings":["secret \"ANTHROPIC_API_KEY\"`) {
			t.Fatalf("warning: %d %s", r.Status, r.Body)
		}
		for _, c := range []struct {
			body any
			code string
		}{
			{map[string]any{"app": "slack", "name": "x", "config": map[string]string{"bot_token": "'xoxb-literal-123'"}}, "literal_secret"},
			{map[string]any{"app": "slack", "name": "x", "config": map[string]string{"bot_token": "secrets."}}, "invalid_expression"},
			{map[string]any{"app": "nope", "name": "x"}, "unknown_app"},
			{map[string]any{"app": "slack", "name": "x", "extra": 1}, "unknown_field"},
		} {
			r := a.do("POST", "/api/v1/projects/alpha/installations", c.body)
			if r.Status != 400 || !strings.Contains(string(r.Body), c.code) {
				t.Errorf("%v: %d %s", c.body, r.Status, r.Body)
			}
			if strings.Contains(string(r.Body), "xoxb-literal-123") {
				t.Errorf("error echoes the literal: %s", r.Body)
			}
		}
		r = a.do("GET", "/api/v1/projects/alpha/installations", nil)
		if r.Status != 200 || len(r.JSON(t)["installations"].([]any)) != 2 {
			t.Fatalf("list: %d %s", r.Status, r.Body)
		}
		r = a.do("PUT", "/api/v1/projects/alpha/installations/demo-bot", map[string]any{"config": map[string]string{
			"bot_token": "secrets.DEMO_BOT_SLACK_BOT_TOKEN", "base_url": "'http://127.0.0.1:8080/api'"}})
		if r.Status != 200 || r.JSON(t)["config"].(map[string]any)["base_url"] != "'http://127.0.0.1:8080/api'" {
			t.Fatalf("update: %d %s", r.Status, r.Body)
		}
		if r := a.do("GET", "/api/v1/projects/alpha/installations/demo-bot", nil); r.Status != 200 {
			t.Fatalf("get: %d %s", r.Status, r.Body)
		}
		// Other projects: 404.
		if r := a.do("GET", "/api/v1/projects/beta/installations/demo-bot", nil); r.Status != 404 {
			t.Fatalf("other project: %d", r.Status)
		}
		if r := a.do("GET", "/api/v1/projects/nope/installations", nil); r.Status != 404 {
			t.Fatalf("no project: %d", r.Status)
		}

		// Roles: a viewer reads, cannot write; a non-member gets 404.
		uid := a.do("POST", "/api/v1/users", map[string]any{"name": "dev"}).JSON(t)["id"].(string)
		tok := a.do("POST", "/api/v1/users/"+uid+"/tokens", map[string]string{"name": "dev"}).JSON(t)["token"].(string)
		if r := a.doToken(tok, "GET", "/api/v1/projects/alpha/installations", nil); r.Status != 404 {
			t.Fatalf("non-member: %d", r.Status)
		}
		a.do("PUT", "/api/v1/projects/alpha/members/"+uid, map[string]string{"role": "viewer"})
		if r := a.doToken(tok, "GET", "/api/v1/projects/alpha/installations/demo-bot", nil); r.Status != 200 {
			t.Fatalf("viewer read: %d", r.Status)
		}
		if r := a.doToken(tok, "DELETE", "/api/v1/projects/alpha/installations/demo-bot", nil); r.Status != 403 {
			t.Fatalf("viewer delete: %d", r.Status)
		}
		if r := a.doToken(tok, "POST", "/api/v1/projects/alpha/installations", body); r.Status != 403 {
			t.Fatalf("viewer create: %d", r.Status)
		}
		a.do("PUT", "/api/v1/projects/alpha/members/"+uid, map[string]string{"role": "editor"})
		if r := a.doToken(tok, "DELETE", "/api/v1/projects/alpha/installations/demo-bot", nil); r.Status != 204 {
			t.Fatalf("editor delete: %d %s", r.Status, r.Body)
		}
		if r := a.do("DELETE", "/api/v1/projects/alpha/installations/demo-bot", nil); r.Status != 404 {
			t.Fatalf("delete twice: %d", r.Status)
		}
	})
}
