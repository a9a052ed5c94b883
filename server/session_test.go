package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/auth"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/server"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

// browser is an HTTP client that holds cookies like a browser does, and
// sends the CSRF header only when told.
type browser struct {
	t      *testing.T
	a      *api
	cookie *http.Cookie
}

func (b *browser) do(method, path, body, csrf string, extra map[string]string) response {
	b.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, b.a.url+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.Name == "hushflow_session" {
			if ck.MaxAge < 0 {
				b.cookie = nil
			} else {
				b.cookie = ck
			}
		}
	}
	return response{Status: resp.StatusCode, Body: data, Header: resp.Header}
}

func (b *browser) signIn(token string) string {
	b.t.Helper()
	body, _ := json.Marshal(map[string]string{"token": token})
	r := b.do("POST", "/ui/session", string(body), "", nil)
	if r.Status != http.StatusOK {
		b.t.Fatalf("sign in: %d %s", r.Status, r.Body)
	}
	csrf, _ := r.JSON(b.t)["csrf"].(string)
	if csrf == "" {
		b.t.Fatalf("no csrf in %s", r.Body)
	}
	return csrf
}

func TestSessionCookie(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		b := &browser{t: t, a: a}
		csrf := b.signIn(a.token)
		ck := b.cookie
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
			t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", ck)
		}
		if strings.Contains(ck.Value, a.token) || ck.Value == "" {
			t.Fatal("the cookie must be an opaque session id, not the token")
		}

		// Reads need no CSRF token.
		if r := b.do("GET", "/api/v1/projects", "", "", nil); r.Status != http.StatusOK {
			t.Fatalf("GET with session: %d %s", r.Status, r.Body)
		}
		if r := b.do("GET", "/ui/session", "", "", nil); r.Status != http.StatusOK || r.JSON(t)["csrf"] != csrf {
			t.Fatalf("GET /ui/session: %d %s", r.Status, r.Body)
		}
		if r := b.do("GET", "/ui/session", "", "", nil); !strings.Contains(string(r.Body), `"name":"admin"`) {
			t.Fatalf("GET /ui/session has no user: %s", r.Body)
		}
	})
}

// TestSessionCSRF is SECURITY.md case 28: a state-changing request that
// carries the session cookie but not the CSRF token is refused.
func TestSessionCSRF(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		b := &browser{t: t, a: a}
		csrf := b.signIn(a.token)
		for _, tc := range []struct{ name, csrf string }{{"missing", ""}, {"wrong", csrf + "x"}, {"other", strings.Repeat("A", len(csrf))}} {
			t.Run(tc.name, func(t *testing.T) {
				r := b.do("POST", "/api/v1/projects", `{"name":"csrf-`+tc.name+`"}`, tc.csrf, nil)
				if r.Status != http.StatusForbidden {
					t.Fatalf("POST without the right CSRF token: %d %s, want 403", r.Status, r.Body)
				}
				var body struct {
					Error struct{ Code, Message string }
				}
				_ = json.Unmarshal(r.Body, &body)
				if body.Error.Code != "csrf" || body.Error.Message != "missing or wrong CSRF token" {
					t.Fatalf("error body %s", r.Body)
				}
			})
		}
		if r := a.do("GET", "/api/v1/projects", nil); strings.Contains(string(r.Body), "csrf-") {
			t.Fatalf("a refused request created a project: %s", r.Body)
		}
		if r := b.do("DELETE", "/ui/session", "", "", nil); r.Status != http.StatusForbidden {
			t.Fatalf("sign out without CSRF: %d", r.Status)
		}
		if r := b.do("POST", "/api/v1/projects", `{"name":"with-csrf"}`, csrf, nil); r.Status != http.StatusCreated {
			t.Fatalf("POST with CSRF: %d %s", r.Status, r.Body)
		}
	})
}

func TestSessionSignOutAndRevocation(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		// A token of its own, so that revoking it ends the session.
		r := a.do("POST", "/api/v1/tokens", map[string]string{"name": "ui"})
		if r.Status != http.StatusCreated {
			t.Fatalf("create token: %d %s", r.Status, r.Body)
		}
		tok := r.JSON(t)
		b := &browser{t: t, a: a}
		csrf := b.signIn(tok["token"].(string))
		if r := b.do("GET", "/api/v1/whoami", "", "", nil); r.Status != http.StatusOK {
			t.Fatalf("whoami: %d", r.Status)
		}
		if r := a.do("DELETE", "/api/v1/tokens/"+tok["id"].(string), nil); r.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		if r := b.do("GET", "/api/v1/whoami", "", "", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("session of a revoked token: %d, want 401", r.Status)
		}

		csrf = b.signIn(a.token)
		old := b.cookie
		if r := b.do("DELETE", "/ui/session", "", csrf, nil); r.Status != http.StatusNoContent {
			t.Fatalf("sign out: %d %s", r.Status, r.Body)
		}
		if b.cookie != nil {
			t.Fatal("sign out must clear the cookie")
		}
		b.cookie = old
		if r := b.do("GET", "/ui/session", "", "", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("signed-out session still works: %d", r.Status)
		}
	})
}

func TestSessionSignInRefusals(t *testing.T) {
	eachAPI(t, func(t *testing.T, a *api) {
		b := &browser{t: t, a: a}
		if r := b.do("POST", "/ui/session", `{"token":"hf_nope"}`, "", nil); r.Status != http.StatusUnauthorized || b.cookie != nil {
			t.Fatalf("bad token: %d cookie=%v", r.Status, b.cookie)
		}
		body := `{"token":"` + a.token + `"}`
		if r := b.do("POST", "/ui/session", body, "", map[string]string{"Origin": "https://evil.example"}); r.Status != http.StatusForbidden || b.cookie != nil {
			t.Fatalf("cross-origin sign in: %d", r.Status)
		}
		if r := b.do("GET", "/ui/session", "", "", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("no session: %d", r.Status)
		}
		// A forged cookie is not a session.
		b.cookie = &http.Cookie{Name: "hushflow_session", Value: "forged"}
		if r := b.do("GET", "/api/v1/projects", "", "", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("forged cookie: %d", r.Status)
		}
	})
}

// A session ends when the token it was opened with expires, and
// auth.SessionTTL after sign-in, by the auth clock (moved forward here,
// not waited for).
func TestSessionExpiry(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		clock := &apptest.Clock{}
		a := newAPIWith(t, db, func(d *server.Deps) { d.Auth = auth.New(auth.Config{DB: db, Now: clock.Now}) })
		r := a.do("POST", "/api/v1/tokens", map[string]string{"name": "ui", "expires_in": "1h"})
		if r.Status != http.StatusCreated {
			t.Fatalf("create token: %d %s", r.Status, r.Body)
		}
		b := &browser{t: t, a: a}
		b.signIn(r.JSON(t)["token"].(string))
		whoami := func(b *browser, want int, when string) {
			t.Helper()
			if r := b.do("GET", "/api/v1/whoami", "", "", nil); r.Status != want {
				t.Fatalf("whoami %s: %d, want %d: %s", when, r.Status, want, r.Body)
			}
		}
		clock.Advance(59 * time.Minute)
		whoami(b, http.StatusOK, "a minute before the token expires")
		clock.Advance(time.Minute)
		whoami(b, http.StatusUnauthorized, "once the session's token expired")

		admin := &browser{t: t, a: a}
		admin.signIn(a.token) // a token without expiry
		clock.Advance(auth.SessionTTL - time.Minute)
		whoami(admin, http.StatusOK, "a minute before the session expires")
		clock.Advance(time.Minute)
		whoami(admin, http.StatusUnauthorized, "once the session expired")
	})
}

// A browser session opened with HUSHFLOW_ADMIN_TOKEN ends when that token
// is unset or replaced (the hardening advice is to unset it once users
// exist); before, it stayed an organization admin for 12 hours (attacker
// round six).
func TestSessionOfTheConfiguredAdminToken(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		const envToken = "env-admin-token-0123456789abcdefXYZ"
		with := func(token string) *api {
			deps := server.Deps{DB: db, Auth: auth.New(auth.Config{DB: db, AdminToken: token}), Projects: projects.NewService(db)}
			if _, err := deps.Auth.Bootstrap(context.Background()); err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(server.New(deps))
			t.Cleanup(ts.Close)
			return &api{t: t, url: ts.URL, token: token, db: db}
		}
		first := with(envToken)
		b := &browser{t: t, a: first}
		b.signIn(envToken)
		whoami := func(a *api, want int, when string) {
			t.Helper()
			b.a = a
			if r := b.do("GET", "/api/v1/whoami", "", "", nil); r.Status != want {
				t.Fatalf("whoami %s: %d, want %d: %s", when, r.Status, want, r.Body)
			}
		}
		whoami(first, http.StatusOK, "with the token configured")
		whoami(with(envToken), http.StatusOK, "after a restart with the same token")
		whoami(with(""), http.StatusUnauthorized, "after a restart without the token")
		whoami(with("another-admin-token-0123456789abcdef"), http.StatusUnauthorized, "after a restart with another token")
	})
}
