package httpblock_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/blocks/blockstest"
	"github.com/hushflow/hushflow/blocks/httpblock"
	"github.com/hushflow/hushflow/egress"
	"github.com/hushflow/hushflow/engine/ordered"
)

// canary is a planted secret: unique, with characters that need escaping.
const canary = `sk_live_Q7f&<x>"%\Zr81`

func secrets() map[string]string { return map[string]string{"API_TOKEN": canary} }

func TestContract(t *testing.T) { blockstest.Run(t, httpblock.Info()) }

func run(t *testing.T, h *blockstest.Harness, cfg map[string]any) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Run(ctx, httpblock.Info(), cfg, &blocks.Env{})
	if err != nil {
		return nil, err
	}
	return out.(map[string]any), nil
}

// echoServer answers with a JSON description of the request it got.
func echoServer(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Server", "echo")
		json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.Query(),
			"content_type": r.Header.Get("Content-Type"), "x_one": r.Header.Values("X-One"),
			"idempotency_key": r.Header.Get("Idempotency-Key"), "body": string(body),
		})
	}))
	t.Cleanup(s.Close)
	return s
}

func TestRequestShapes(t *testing.T) {
	srv := echoServer(t)
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	cases := []struct {
		name  string
		cfg   map[string]any
		check func(t *testing.T, got map[string]any)
	}{
		{"get with query and headers", map[string]any{
			"url": srv.URL + "/items?fixed=1", "query": map[string]any{"limit": 10.0, "tag": []any{"a", "b"}, "on": true},
			"headers": map[string]any{"X-One": []any{"1", "2"}},
		}, func(t *testing.T, got map[string]any) {
			q := got["query"].(map[string]any)
			if got["method"] != "GET" || got["path"] != "/items" || q["limit"].([]any)[0] != "10" ||
				len(q["tag"].([]any)) != 2 || q["fixed"].([]any)[0] != "1" || q["on"].([]any)[0] != "true" ||
				len(got["x_one"].([]any)) != 2 {
				t.Fatalf("%v", got)
			}
		}},
		{"json body", map[string]any{"method": "post", "url": srv.URL, "body": map[string]any{"text": "hi", "n": 1.0}},
			func(t *testing.T, got map[string]any) {
				if got["method"] != "POST" || got["content_type"] != "application/json" || got["body"] != `{"n":1,"text":"hi"}` {
					t.Fatalf("%v", got)
				}
			}},
		{"array body", map[string]any{"method": "PUT", "url": srv.URL, "body": []any{1.0, "x"}},
			func(t *testing.T, got map[string]any) {
				if got["body"] != `[1,"x"]` {
					t.Fatalf("%v", got)
				}
			}},
		{"form body", map[string]any{"method": "POST", "url": srv.URL, "body_type": "form", "body": map[string]any{"a": "1 2", "b": []any{"x", "y"}}},
			func(t *testing.T, got map[string]any) {
				if got["content_type"] != "application/x-www-form-urlencoded" || got["body"] != "a=1+2&b=x&b=y" {
					t.Fatalf("%v", got)
				}
			}},
		{"text body", map[string]any{"method": "POST", "url": srv.URL, "body": "plain words"},
			func(t *testing.T, got map[string]any) {
				if got["content_type"] != "text/plain; charset=utf-8" || got["body"] != "plain words" {
					t.Fatalf("%v", got)
				}
			}},
		{"json string body", map[string]any{"method": "POST", "url": srv.URL, "body": "s", "body_type": "json",
			"headers": map[string]any{"Content-Type": "application/vnd.x+json"}},
			func(t *testing.T, got map[string]any) {
				if got["content_type"] != "application/vnd.x+json" || got["body"] != `"s"` {
					t.Fatalf("%v", got)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := run(t, h, c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if out["status"] != 200 {
				t.Fatalf("status %v", out["status"])
			}
			if hd := out["headers"].(map[string]any); hd["X-Server"] != "echo" {
				t.Fatalf("headers %v", hd)
			}
			c.check(t, ordered.Plain(out["body"]).(map[string]any))
		})
	}
}

func TestBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/html":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<p>hi</p>"))
		case "/badjson":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte("{not json"))
		case "/problem":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(404)
			w.Write([]byte(`{"title":"nope"}`))
		case "/empty":
			w.WriteHeader(204)
		case "/big":
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte(strings.Repeat("b", 2<<20)))
		}
	}))
	defer srv.Close()
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	for path, want := range map[string]any{"/html": "<p>hi</p>", "/badjson": "{not json", "/empty": ""} {
		out, err := run(t, h, map[string]any{"url": srv.URL + path})
		if err != nil || out["body"] != want {
			t.Errorf("%s: %v %v", path, out, err)
		}
	}
	out, err := run(t, h, map[string]any{"url": srv.URL + "/problem"})
	if err != nil || out["status"] != 404 || ordered.Plain(out["body"]).(map[string]any)["title"] != "nope" {
		t.Errorf("problem+json: %v %v", out, err)
	}
	// 2 MiB is under the default limit; the event records at most 64 KiB.
	out, err = run(t, h, map[string]any{"url": srv.URL + "/big"})
	if err != nil || len(out["body"].(string)) != 2<<20 {
		t.Fatalf("big: %v", err)
	}
	evs := h.EventsOf("http_response")
	last := evs[len(evs)-1].Data
	if last["body_truncated"] != true || len(last["body"].(string)) != httpblock.EventBodyLimit {
		t.Fatalf("event body not bounded: %v", last["body_truncated"])
	}
	_, err = run(t, h, map[string]any{"url": srv.URL + "/big", "max_response_bytes": 1 << 20})
	if !errors.Is(err, httpblock.ErrTooLarge) || !strings.Contains(err.Error(), "max_response_bytes") {
		t.Fatalf("over the limit: %v", err)
	}
}

func TestRetries(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			w.WriteHeader(503)
			return
		}
		w.Write([]byte("third time"))
	}))
	defer srv.Close()
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	out, err := run(t, h, map[string]any{"url": srv.URL, "retry": map[string]any{"attempts": 3, "backoff": "1ms"}})
	if err != nil || out["status"] != 200 || out["body"] != "third time" || n.Load() != 3 {
		t.Fatalf("%v %v after %d", out, err, n.Load())
	}
	if got := len(h.EventsOf("http_request")); got != 3 {
		t.Fatalf("%d request events", got)
	}

	// Attempts exhausted on 5xx: the last response is the output.
	n.Store(-10)
	out, err = run(t, h, map[string]any{"url": srv.URL, "retry": map[string]any{"attempts": 2, "backoff": 1}})
	if err != nil || out["status"] != 503 {
		t.Fatalf("%v %v", out, err)
	}

	// Network errors are retried, and the error hides the query.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	h2 := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	_, err = run(t, h2, map[string]any{"url": "http://" + addr + "/x?api_key=" + url.QueryEscape(canary),
		"retry": map[string]any{"attempts": 3, "backoff": "1ms"}})
	if err == nil || len(h2.EventsOf("http_error")) != 3 {
		t.Fatalf("%v, %d error events", err, len(h2.EventsOf("http_error")))
	}
	for _, f := range blockstest.Forms(canary) {
		if strings.Contains(err.Error(), f) {
			t.Fatalf("client error quotes the token before redaction: %v", err)
		}
	}
	h2.AssertNoLeak(err.Error())

	// A cancelled run stops waiting for the next retry.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	n.Store(-100)
	start := time.Now()
	_, err = h.Run(ctx, httpblock.Info(), map[string]any{"url": srv.URL, "retry": map[string]any{"attempts": 5, "backoff": "10s"}}, nil)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("cancel during backoff: %v after %s", err, time.Since(start))
	}
}

func TestTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer srv.Close()
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	start := time.Now()
	_, err := run(t, h, map[string]any{"url": srv.URL + "?token=" + url.QueryEscape(canary), "timeout": "100ms"})
	if err == nil || !strings.Contains(err.Error(), "timed out after 100ms") || time.Since(start) > 3*time.Second {
		t.Fatalf("%v after %s", err, time.Since(start))
	}
	h.AssertNoLeak(err.Error())
}

func TestRedirects(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/from":
			http.Redirect(w, r, "/to", http.StatusFound)
		case "/to":
			w.Write([]byte("arrived"))
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	}))
	defer srv.Close()
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	out, err := run(t, h, map[string]any{"url": srv.URL + "/from"})
	if err != nil || out["status"] != 200 || out["body"] != "arrived" {
		t.Fatalf("follow: %v %v", out, err)
	}
	out, err = run(t, h, map[string]any{"url": srv.URL + "/from", "follow_redirects": false})
	if err != nil || out["status"] != 302 || out["headers"].(map[string]any)["Location"] != "/to" {
		t.Fatalf("no follow: %v %v", out, err)
	}
	_, err = run(t, h, map[string]any{"url": srv.URL + "/loop"})
	if err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") {
		t.Fatalf("loop: %v", err)
	}
}

// TestLeaks is SECURITY cases 1, 6 and 7: a server that echoes the
// credentials back; nothing of the secret survives in events or errors
// after redaction, and credential headers are masked by name even without
// the redactor.
func TestLeaks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		http.SetCookie(w, &http.Cookie{Name: "s", Value: base64.StdEncoding.EncodeToString([]byte(canary))})
		w.Header().Set("X-Echo-Auth", r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(401)
		json.NewEncoder(w).Encode(map[string]any{"error": "invalid key " + r.URL.Query().Get("api_key"),
			"auth": r.Header.Get("Authorization"), "body": string(body)})
	}))
	defer srv.Close()
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	// Config as the executor evaluates it from expressions.
	cfg := map[string]any{}
	for k, src := range map[string]string{
		"method":  "'POST'",
		"url":     "`" + srv.URL + "/v1?api_key=${encodeURIComponent(secrets.API_TOKEN)}&page=2`",
		"headers": "({Authorization: `Bearer ${secrets.API_TOKEN}`, 'X-Echo': secrets.API_TOKEN})",
		"body":    "({key: secrets.API_TOKEN})",
	} {
		v, err := h.In.Script(context.Background(), "field", src)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		cfg[k] = v
	}
	cfg["headers"].(map[string]any)["X-Basic"] = "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+canary))
	cfg["headers"].(map[string]any)["X-Api-Key"] = "built-at-run-time-7Qx2" // a credential no secret holds
	out, err := run(t, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if out["status"] != 401 {
		t.Fatalf("%v", out)
	}
	req := h.EventsOf("http_request")[0].Data
	// A credential header is masked whole, with the name of the secret it
	// holds: the mask the value's own occurrences get (issue 18 item 6).
	if req["headers"].(map[string]any)["Authorization"] != "[REDACTED:API_TOKEN]" {
		t.Fatalf("Authorization not masked by name: %v", req["headers"])
	}
	if req["headers"].(map[string]any)["X-Api-Key"] != httpblock.Mask {
		t.Fatalf("a credential header holding no secret: %v", req["headers"])
	}
	if u := req["url"].(string); !strings.Contains(u, "api_key=[REDACTED:API_TOKEN]") || !strings.Contains(u, "page=2") {
		t.Fatalf("query not masked by name: %s", u)
	}
	resp := h.EventsOf("http_response")[0].Data
	if resp["headers"].(map[string]any)["Set-Cookie"] != "[REDACTED:API_TOKEN]" {
		t.Fatalf("Set-Cookie not masked by name: %v", resp["headers"])
	}
	outJSON, _ := json.Marshal(h.Red.Value(out))
	h.AssertNoLeak(string(outJSON))
}

// TestSSRF is SECURITY cases 18-20 through the block, with the default
// policy (nothing allowed).
func TestSSRF(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	def := blockstest.NewHarness(t, secrets(), blockstest.Options{Policy: &egress.Policy{}})
	for _, u := range []string{
		srv.URL + "/?api_key=" + url.QueryEscape(canary),
		"http://localhost:" + port + "/",
		"http://[::1]:" + port + "/",
		"http://10.0.0.1:" + port + "/",
		"http://192.168.0.1/",
		"http://169.254.169.254/latest/meta-data/",
	} {
		_, err := run(t, def, map[string]any{"url": u, "retry": map[string]any{"attempts": 3, "backoff": 1}})
		if !errors.Is(err, egress.ErrRefused) {
			t.Errorf("%s: %v", u, err)
			continue
		}
		if !strings.Contains(err.Error(), "allow it with HUSHFLOW_HTTP_ALLOW") {
			t.Errorf("%s: %v", u, err)
		}
		def.AssertNoLeak(err.Error())
	}
	if len(def.EventsOf("http_request")) != 6 {
		t.Errorf("refusals were retried: %d requests", len(def.EventsOf("http_request")))
	}
	for _, u := range []string{"file:///etc/passwd", "gopher://127.0.0.1/"} {
		if _, err := run(t, def, map[string]any{"url": u}); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	// A redirect from an allowed server to loopback and metadata addresses.
	local := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	for _, to := range []string{"http://[::1]:" + port + "/", "http://127.0.0.2:" + port + "/", "http://169.254.169.254/"} {
		_, err := run(t, local, map[string]any{"url": srv.URL + "/?to=" + url.QueryEscape(to)})
		if !errors.Is(err, egress.ErrRefused) {
			t.Errorf("redirect to %s: %v", to, err)
		}
	}
	if hits.Load() != 3 {
		t.Errorf("the server got %d requests, want only the 3 first hops", hits.Load())
	}
}

// TestPinning is SECURITY case 22 through the block.
func TestPinning(t *testing.T) {
	srv := echoServer(t)
	hostB := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{Allowed: map[string][]string{"API_TOKEN": {"127.0.0.1"}}})
	b64 := base64.StdEncoding.EncodeToString([]byte("user:" + canary))
	for name, cfg := range map[string]map[string]any{
		"header": {"headers": map[string]any{"Authorization": "Bearer " + canary}},
		"query":  {"query": map[string]any{"q": canary}},
		"base64": {"method": "POST", "body": map[string]any{"auth": b64}},
		"form":   {"method": "POST", "body_type": "form", "body": map[string]any{"k": canary}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg["url"] = hostB + "/send"
			_, err := run(t, h, cfg)
			if !errors.Is(err, egress.ErrPinned) || !strings.Contains(err.Error(), `secret "API_TOKEN" may only be sent to 127.0.0.1, not localhost`) {
				t.Fatalf("to B: %v", err)
			}
			h.AssertNoLeak(err.Error())
			cfg["url"] = srv.URL + "/send"
			if out, err := run(t, h, cfg); err != nil || out["status"] != 200 {
				t.Fatalf("to A: %v", err)
			}
		})
	}
	if got := h.Refused(); len(got) != 4 || got[0] != "API_TOKEN@localhost" {
		t.Fatalf("audit: %v", got)
	}
}

func TestValidate(t *testing.T) {
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	for _, cfg := range []map[string]any{
		{"url": "ftp://x"},
		{"url": "http://x", "method": "GE T"},
		{"url": "http://x", "body_type": "xml"},
		{"url": "http://x", "retry": map[string]any{"attempts": 11}},
		{"url": "http://x", "max_response_bytes": 1 << 30},
		{"url": "http://x", "bogus": 1},
		{"url": "http://x", "timeout": "soon"},
	} {
		if _, err := h.Decode(httpblock.Info(), cfg, nil); err == nil {
			t.Errorf("%v accepted", cfg)
		}
	}
	// At save time expression fields are absent: url missing is fine.
	if _, err := h.Decode(httpblock.Info(), map[string]any{"method": "POST"}, nil); err != nil {
		t.Error(err)
	}
	if _, err := run(t, h, map[string]any{}); err == nil || !strings.Contains(err.Error(), "url is required") {
		t.Error(err)
	}
}

// TestResponseBombs is SECURITY case 23: a gzip bomb, an endless body, a
// slow drip and huge headers are bounded by bytes and time.
func TestResponseBombs(t *testing.T) {
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zero := make([]byte, 1<<20)
	for i := 0; i < 16; i++ {
		zw.Write(zero)
	}
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(bomb.Bytes())
		case "/endless":
			chunk := bytes.Repeat([]byte("e"), 32<<10)
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/drip":
			// A byte every 20ms for 2s, until the client hangs up.
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for range 100 {
				if _, err := w.Write([]byte("d")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-tick.C:
				case <-r.Context().Done():
					return
				}
			}
		case "/headers":
			w.Header().Set("X-Big", strings.Repeat("h", 200<<10))
		}
	}))
	defer srv.Close()
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	for path, want := range map[string]string{"/gzip": "max_response_bytes", "/endless": "max_response_bytes", "/drip": "timed out", "/headers": "header"} {
		start := time.Now()
		_, err := run(t, h, map[string]any{"url": srv.URL + path, "max_response_bytes": 1 << 20, "timeout": "300ms"})
		if err == nil || !strings.Contains(err.Error(), want) || time.Since(start) > 3*time.Second {
			t.Errorf("%s: %v after %s", path, err, time.Since(start))
		}
	}
}

// Issue 15: a request is repeated after an interruption only when its
// method is idempotent or it carries an idempotency key, which is sent as
// the Idempotency-Key header.
func TestRepeatSafeAndIdempotencyKey(t *testing.T) {
	h := blockstest.NewHarness(t, secrets(), blockstest.Options{})
	for _, c := range []struct {
		cfg  map[string]any
		safe bool
	}{
		{map[string]any{"url": "http://x"}, true},
		{map[string]any{"method": "get", "url": "http://x"}, true},
		{map[string]any{"method": "PUT", "url": "http://x"}, true},
		{map[string]any{"method": "DELETE", "url": "http://x"}, true},
		{map[string]any{"method": "HEAD", "url": "http://x"}, true},
		{map[string]any{"method": "OPTIONS", "url": "http://x"}, true},
		{map[string]any{"method": "POST", "url": "http://x"}, false},
		{map[string]any{"method": "PATCH", "url": "http://x"}, false},
		{map[string]any{"method": "POST", "url": "http://x", "idempotency_key": "run-1-charge"}, true},
	} {
		b, err := h.Decode(httpblock.Info(), c.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		in := &blocks.Input{BlockID: "charge"}
		safe, why, err := b.(blocks.Repeatable).RepeatSafe(context.Background(), in)
		if err != nil || safe != c.safe {
			t.Errorf("%v: safe %v (%v), want %v", c.cfg, safe, err, c.safe)
		}
		if !safe && (!strings.Contains(why, "idempotency_key") || !strings.Contains(why, "${run.id}-charge")) {
			t.Errorf("%v: why %q does not say how to make it safe", c.cfg, why)
		}
	}
	srv := echoServer(t)
	out, err := h.Run(context.Background(), httpblock.Info(), map[string]any{"method": "POST", "url": srv.URL, "idempotency_key": "k-123"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ordered.Plain(out.(map[string]any)["body"]).(map[string]any)["idempotency_key"]; got != "k-123" {
		t.Errorf("Idempotency-Key received: %v", got)
	}
}

// TestIssue16ResponseOrder (issue 16, item 16): a JSON response body keeps
// the order of its keys, which the next blocks' scripts see
// (JSON.stringify(steps.call.output.body)).
func TestIssue16ResponseOrder(t *testing.T) {
	const body = `{"b":1,"a":{"d":[{"z":1,"y":2}],"c":null}}`
	v := httpblock.ParseBody("application/json; charset=utf-8", []byte(body))
	if b, err := json.Marshal(v); err != nil || string(b) != body {
		t.Fatalf("%s %v, want %s", b, err, body)
	}
}
