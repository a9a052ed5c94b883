package security_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// Server and API: cases 24-30 of SECURITY.md. The full role matrix is
// TestRoleMatrix (roles_test.go); server/*_test.go test each handler.

func TestCase24_WriteOnly(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		k, k2, pem := canary("c24"), canary("c24b"), pemCanary("c24")
		m := e.secret("K", k, map[string]any{"description": "write-only check"})
		id := m["id"].(string)
		e.plant(k2)
		upd := e.must(200, "PUT", "/api/v1/secrets/"+id, map[string]any{"value": k2})
		f := e.must(201, "POST", "/api/v1/secrets", map[string]any{"name": "FILE", "file_base64": base64.StdEncoding.EncodeToString([]byte(pem)), "project": "p"})
		e.plant(pem)
		e.secret("ORGWIDE", canary("c24org"), map[string]any{"project": ""})
		for what, obj := range map[string]map[string]any{"create": m, "update": upd, "file create": f} {
			for _, field := range []string{"value", "file_base64", "plaintext", "ciphertext", "wrapped_key"} {
				if _, ok := obj[field]; ok {
					t.Errorf("%s response has a %q field: %v", what, field, obj)
				}
			}
		}
		e.must(200, "GET", "/api/v1/secrets/"+id, nil)
		vers := e.must(200, "GET", "/api/v1/secrets/"+id+"/versions", nil)
		contains(t, "versions", js(vers), `"version":1`, `"version":2`)
		e.must(200, "GET", "/api/v1/secrets?project=p&environment=production&resolved=true", nil)
		e.must(200, "GET", "/api/v1/secrets", nil)
		// A flow that uses them, and its export.
		e.flow("uses", code("c", "return secrets.K.length + secrets.FILE.length"))
		e.runStatus("uses", "succeeded", nil)
		e.must(200, "GET", "/api/v1/projects/p/flows/uses", nil)
		e.must(200, "GET", "/api/v1/projects/p/flows/uses/versions", nil)
		e.must(200, "GET", "/api/v1/keys", nil)
		e.must(204, "DELETE", "/api/v1/secrets/"+f["id"].(string), nil)
		e.sweep(nil)
	}, noRateLimit)
}

// member creates a user with role in project and returns its token.
func (e *env) member(name, project, role string) string {
	e.t.Helper()
	u := e.must(201, "POST", "/api/v1/users", map[string]any{"name": name})
	tok := e.must(201, "POST", "/api/v1/users/"+u["id"].(string)+"/tokens", map[string]string{"name": "t"})["token"].(string)
	e.must(200, "PUT", "/api/v1/projects/"+project+"/members/"+u["id"].(string), map[string]string{"role": role})
	return tok
}

func TestCase25_ProjectIsolation(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		e.must(201, "POST", "/api/v1/projects", map[string]string{"name": "b"})
		ka, kb := canary("c25a"), canary("c25b")
		e.secret("AK", ka)
		e.plant(kb)
		bs := e.must(201, "POST", "/api/v1/secrets", map[string]any{"name": "BK", "value": kb, "project": "b"})
		e.must(201, "POST", "/api/v1/secrets", map[string]any{"name": "BKE", "value": kb + "e", "project": "b", "environment": "development"})
		e.plant(kb + "e")
		e.must(201, "POST", "/api/v1/projects/b/flows", map[string]any{"name": "bf", "trigger": map[string]any{"type": "manual"}, "blocks": []any{code("c", "return 1")}})
		brun := e.must(200, "POST", "/api/v1/projects/b/flows/bf/runs?wait=30s", map[string]any{"environment": "development"})["id"].(string)
		e.must(201, "POST", "/api/v1/projects/b/installations", map[string]any{"app": "bearer_api", "name": "bi",
			"config": map[string]any{"token": "secrets.BK", "base_url": "'http://127.0.0.1:1'"}})
		tokA := e.member("alice", "p", "admin")
		for _, rq := range [][2]string{
			{"GET", "/api/v1/secrets/" + bs["id"].(string)}, {"GET", "/api/v1/secrets/" + bs["id"].(string) + "/versions"},
			{"PUT", "/api/v1/secrets/" + bs["id"].(string)}, {"DELETE", "/api/v1/secrets/" + bs["id"].(string)},
			{"GET", "/api/v1/secrets?project=b"}, {"GET", "/api/v1/secrets?project=b&environment=development&resolved=true"},
			{"GET", "/api/v1/projects/b/flows"}, {"GET", "/api/v1/projects/b/flows/bf"}, {"POST", "/api/v1/projects/b/flows/bf/runs"},
			{"GET", "/api/v1/runs/" + brun}, {"GET", "/api/v1/runs/" + brun + "/events"}, {"GET", "/api/v1/runs/" + brun + "/events?follow=1"},
			{"POST", "/api/v1/runs/" + brun + "/cancel"}, {"GET", "/api/v1/projects/b/runs"},
			{"GET", "/api/v1/projects/b/installations"}, {"GET", "/api/v1/projects/b/installations/bi"},
			{"POST", "/api/v1/projects/b/evaluate"}, {"GET", "/api/v1/audit?project=b"},
		} {
			var body any
			switch {
			case rq[0] == "PUT":
				body = map[string]any{"value": "x-overwrite-attempt-9"}
			case strings.HasSuffix(rq[1], "/evaluate"):
				body = map[string]any{"environment": "development", "expression": "secrets.BK"}
			case strings.HasSuffix(rq[1], "/runs"):
				body = map[string]any{"environment": "development"}
			}
			if r := e.doToken(tokA, rq[0], rq[1], body); r.Status != 404 {
				t.Errorf("%s %s with project p's token: %d, want 404: %.200s", rq[0], rq[1], r.Status, r.Body)
			}
		}
		// A flow of p cannot resolve b's secrets by any name or option.
		for name, src := range map[string]string{
			"dot":      "return secrets.BK",
			"index":    "return secrets['BK']",
			"get":      "return await secrets.get('BK', {project: 'b'})",
			"getenv":   "return await secrets.get('BKE', {project: 'b', environment: 'development'})",
			"getplain": "return await secrets.get('BK')",
		} {
			e.flow("iso-"+name, code("c", src))
			_, msg := e.runStatus("iso-"+name, "failed", nil)
			t.Logf("%s: %s", name, msg)
		}
		prev := e.doToken(tokA, "POST", "/api/v1/projects/p/evaluate", map[string]any{"expression": "secrets.BK", "environment": "development"})
		if prev.Status == 200 {
			t.Errorf("preview of p resolved b's secret: %s", prev.Body)
		}
		// An installation of p cannot use b's secret either.
		e.must(201, "POST", "/api/v1/projects/p/installations", map[string]any{"app": "bearer_api", "name": "pi",
			"config": map[string]any{"token": "secrets.BK", "base_url": "'http://127.0.0.1:1'"}})
		e.sweep(nil)
	}, noRateLimit)
}

func TestCase26_ViewerCannotWrite(t *testing.T) {
	// Every route against every role is TestRoleMatrix; this is the
	// case's statement: a viewer cannot edit flows, run them, or change
	// secrets, and nothing changes when it tries.
	e := sqlite(t, noRateLimit)
	k := canary("c26")
	s := e.secret("K", k)
	e.flow("f", code("c", "return 1"))
	v := e.member("viewer", "p", "viewer")
	for _, rq := range []struct {
		m, p string
		b    any
	}{
		{"PUT", "/api/v1/projects/p/flows/f", map[string]any{"name": "f", "trigger": map[string]any{"type": "manual"}, "blocks": []any{code("c", "return secrets.K")}}},
		{"POST", "/api/v1/projects/p/flows", map[string]any{"name": "g", "trigger": map[string]any{"type": "manual"}, "blocks": []any{code("c", "return secrets.K")}}},
		{"DELETE", "/api/v1/projects/p/flows/f", nil},
		{"POST", "/api/v1/projects/p/flows/f/runs", map[string]any{"environment": "development"}},
		{"POST", "/api/v1/projects/p/evaluate", map[string]any{"expression": "secrets.K", "environment": "development"}},
		{"POST", "/api/v1/secrets", map[string]any{"name": "NEW", "value": "viewer-value-Zq81x", "project": "p"}},
		{"PUT", "/api/v1/secrets/" + s["id"].(string), map[string]any{"value": "viewer-overwrite-Zq81x"}},
		{"DELETE", "/api/v1/secrets/" + s["id"].(string), nil},
		{"POST", "/api/v1/projects/p/installations", map[string]any{"app": "bearer_api", "name": "x", "config": map[string]any{"token": "secrets.K", "base_url": "'http://127.0.0.1:1'"}}},
		{"PUT", "/api/v1/projects/p/members/x", map[string]any{"role": "admin"}},
	} {
		if r := e.doToken(v, rq.m, rq.p, rq.b); r.Status != 403 {
			t.Errorf("viewer %s %s: %d, want 403: %.200s", rq.m, rq.p, r.Status, r.Body)
		}
	}
	if got := e.must(200, "GET", "/api/v1/secrets/"+s["id"].(string), nil); got["version"] != 1.0 {
		t.Errorf("the secret changed: %v", got)
	}
	if runs := e.must(200, "GET", "/api/v1/projects/p/runs", nil)["runs"].([]any); len(runs) != 0 {
		t.Errorf("a viewer started a run")
	}
	e.sweep(nil)
}

func TestCase27_Tokens(t *testing.T) {
	// Token expiry is read from the server's clock, moved forward below
	// (one clock for both backends: it only runs ahead).
	clock := &apptest.Clock{}
	each(t, func(t *testing.T, e *env) {
		u := e.must(201, "POST", "/api/v1/users", map[string]any{"name": "tok"})
		uid := u["id"].(string)
		e.must(200, "PUT", "/api/v1/projects/p/members/"+uid, map[string]string{"role": "viewer"})
		mk := func(body map[string]string) (string, string) {
			m := e.must(201, "POST", "/api/v1/users/"+uid+"/tokens", body)
			return m["token"].(string), m["id"].(string)
		}
		tok, _ := mk(map[string]string{"name": "live"})
		revoked, rid := mk(map[string]string{"name": "revoked"})
		short, _ := mk(map[string]string{"name": "short", "expires_in": "1h"})
		e.plant(tok, revoked, short)
		if r := e.s.DoToken(tok, "GET", "/api/v1/projects/p", nil); r.Status != 200 {
			t.Fatalf("live token: %d", r.Status)
		}
		// Rejected in the query string, even next to a valid header.
		for _, q := range []string{"token", "access_token"} {
			for _, hdr := range []string{"", tok} {
				r := e.s.DoToken(hdr, "GET", "/api/v1/projects/p?"+q+"="+tok, nil)
				if r.Status != 401 || !strings.Contains(string(r.Body), "token_in_url") {
					t.Errorf("?%s= (header %v): %d %s", q, hdr != "", r.Status, r.Body)
				}
			}
		}
		e.must(204, "DELETE", "/api/v1/tokens/"+rid, nil)
		if r := e.s.DoToken(revoked, "GET", "/api/v1/projects/p", nil); r.Status != 401 {
			t.Errorf("revoked token: %d", r.Status)
		}
		if r := e.s.DoToken(short, "GET", "/api/v1/projects/p", nil); r.Status != 200 {
			t.Errorf("token before its expiry: %d", r.Status)
		}
		clock.Advance(time.Hour)
		if r := e.s.DoToken(short, "GET", "/api/v1/projects/p", nil); r.Status != 401 {
			t.Errorf("expired token: %d", r.Status)
		}
		if r := e.s.DoToken(tok, "GET", "/api/v1/projects/p", nil); r.Status != 200 {
			t.Errorf("token without expiry an hour later: %d", r.Status)
		}
		for _, bad := range []string{tok[:len(tok)-1], tok + "x", strings.ToUpper(tok), "Bearer", strings.Repeat("a", 300)} {
			if r := e.s.DoToken(bad, "GET", "/api/v1/projects/p", nil); r.Status != 401 {
				t.Errorf("altered token: %d", r.Status)
			}
		}
		// Hashed at rest: no table holds a token or an encoding of it;
		// the sweep checks the logs and responses too (the create
		// responses, which show each token once, are left out).
		e.mu.Lock()
		e.seen.Reset()
		e.mu.Unlock()
		e.secret("K", canary("c27"))
		if d := pgDump(t, e.s.App.DB); d != "" {
			apptest.AssertAbsent(t, "pg_dump", d, tok, revoked, short)
		}
		e.sweep(nil)
	}, noRateLimit, func(c *app.Config) { c.Now = clock.Now })
	t.Run("ConstantTimeCompare", func(t *testing.T) {
		// Code inspection: tokens are compared as SHA-256 hashes, the
		// configured admin token and CSRF tokens with
		// subtle.ConstantTimeCompare; a database lookup by hash leaks no
		// prefix of the token.
		for file, want := range map[string][]string{
			"../auth/auth.go":      {"sha256.Sum256([]byte(raw))", "subtle.ConstantTimeCompare(h[:], s.adminHash)", `Where("hash = ?"`},
			"../server/session.go": {"subtle.ConstantTimeCompare([]byte(got), []byte(want))"},
		} {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s no longer has %s", file, w)
				}
			}
			if strings.Contains(string(b), "== s.adminToken") || strings.Contains(string(b), "got == want") {
				t.Errorf("%s compares a token with ==", file)
			}
		}
	})
}

func TestCase28_CSRF(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k := canary("c28")
	e.secret("K", k)
	e.plant(e.s.Token)
	client := &http.Client{}
	send := func(method, path, cookie, csrf, origin string, body string) (int, http.Header, string) {
		req, _ := http.NewRequest(method, e.s.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if cookie != "" {
			req.Header.Set("Cookie", "hushflow_session="+cookie)
		}
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		}
		r, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		e.record(method, path, apptest.Response{Status: r.StatusCode, Body: b, Header: r.Header})
		return r.StatusCode, r.Header, string(b)
	}
	// Login CSRF: a cross-site sign-in is refused.
	if st, _, b := send("POST", "/ui/session", "", "", "https://evil.example", js(map[string]string{"token": e.s.Token})); st != 403 {
		t.Errorf("cross-site sign-in: %d %s", st, b)
	}
	st, h, b := send("POST", "/ui/session", "", "", "", js(map[string]string{"token": e.s.Token}))
	if st != 200 {
		t.Fatalf("sign-in: %d %s", st, b)
	}
	var cookie string
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == "hushflow_session" {
			cookie = c.Value
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie attributes: HttpOnly %v SameSite %v", c.HttpOnly, c.SameSite)
			}
		}
	}
	if cookie == "" || cookie == e.s.Token {
		t.Fatalf("no opaque session cookie: %v", h)
	}
	csrf := strings.Split(strings.Split(b, `"csrf":"`)[1], `"`)[0]
	create := js(map[string]string{"name": "csrfproj"})
	// A token one character off (the real one when it starts with "x" was
	// the "wrong" one once in a while).
	wrong := "x" + csrf[1:]
	if wrong == csrf {
		wrong = "y" + csrf[1:]
	}
	for name, c := range map[string][2]string{
		"no token":                {"", ""},
		"no token, cross origin":  {"", "https://evil.example"},
		"wrong token":             {wrong, ""},
		"wrong token, cross-site": {wrong, "https://evil.example"},
	} {
		if st, _, b := send("POST", "/api/v1/projects", cookie, c[0], c[1], create); st != 403 {
			t.Errorf("%s: %d %s", name, st, b)
		}
		if st, _, _ := send("DELETE", "/api/v1/secrets/whatever", cookie, c[0], c[1], ""); st != 403 {
			t.Errorf("%s DELETE: %d", name, st)
		}
	}
	if st, _, _ := send("GET", "/api/v1/projects", cookie, "", "", ""); st != 200 {
		t.Errorf("a safe request with the cookie: %d", st)
	}
	if st, _, b := send("POST", "/api/v1/projects", cookie, csrf, "", create); st != 201 {
		t.Errorf("the UI's own request: %d %s", st, b)
	}
	if st, _, _ := send("DELETE", "/ui/session", cookie, "", "", ""); st != 403 {
		t.Errorf("cross-site sign-out: %d", st)
	}
	// The session id is a credential: hashed at rest like tokens. (The
	// CSRF token is stored as is: it is worthless without the cookie.)
	e.mu.Lock()
	e.seen.Reset() // the sign-in response sets the cookie, by design
	e.mu.Unlock()
	e.plant(cookie)
	e.sweep(nil)
}

func TestCase29_Limits(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k := canary("c29")
	e.secret("K", k)
	e.flow("ok", code("c", "return 1"))
	checks := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		msg    string
	}{
		{"body 2 MiB", "POST", "/api/v1/secrets", `{"name":"BIG","project":"p","value":"` + strings.Repeat("v", 2<<20) + `"}`, 413, "request body exceeds the limit"},
		{"value 64 KiB + 1", "POST", "/api/v1/secrets", map[string]any{"name": "V", "project": "p", "value": strings.Repeat("v", 64<<10+1)}, 413, "64 KiB"},
		{"file 1 MiB + 1", "POST", "/api/v1/secrets", map[string]any{"name": "F", "project": "p", "file_base64": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 1<<20+1))}, 413, "1 MiB"},
		{"update value", "PUT", "/api/v1/secrets/" + e.must(200, "GET", "/api/v1/secrets?project=p", nil)["secrets"].([]any)[0].(map[string]any)["id"].(string), map[string]any{"value": strings.Repeat("v", 64<<10+1)}, 413, "64 KiB"},
		{"expression", "POST", "/api/v1/projects/p/flows", map[string]any{"name": "big", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'" + strings.Repeat("e", 70<<10) + "'"}}}}, 400, "limit"},
		{"code", "POST", "/api/v1/projects/p/flows", map[string]any{"name": "big", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{code("c", "return '"+strings.Repeat("e", 260<<10)+"'")}}, 400, "limit"},
		{"preview", "POST", "/api/v1/projects/p/evaluate", map[string]any{"expression": "'" + strings.Repeat("e", 70<<10) + "'", "environment": "development"}, 400, "limit"},
		{"run input", "POST", "/api/v1/projects/p/flows/ok/runs", map[string]any{"environment": "development", "input": strings.Repeat("i", 300<<10)}, 413, "over the limit of 262144 bytes"},
	}
	for _, c := range checks {
		r := e.do(c.method, c.path, c.body)
		if r.Status != c.status || !strings.Contains(strings.ToLower(string(r.Body)), strings.ToLower(c.msg)) {
			t.Errorf("%s: %d %.300s, want %d with %q", c.name, r.Status, r.Body, c.status, c.msg)
		}
	}
	// Slow clients: the server's timeouts bound them (a test that waits
	// the 10s header timeout out would be too slow for the suite).
	hs := e.s.App.API.HTTPServer("127.0.0.1:0")
	if hs.ReadHeaderTimeout <= 0 || hs.ReadHeaderTimeout > 30*time.Second || hs.ReadTimeout <= 0 || hs.MaxHeaderBytes <= 0 {
		t.Errorf("slow-client bounds: header %s, read %s, max header %d", hs.ReadHeaderTimeout, hs.ReadTimeout, hs.MaxHeaderBytes)
	}
	t.Run("RateLimit", func(t *testing.T) {
		s := apptest.Start(t, storetest.SQLiteConfig(t), func(c *app.Config) { c.RateLimit = 5 })
		var mu sync.Mutex
		codes := map[int]int{}
		var retry string
		var wg sync.WaitGroup
		for range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("GET", s.URL+"/api/v1/projects", nil)
				req.Header.Set("Authorization", "Bearer "+s.Token)
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				mu.Lock()
				defer mu.Unlock()
				codes[r.StatusCode]++
				if r.StatusCode == 429 {
					retry = r.Header.Get("Retry-After")
					if !strings.Contains(string(b), "rate limit") {
						t.Errorf("429 body: %s", b)
					}
				}
			}()
		}
		wg.Wait()
		if codes[429] == 0 || codes[200] == 0 || codes[200] > 25 || retry == "" {
			t.Errorf("rate limit 5/s, 40 requests at once: %v, Retry-After %q", codes, retry)
		}
		t.Logf("40 requests at 5/s: %v", codes)
	})
	e.sweep(nil)
}

func TestCase30_Errors(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k := canary("c30")
	e.secret("K", k)
	e.flow("ok", code("c", "return 1"))
	// Secret-looking request values: with the special characters (an
	// echo would show escaped) and without (an echo would show as is).
	plain := strings.NewReplacer("&", ".", "<", ".", ">", ".", `"`, ".", "%", ".", `\`, ".").Replace(canary("c30plain"))
	known := strings.NewReplacer("&", ".", "<", ".", ">", ".", `"`, ".", "%", ".", `\`, ".").Replace(canary("c30known"))
	e.secret("KNOWN", known)
	// Values sent in value fields are never echoed, whatever they are.
	for _, v := range []string{canary("c30req"), plain} {
		e.plant(v)
		errorsDoNotEcho(t, e, v, valueFields)
	}
	errorsDoNotEcho(t, e, known, valueFields)
	// An expression's error in the editor's preview has the same shape.
	if r := e.do("POST", "/api/v1/projects/p/evaluate", map[string]any{"expression": "input.a.b", "environment": "development"}); r.Status != 400 ||
		!strings.Contains(string(r.Body), `"code":"evaluation_failed"`) || !strings.Contains(string(r.Body), `"request_id":"`) {
		t.Errorf("evaluate: %d %s", r.Status, r.Body)
	}
	t.Run("ValueInIdentifierField", func(t *testing.T) {
		errorsDoNotEcho(t, e, plain, identifierFields)
		errorsDoNotEcho(t, e, known, identifierFields)
	})
	t.Run("InternalError", func(t *testing.T) {
		// A real internal error (the audit table is gone): a generic
		// message with the request id; the cause is in the log only.
		if err := e.s.App.DB.Exec("ALTER TABLE secret_audit RENAME TO secret_audit_gone").Error; err != nil {
			t.Fatal(err)
		}
		defer e.s.App.DB.Exec("ALTER TABLE secret_audit_gone RENAME TO secret_audit")
		r := e.do("GET", "/api/v1/audit?project=p", nil)
		body := r.JSON(t)["error"].(map[string]any)
		rid, _ := body["request_id"].(string)
		if r.Status != 500 || rid == "" || body["message"] != "internal error; quote request id "+rid || r.Header.Get("X-Request-Id") != rid {
			t.Errorf("internal error response: %d %s", r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), "secret_audit") || strings.Contains(strings.ToLower(string(r.Body)), "sql") {
			t.Errorf("internal error shows internals: %s", r.Body)
		}
		if !strings.Contains(e.s.Logs.String(), rid) {
			t.Errorf("the log lacks the request id %s", rid)
		}
	})
	t.Run("Panic", func(t *testing.T) {
		t.Skip("no input makes a handler panic and the server has no test-only panic route (none is added to production code); " +
			"recoverPanics (server/middleware.go) sends a panic through the same error mapper as InternalError above, " +
			"and server/server_test.go covers it with a test handler")
	})
	e.sweep(nil)
}

// errorsDoNotEcho sends v in invalid fields of many requests: each is a
// 4xx with a request id; the sweep then finds v in no response.
type echoCase struct {
	name, method, path string
	body               any
}

// valueFields puts v where a value goes (a secret value, a file, JSON
// text).
func valueFields(v string) []echoCase {
	esc := strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `"`, `\"`)
	return []echoCase{
		{"value type", "POST", "/api/v1/secrets", `{"name":"X","value":{"nested":"` + esc + `"}}`},
		{"value too large", "POST", "/api/v1/secrets", map[string]any{"name": "X", "project": "p", "value": v + strings.Repeat("v", 64<<10)}},
		{"malformed json", "POST", "/api/v1/secrets", `{"name":"X","value":"` + v},
		{"bad json value", "POST", "/api/v1/secrets", `{"name":"X","value":"` + esc + `",}`},
		{"file base64", "POST", "/api/v1/secrets", map[string]any{"name": "X", "file_base64": "!!" + v, "project": "p"}},
		{"wait", "POST", "/api/v1/projects/p/flows/ok/runs?wait=" + url.QueryEscape(v), map[string]any{"environment": "development"}},
		{"role", "PUT", "/api/v1/projects/p/members/nobody", map[string]any{"role": v}},
		{"sign-in token", "POST", "/ui/session", map[string]any{"token": v}},
		{"bearer", "GET", "/api/v1/projects", nil}, // sent as the token below
	}
}

// identifierFields puts v where a name goes.
func identifierFields(v string) []echoCase {
	esc := strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `"`, `\"`)
	return []echoCase{
		{"secret name", "POST", "/api/v1/secrets", map[string]any{"name": v, "value": "x-Zq81-long-enough", "project": "p"}},
		{"project", "POST", "/api/v1/secrets", map[string]any{"name": "X", "value": "x-Zq81-long-enough", "project": v}},
		{"environment", "POST", "/api/v1/secrets", map[string]any{"name": "X", "value": "x-Zq81-long-enough", "environment": v}},
		{"allowed host", "POST", "/api/v1/secrets", map[string]any{"name": "X", "value": "x-Zq81-long-enough", "project": "p", "allowed_hosts": []string{v}}},
		{"unknown field", "POST", "/api/v1/secrets", `{"name":"X","value":"x-Zq81-long-enough","f` + esc + `":1}`},
		{"run environment", "POST", "/api/v1/projects/p/flows/ok/runs", map[string]any{"environment": v}},
		{"token expiry", "POST", "/api/v1/tokens", map[string]any{"name": "x", "expires_in": v}},
		{"flow name", "POST", "/api/v1/projects/p/flows", map[string]any{"name": v, "trigger": map[string]any{"type": "manual"}, "blocks": []any{code("c", "return 1")}}},
		{"trigger", "POST", "/api/v1/projects/p/flows", map[string]any{"name": "t", "trigger": map[string]any{"type": v}, "blocks": []any{code("c", "return 1")}}},
		{"block type", "POST", "/api/v1/projects/p/flows", map[string]any{"name": "t", "trigger": map[string]any{"type": "manual"}, "blocks": []any{map[string]any{"id": "x", "type": v}}}},
		// (A value in the URL path is left out: the access log records
		// paths, as any server does; query strings are never logged.)
	}
}

// errorsDoNotEcho sends v in the fields of cases: each request fails
// with a 4xx and a request id, and no error shows v in any form.
func errorsDoNotEcho(t *testing.T, e *env, v string, cases func(string) []echoCase) {
	t.Helper()
	for _, c := range cases(v) {
		var r apptest.Response
		if c.name == "bearer" {
			r = e.doToken(v, c.method, c.path, c.body)
		} else {
			r = e.do(c.method, c.path, c.body)
		}
		if r.Status < 400 || r.Status >= 500 {
			t.Errorf("%s: %d %.300s", c.name, r.Status, r.Body)
		}
		if !strings.Contains(string(r.Body), `"request_id"`) {
			t.Errorf("%s: error without a request id: %.300s", c.name, r.Body)
		}
		for _, f := range apptest.Forms(v) {
			if strings.Contains(string(r.Body), f) || strings.Contains(string(r.Body), f[:20]) {
				t.Errorf("%s: the error echoes the request value: %.300s", c.name, r.Body)
				break
			}
		}
	}
}
