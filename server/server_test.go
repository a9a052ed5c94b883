package server_test

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hushflow/hushflow/server"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
	"github.com/labstack/echo/v4"
)

func TestHealthAndReadiness(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		for _, p := range []string{"/healthz", "/readyz"} {
			if r := a.doToken("", "GET", p, nil); r.Status != http.StatusOK {
				t.Errorf("GET %s = %d %s", p, r.Status, r.Body)
			}
		}
	})
}

func TestAPIRequiresToken(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		for _, tok := range []string{"", "hf_wrong", "x"} {
			r := a.doToken(tok, "GET", "/api/v1/projects", nil)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("token %q: status %d, want 401", tok, r.Status)
			}
			if !strings.Contains(r.errorMessage(t), "Bearer") {
				t.Errorf("401 message does not say how to authenticate: %s", r.Body)
			}
		}
		// Unknown API routes do not reveal themselves without a token.
		if r := a.doToken("", "GET", "/api/v1/nothing-here", nil); r.Status != http.StatusUnauthorized {
			t.Errorf("unknown route without token: %d", r.Status)
		}
		// Tokens in the query string are refused even when valid.
		if r := a.doToken("", "GET", "/api/v1/projects?token="+a.token, nil); r.Status != http.StatusUnauthorized {
			t.Errorf("token in query: %d, want 401", r.Status)
		}
	})
}

// A path the API serves with other methods answers 405 with an Allow
// header listing them; a path it does not serve answers 404; neither
// without a token (401 first).
func TestWrongMethodIs405(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		for _, c := range []struct{ method, path, allow string }{
			{"DELETE", "/api/v1/projects", "GET, POST"},
			{"PATCH", "/api/v1/projects/p", "GET, DELETE"},
			{"POST", "/api/v1/whoami", "GET"},
		} {
			r := a.do(c.method, c.path, nil)
			if r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != c.allow {
				t.Errorf("%s %s: %d Allow %q, want 405 Allow %q: %s", c.method, c.path, r.Status, r.Header.Get("Allow"), c.allow, r.Body)
			}
			if r.Status == http.StatusMethodNotAllowed && r.JSON(t)["error"].(map[string]any)["code"] != "method_not_allowed" {
				t.Errorf("%s %s: %s", c.method, c.path, r.Body)
			}
			if r := a.doToken("", c.method, c.path, nil); r.Status != http.StatusUnauthorized {
				t.Errorf("%s %s without a token: %d", c.method, c.path, r.Status)
			}
		}
		if r := a.do("GET", "/api/v1/nothing-here", nil); r.Status != http.StatusNotFound || r.Header.Get("Allow") != "" {
			t.Errorf("unknown path: %d Allow %q", r.Status, r.Header.Get("Allow"))
		}
	})
}

func TestProjects(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		r := a.do("POST", "/api/v1/projects", map[string]string{"name": "billing"})
		if r.Status != http.StatusCreated || r.JSON(t)["name"] != "billing" {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", r.Header.Get("Cache-Control"))
		}
		if r := a.do("POST", "/api/v1/projects", map[string]string{"name": "billing"}); r.Status != http.StatusConflict {
			t.Errorf("duplicate: %d %s", r.Status, r.Body)
		}
		r = a.do("GET", "/api/v1/projects", nil)
		if ps := r.JSON(t)["projects"].([]any); len(ps) != 1 {
			t.Errorf("list: %s", r.Body)
		}
	})
}

func TestBadInput(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		cases := []struct {
			name   string
			body   any
			status int
			want   string
		}{
			{"uppercase", map[string]string{"name": "Billing"}, 400, "lowercase letters, digits and '-'"},
			{"empty", map[string]string{"name": ""}, 400, "1 to 63 characters"},
			{"too long", map[string]string{"name": strings.Repeat("a", 64)}, 400, "1 to 63"},
			{"underscore", map[string]string{"name": "a_b"}, 400, "invalid project name"},
			{"not json", "{", 400, "not valid JSON"},
			{"unknown field", `{"name":"ok","color":"red"}`, 400, `unknown field "color"; the fields are name`},
			{"mistyped field", `{"nam":"ok"}`, 400, `unknown field "nam"; did you mean "name"?`},
			{"wrong type", `{"name":5}`, 400, `"name" must be a string`},
			{"empty body", "", 400, "empty"},
			{"too deep", `{"name":` + strings.Repeat("[", 10_001), 400, "request body nests deeper than 10000 levels (at byte 10008)"},
			{"2 MiB", `{"name":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "limit of 1.5 MiB"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := a.do("POST", "/api/v1/projects", c.body)
				if r.Status != c.status {
					t.Fatalf("status %d, want %d: %s", r.Status, c.status, r.Body)
				}
				if msg := r.errorMessage(t); !strings.Contains(msg, c.want) {
					t.Errorf("message %q does not contain %q", msg, c.want)
				}
			})
		}
	})
}

func TestEnvironments(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		r := a.do("GET", "/api/v1/environments", nil)
		var names []string
		for _, e := range r.JSON(t)["environments"].([]any) {
			names = append(names, e.(map[string]any)["name"].(string))
		}
		if strings.Join(names, ",") != "development,production,staging" {
			t.Fatalf("default environments: %v", names)
		}
		if r := a.do("POST", "/api/v1/environments", map[string]string{"name": "qa"}); r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		if r := a.do("POST", "/api/v1/environments", map[string]string{"name": "QA!"}); r.Status != 400 {
			t.Fatalf("invalid: %d %s", r.Status, r.Body)
		}
	})
}

func TestTokens(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		r := a.do("POST", "/api/v1/tokens", map[string]string{"name": "ci"})
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		body := r.JSON(t)
		tok, id := body["token"].(string), body["id"].(string)
		if !strings.HasPrefix(tok, "hf_") {
			t.Fatalf("token %q", tok)
		}
		if r := a.doToken(tok, "GET", "/api/v1/projects", nil); r.Status != 200 {
			t.Fatalf("new token rejected: %d", r.Status)
		}
		// The list never carries a token or its hash.
		list := a.do("GET", "/api/v1/tokens", nil)
		if strings.Contains(string(list.Body), tok) || strings.Contains(string(list.Body), "hash") {
			t.Fatalf("token list leaks: %s", list.Body)
		}
		// Tokens are stored only as hashes.
		var n int64
		a.db.Table("tokens").Where("hash = ?", tok).Count(&n)
		if n != 0 {
			t.Fatal("raw token stored")
		}
		if r := a.do("DELETE", "/api/v1/tokens/"+id, nil); r.Status != 204 {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		if r := a.doToken(tok, "GET", "/api/v1/projects", nil); r.Status != 401 {
			t.Fatalf("revoked token: %d", r.Status)
		}
		// Revoking it again changes nothing; an unknown id, or a token for
		// an unknown user, is a 404 that names what is missing.
		if r := a.do("DELETE", "/api/v1/tokens/"+id, nil); r.Status != 204 {
			t.Errorf("revoke again: %d %s", r.Status, r.Body)
		}
		if r := a.do("DELETE", "/api/v1/tokens/no-such-token", nil); r.Status != 404 || !strings.Contains(string(r.Body), `token \"no-such-token\" not found`) {
			t.Errorf("revoke unknown: %d %s", r.Status, r.Body)
		}
		if r := a.do("POST", "/api/v1/users/no-such-user/tokens", map[string]string{"name": "x"}); r.Status != 404 || !strings.Contains(string(r.Body), `user \"no-such-user\" not found`) {
			t.Errorf("token for an unknown user: %d %s", r.Status, r.Body)
		}
		if r := a.do("POST", "/api/v1/tokens", map[string]string{"name": "x", "expires_in": "-1h"}); r.Status != 400 {
			t.Fatalf("negative expiry: %d", r.Status)
		}
		r = a.do("POST", "/api/v1/tokens", map[string]string{"name": "short", "expires_in": "1ns"})
		short := r.JSON(t)["token"].(string)
		if r := a.doToken(short, "GET", "/api/v1/projects", nil); r.Status != 401 {
			t.Fatalf("expired token: %d", r.Status)
		}
	})
}

func TestNonAdminCannotCreateProjects(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		r := a.do("POST", "/api/v1/users", map[string]any{"name": "dev"})
		if r.Status != 201 {
			t.Fatalf("create user: %d %s", r.Status, r.Body)
		}
		uid := r.JSON(t)["id"].(string)
		// A taken name is a conflict, as for projects and environments.
		if r := a.do("POST", "/api/v1/users", map[string]any{"name": "dev"}); r.Status != 409 || !strings.Contains(string(r.Body), `user \"dev\" already exists`) {
			t.Errorf("the same name again: %d %s", r.Status, r.Body)
		}
		r = a.do("POST", "/api/v1/users/"+uid+"/tokens", map[string]string{"name": "dev"})
		tok := r.JSON(t)["token"].(string)
		if r := a.doToken(tok, "POST", "/api/v1/projects", map[string]string{"name": "p"}); r.Status != 403 {
			t.Fatalf("non-admin create project: %d %s", r.Status, r.Body)
		}
	})
}

func TestMembersAndProjectIsolation(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		a.do("POST", "/api/v1/projects", map[string]string{"name": "alpha"})
		a.do("POST", "/api/v1/projects", map[string]string{"name": "beta"})
		uid := a.do("POST", "/api/v1/users", map[string]any{"name": "dev"}).JSON(t)["id"].(string)
		tok := a.do("POST", "/api/v1/users/"+uid+"/tokens", map[string]string{"name": "dev"}).JSON(t)["token"].(string)

		if r := a.do("PUT", "/api/v1/projects/alpha/members/"+uid, map[string]string{"role": "owner"}); r.Status != 400 {
			t.Fatalf("invalid role: %d %s", r.Status, r.Body)
		}
		if r := a.do("PUT", "/api/v1/projects/alpha/members/"+uid, map[string]string{"role": "viewer"}); r.Status != 200 {
			t.Fatalf("set member: %d %s", r.Status, r.Body)
		}
		// By name too; an unknown one is named in the 404.
		if r := a.do("PUT", "/api/v1/projects/alpha/members/dev", map[string]string{"role": "viewer"}); r.Status != 200 || r.JSON(t)["user_id"] != uid {
			t.Fatalf("set member by name: %d %s", r.Status, r.Body)
		}
		if r := a.do("PUT", "/api/v1/projects/alpha/members/nobody", map[string]string{"role": "viewer"}); r.Status != 404 || !strings.Contains(string(r.Body), `user \"nobody\" not found`) {
			t.Errorf("set an unknown member: %d %s", r.Status, r.Body)
		}
		// A project admin (not an organization admin, who cannot list
		// users) names users by id only: trying names tells nothing.
		eve := a.do("POST", "/api/v1/users", map[string]any{"name": "eve"}).JSON(t)["id"].(string)
		a.do("PUT", "/api/v1/projects/alpha/members/"+uid, map[string]string{"role": "admin"})
		if r := a.doToken(tok, "PUT", "/api/v1/projects/alpha/members/eve", map[string]string{"role": "viewer"}); r.Status != 404 {
			t.Errorf("a project admin sets a member by name: %d %s", r.Status, r.Body)
		}
		if r := a.doToken(tok, "PUT", "/api/v1/projects/alpha/members/"+eve, map[string]string{"role": "viewer"}); r.Status != 200 {
			t.Errorf("a project admin sets a member by id: %d %s", r.Status, r.Body)
		}
		a.do("DELETE", "/api/v1/projects/alpha/members/eve", nil)
		a.do("PUT", "/api/v1/projects/alpha/members/"+uid, map[string]string{"role": "viewer"})
		r := a.doToken(tok, "GET", "/api/v1/projects", nil)
		if ps := r.JSON(t)["projects"].([]any); len(ps) != 1 || ps[0].(map[string]any)["name"] != "alpha" {
			t.Fatalf("member sees %s", r.Body)
		}
		if r := a.doToken(tok, "GET", "/api/v1/projects/alpha", nil); r.Status != 200 {
			t.Fatalf("own project: %d", r.Status)
		}
		// Another project and a missing one look the same: 404.
		other := a.doToken(tok, "GET", "/api/v1/projects/beta", nil)
		missing := a.doToken(tok, "GET", "/api/v1/projects/nope", nil)
		if other.Status != 404 || missing.Status != 404 {
			t.Fatalf("other %d, missing %d", other.Status, missing.Status)
		}
		// A viewer cannot manage members.
		if r := a.doToken(tok, "PUT", "/api/v1/projects/alpha/members/"+uid, map[string]string{"role": "admin"}); r.Status != 403 {
			t.Fatalf("viewer sets role: %d %s", r.Status, r.Body)
		}
	})
}

func TestRateLimitPerToken(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		a := newAPIWith(t, db, func(d *server.Deps) { d.RateLimit = 5 })
		var limited response
		for i := 0; i < 30; i++ {
			if r := a.do("GET", "/api/v1/projects", nil); r.Status == 429 {
				limited = r
				break
			}
		}
		if limited.Status != 429 {
			t.Fatal("30 quick requests at 5/s were never limited")
		}
		if limited.Header.Get("Retry-After") == "" || !strings.Contains(limited.errorMessage(t), "rate limit") {
			t.Errorf("429 without Retry-After or message: %v %s", limited.Header, limited.Body)
		}
	})
}

func TestPanicIsA500WithoutInternals(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		var logs strings.Builder
		var mu sync.Mutex
		a := newAPIWith(t, db, func(d *server.Deps) {
			d.Logger = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				return logs.Write(p)
			}), nil))
		})
		a.server.Echo().GET("/api/v1/boom", func(echo.Context) error { panic("internal detail xyz-42") })
		r := a.do("GET", "/api/v1/boom", nil)
		if r.Status != 500 {
			t.Fatalf("status %d", r.Status)
		}
		if strings.Contains(string(r.Body), "xyz-42") || strings.Contains(string(r.Body), "goroutine") {
			t.Fatalf("500 body shows internals: %s", r.Body)
		}
		rid := r.JSON(t)["error"].(map[string]any)["request_id"].(string)
		mu.Lock()
		logged := logs.String()
		mu.Unlock()
		if !strings.Contains(logged, "xyz-42") || !strings.Contains(logged, rid) {
			t.Errorf("the log lacks the panic or its request id: %s", logged)
		}
		// The server keeps serving.
		if r := a.do("GET", "/api/v1/projects", nil); r.Status != 200 {
			t.Fatalf("after the panic: %d", r.Status)
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
