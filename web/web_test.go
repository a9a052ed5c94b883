package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/web"
	"github.com/labstack/echo/v4"
)

func get(t *testing.T, h http.Handler, method, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestHandler(t *testing.T) {
	e := echo.New()
	e.GET("/api/v1/ping", func(c echo.Context) error { return c.String(200, "pong") })
	web.Mount(e)

	for _, p := range []string{"/", "/signin", "/p/billing/flows", "/p/billing/runs/0190-abc", "/index.html"} {
		t.Run("index "+p, func(t *testing.T) {
			res, body := get(t, e, "GET", p)
			if res.StatusCode != 200 || !strings.Contains(body, `<div id="app">`) {
				t.Fatalf("%s: %d %.80q", p, res.StatusCode, body)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("index Cache-Control %q, want no-store", cc)
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, "<script type=\"module\">") {
				t.Error("index.html has an inline script; the CSP forbids it")
			}
		})
	}

	res, body := get(t, e, "GET", "/")
	h := res.Header
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'self'") ||
		strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "script-src 'self' 'unsafe-inline'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(body, "__CSP_NONCE__") || !strings.Contains(h.Get("Content-Security-Policy"), "'nonce-") {
		t.Error("index.html's nonce placeholder is not replaced, or the CSP names no nonce")
	}
	_, body2 := get(t, e, "GET", "/")
	if body2 == body {
		t.Error("two responses share a nonce")
	}
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("security headers: %v", h)
	}

	// The hashed assets the index names are served with a long cache.
	i := strings.Index(body, "/assets/")
	if i < 0 {
		t.Fatal("index.html names no /assets/ file")
	}
	asset := body[i : i+strings.IndexAny(body[i:], `"'`)]
	res, _ = get(t, e, "GET", asset)
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("%s: %d %q", asset, res.StatusCode, res.Header.Get("Cache-Control"))
	}
	if res, _ = get(t, e, "GET", "/assets/missing-123.js"); res.StatusCode != 404 {
		t.Errorf("a missing asset: %d, want 404", res.StatusCode)
	}

	// API paths are never answered with the app.
	if res, body = get(t, e, "GET", "/api/v1/ping"); body != "pong" {
		t.Errorf("API route shadowed: %d %q", res.StatusCode, body)
	}
	for _, p := range []string{"/api/v2/x", "/ui/unknown", "/hooks/x"} {
		if res, body = get(t, e, "GET", p); res.StatusCode != 404 || !strings.Contains(body, "not_found") {
			t.Errorf("%s: %d %q, want a JSON 404", p, res.StatusCode, body)
		}
	}
	if res, _ = get(t, e, "HEAD", "/p/x/flows"); res.StatusCode != 200 {
		t.Errorf("HEAD: %d", res.StatusCode)
	}
	if res, _ = get(t, e, "GET", "/assets/"); res.StatusCode != 404 && res.StatusCode != 200 {
		t.Errorf("directory: %d", res.StatusCode)
	}
}
