// Package web serves Hushflow's UI from the binary: the single-page app
// built from web/ui (TypeScript, Preact, CodeMirror 6) into web/dist,
// which is committed and embedded, so that `go run ./cmd/hushflow serve`
// needs no Node. Rebuild it with `make ui` after changing web/ui.
//
// The UI talks to the API with the browser session of server/session.go
// (an HttpOnly, SameSite=Strict cookie plus a CSRF header); this package
// only serves files, with a strict Content-Security-Policy.
package web

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

//go:embed all:dist
var dist embed.FS

// CSP returns the Content-Security-Policy of a UI response: scripts only
// from the server's own files (no inline script, no eval), styles from its
// own files plus <style> elements carrying the response's nonce (CodeMirror
// injects its styles that way) and style attributes, no frames, no plugins, requests only to the
// same origin.
func CSP(nonce string) string {
	style := "style-src 'self'"
	if nonce != "" {
		style += " 'nonce-" + nonce + "'"
	}
	// Style attributes (CodeMirror positions tooltips and gutters with
	// them) cannot run script; they are allowed, <style> elements are not.
	style += "; style-src-attr 'unsafe-inline'"
	return "default-src 'self'; script-src 'self'; " + style + "; img-src 'self' data:; " +
		"font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'"
}

// noncePlaceholder is replaced in index.html by each response's nonce.
var noncePlaceholder = []byte("__CSP_NONCE__")

func newNonce() string {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

// Handler serves the built UI: files under dist as they are (the hashed
// files under /assets/ with a year-long cache), and index.html, never
// cached, for every other path, so that the app's client-side routes
// (/p/billing/flows) load it.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", CSP(""))
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")

		p := path.Clean("/" + r.URL.Path)
		if p == "/api" || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/ui/") || strings.HasPrefix(p, "/hooks/") {
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNotFound)
			// With the request id the API's middleware set, as every
			// API error has (a request id is hex: no escaping needed).
			rid := ""
			if id := h.Get("X-Request-Id"); id != "" && strings.Trim(id, "0123456789abcdef") == "" {
				rid = `,"request_id":"` + id + `"`
			}
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"no such route"` + rid + `}}` + "\n"))
			return
		}
		name := strings.TrimPrefix(p, "/")
		if name != "" && name != "index.html" {
			if st, err := fs.Stat(sub, name); err == nil && !st.IsDir() {
				if strings.HasPrefix(name, "assets/") {
					h.Set("Cache-Control", "public, max-age=31536000, immutable")
				} else {
					h.Set("Cache-Control", "public, max-age=3600")
				}
				r2 := r.Clone(r.Context())
				r2.URL.Path = p
				files.ServeHTTP(w, r2)
				return
			}
			if strings.HasPrefix(name, "assets/") {
				http.NotFound(w, r) // a stale hashed file: not the app
				return
			}
		}
		index, err := fs.ReadFile(sub, "index.html")
		if err != nil {
			http.Error(w, "the UI is not built: run make ui", http.StatusNotFound)
			return
		}
		nonce := newNonce()
		index = bytes.ReplaceAll(index, noncePlaceholder, []byte(nonce))
		h.Set("Content-Security-Policy", CSP(nonce))
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(index)
		}
	})
}

// Mount serves the UI on e for every GET or HEAD path that no other route
// claims (the API's routes are more specific and win).
func Mount(e *echo.Echo) {
	h := echo.WrapHandler(Handler())
	e.GET("/*", h)
	e.HEAD("/*", h)
}
