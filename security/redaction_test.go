package security_test

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
)

// Redaction: cases 1-10 of SECURITY.md. The redactor's encodings are
// proven in depth by redact/redact_test.go, redact/fuzz_test.go and
// redact/writer_test.go; these cases run the same promises end to end.

// echo is a local service that reflects what it received: headers, query
// and body in a JSON body, the key back in Set-Cookie and X-Api-Key, and
// a 401 that quotes the bearer token like some APIs do.
func echo(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		auth := r.Header.Get("Authorization")
		w.Header().Set("Set-Cookie", "sid="+url.QueryEscape(auth))
		w.Header().Set("X-Api-Key", r.Header.Get("X-Api-Key"))
		if r.URL.Path == "/401" {
			w.WriteHeader(401)
			fmt.Fprintf(w, `{"error":"invalid key %s"}`, strings.TrimPrefix(auth, "Bearer "))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"auth": auth, "cookie": r.Header.Get("Cookie"),
			"api_key": r.Header.Get("X-Api-Key"), "query": r.URL.RawQuery, "body": string(body)})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCase01_DirectOutput(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k, pem := canary("c01"), pemCanary("c01")
	e.secret("K", k)
	e.secret("PEM", pem)
	srv := echo(t)
	e.flow("direct",
		code("c", "console.log('k=' + secrets.K); console.log(secrets.PEM); return {k: secrets.K, pem: secrets.PEM, both: secrets.K + '|' + secrets.PEM}"),
		httpBlock("h", map[string]any{"method": "'POST'", "url": quote(srv.URL + "/echo"),
			"headers": "({'X-Key': secrets.K, 'X-Custom': 'v=' + secrets.K})", "body": "({k: secrets.K, pem: secrets.PEM})"}),
		map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "`template ${secrets.K} and ${steps.c.output.k}`"}},
		code("out", "return {echoed: steps.h.output.body, k: steps.c.output.k}"),
	)
	run, out := e.runStatus("direct", "succeeded", nil)
	contains(t, "output", out, "[REDACTED")
	// The next block saw the real value: the echo service got it.
	if b := run["output"].(map[string]any)["echoed"].(map[string]any)["body"].(string); !strings.Contains(b, "[REDACTED") {
		t.Errorf("echoed body not masked in output: %s", b)
	}
	e.sweep(nil)
}

// A JSON document inside a JSON string escapes the value twice: an
// SNS/Slack-style body built with JSON.stringify, a service that echoes
// the request body back as a string, and the editor's preview of a double
// JSON.stringify. Found by an operator trial of durable runs; the sweep
// also looks for the canary's random tail, which any escaping keeps.
func TestNestedJSONEncodings(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k := canary("nested")
	e.secret("K", k)
	srv := echo(t)
	e.flow("nested",
		httpBlock("sns", map[string]any{"method": "'POST'", "url": quote(srv.URL + "/echo"),
			"body": "({Message: JSON.stringify({password: secrets.K})})"}),
		code("c", "return {twice: JSON.stringify(JSON.stringify(secrets.K)), echoed: steps.sns.output.body.body}"),
	)
	e.runStatus("nested", "succeeded", nil)
	r := e.do("POST", "/api/v1/projects/"+e.project+"/evaluate", map[string]any{
		"expression": "JSON.stringify(JSON.stringify(secrets.K))", "environment": "development"})
	if r.Status != 200 || !strings.Contains(string(r.Body), "[REDACTED") {
		t.Errorf("evaluate: %d %s", r.Status, r.Body)
	}
	e.sweep(nil)
}

func TestCase02_Encodings(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k := canary("c02")
	e.secret("K", k)
	src := `const k = secrets.K;
const b = btoa(k);
const hex = Array.from(k).map(c => c.charCodeAt(0).toString(16).padStart(2, '0')).join('');
const enc = {
  std: b, url: b.replace(/\+/g, '-').replace(/\//g, '_'), raw: b.replace(/=+$/, ''),
  shift1: btoa('x' + k), shift2: btoa('xy' + k), basic: btoa('user:' + k),
  uri: encodeURIComponent(k), urilower: encodeURIComponent(k).replace(/%[0-9A-F]{2}/g, m => m.toLowerCase()),
  json: JSON.stringify(k), json2: JSON.stringify({k}),
  html: k.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;'),
  html34: k.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;'),
  hex: hex, HEX: hex.toUpperCase(),
};
for (const n in enc) console.log(n, enc[n]);
return enc;`
	e.flow("enc", code("c", src))
	_, out := e.runStatus("enc", "succeeded", nil)
	var got map[string]string
	_ = json.Unmarshal([]byte(out), &got)
	for n, v := range got {
		if !strings.Contains(v, "[REDACTED") {
			t.Errorf("encoding %s not masked: %q", n, v)
		}
	}
	b := base64.StdEncoding.EncodeToString([]byte(k))
	lower := func(s string) string {
		var o strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] == '%' && i+2 < len(s) {
				o.WriteString("%" + strings.ToLower(s[i+1:i+3]))
				i += 2
				continue
			}
			o.WriteByte(s[i])
		}
		return o.String()
	}
	jq, _ := json.Marshal(k)
	e.plant(b, base64.URLEncoding.EncodeToString([]byte(k)), strings.TrimRight(b, "="),
		base64.StdEncoding.EncodeToString([]byte("x"+k)), base64.StdEncoding.EncodeToString([]byte("xy"+k)),
		base64.StdEncoding.EncodeToString([]byte("user:"+k)), strings.ReplaceAll(url.QueryEscape(k), "+", "%20"),
		lower(url.QueryEscape(k)), string(jq), html.EscapeString(k),
		strings.ReplaceAll(html.EscapeString(k), "&#34;", "&quot;"), hex.EncodeToString([]byte(k)))
	e.sweep(nil)
}

func TestCase03_MultiLinePEM(t *testing.T) {
	e := sqlite(t, noRateLimit)
	pem := pemCanary("c03")
	e.secret("PEM", pem)
	end := "-----END C03 PRIVATE KEY-----"
	e.flow("pem", code("c", `const p = secrets.PEM; const lines = p.split('\n');
console.log(p); console.log(lines[1]); console.log(p.replace(/\n/g, '\r\n'));
return {all: p, line: 'x' + lines[1] + 'y', crlf: p.replace(/\n/g, '\r\n'), b64: btoa(p), end: `+quote(end)+`};`))
	run, _ := e.runStatus("pem", "succeeded", nil)
	o := run["output"].(map[string]any)
	for _, f := range []string{"all", "line", "crlf", "b64"} {
		if !strings.Contains(fmt.Sprint(o[f]), "[REDACTED") {
			t.Errorf("%s not masked: %.200q", f, o[f])
		}
	}
	// Boilerplate is not a mask: it would shred every PEM in the run.
	if o["end"] != end {
		t.Errorf("boilerplate line was masked: %q", o["end"])
	}
	e.sweep(nil)
}

func TestCase04_WeakValues(t *testing.T) {
	e := sqlite(t, noRateLimit)
	strong := canary("c04")
	e.secret("STRONG", strong)
	for _, weak := range []string{"test", "1234"} {
		m := e.must(201, "POST", "/api/v1/secrets", map[string]any{"name": "W" + weak, "value": weak, "project": "p"})
		if m["weak"] != true || !strings.Contains(js(m["warnings"]), "low entropy") {
			t.Errorf("weak value %q not flagged: %v", weak, m)
		}
	}
	if m := e.must(200, "GET", "/api/v1/secrets?project=p", nil); !strings.Contains(js(m), `"weak":true`) {
		t.Errorf("listing does not show weakness: %v", m)
	}
	text := "testing order 9123456 protest attestation"
	e.flow("weak", code("c", "const a = secrets.Wtest + secrets.W1234; console.log("+quote(text)+"); return {text: "+quote(text)+", s: secrets.STRONG}"))
	run, _ := e.runStatus("weak", "succeeded", nil)
	if got := run["output"].(map[string]any)["text"]; got != text {
		t.Errorf("a weak value shredded unrelated text: %q", got)
	}
	stored, _ := e.events(run["id"].(string))
	contains(t, "events", stored, text)
	e.sweep(nil)
}

func TestCase05_ChunkBoundaries(t *testing.T) {
	e := sqlite(t, func(c *app.Config) { c.Exec = true; c.RateLimit = -1 })
	k := canary("c05")
	e.secret("K", k)
	// The script writes the value split at every offset, the two halves
	// in separate writes with a pause between (the redact writer's unit
	// test, redact/writer_test.go, covers every offset byte by byte).
	script := `i=1; n=${#K}; while [ $i -lt $n ]; do printf '%s' "$(printf '%s' "$K" | cut -c1-$i)"; sleep 0.002; printf '%s|\n' "$(printf '%s' "$K" | cut -c$((i+1))-)"; i=$((i+1)); done; printf '%s' "$K" >&2`
	e.flow("chunks", map[string]any{"id": "x", "type": "exec", "config": map[string]any{
		"command": []any{script}, "shell": true, "secrets": []any{map[string]any{"key": "K", "as_env_var": "K"}}}})
	run, out := e.runStatus("chunks", "succeeded", nil)
	if n := strings.Count(out, "[REDACTED"); n < len(k)-1 {
		t.Errorf("only %d of %d split writes masked: %.600s", n, len(k)-1, out)
	}
	_ = run
	e.sweep(nil)
}

func TestCase06_HTTPClientErrors(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k := canary("c06")
	e.secret("K", k)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	plain := echo(t)
	cases := map[string]string{
		"dns":     "http://hushflow-nonexistent.invalid/x",
		"refused": "http://127.0.0.1:1/x",
		"tls":     strings.Replace(plain.URL, "http://", "https://", 1) + "/x",
		"timeout": slow.URL + "/x",
	}
	for name, u := range cases {
		e.flow("err-"+name, httpBlock("h", map[string]any{"url": "`" + u + "?api_key=${secrets.K}&k2=${encodeURIComponent(secrets.K)}`",
			"headers": "({Authorization: 'Bearer ' + secrets.K})", "timeout": "'700ms'"}))
		_, msg := e.runStatus("err-"+name, "failed", nil)
		if msg == "" || msg == "<nil>" {
			t.Errorf("%s: no error", name)
		}
		t.Logf("%s: %s", name, msg)
	}
	e.sweep(nil)
}

func TestCase07_Reflection(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k := canary("c07")
	e.secret("K", k)
	srv := echo(t)
	// A header value that is not a secret is masked by its name alone. It
	// is made at run time (reversed input), so that only the header could
	// show it.
	literal := canary("c07literal")
	rev := []byte(literal)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	hdr := "({Authorization: 'Bearer ' + secrets.K, Cookie: 'sid=' + secrets.K, 'X-Api-Key': secrets.K, 'Proxy-Authorization': 'Basic ' + input.rev.split('').reverse().join('')})"
	e.flow("reflect",
		httpBlock("ok", map[string]any{"url": quote(srv.URL + "/echo?x=1"), "headers": hdr}),
		httpBlock("bad", map[string]any{"url": quote(srv.URL + "/401"), "headers": "({Authorization: 'Bearer ' + secrets.K})"}),
		code("c", "return {ok: steps.ok.output, bad: steps.bad.output}"))
	run, out := e.runStatus("reflect", "succeeded", map[string]any{"rev": string(rev)})
	contains(t, "output", out, "[REDACTED")
	if st := run["output"].(map[string]any)["bad"].(map[string]any)["status"]; st != 401.0 {
		t.Errorf("401 status: %v", st)
	}
	stored, _ := e.events(run["id"].(string))
	contains(t, "events", stored, "http_request", "http_response", "invalid key [REDACTED")
	var ev struct{ Events []map[string]any }
	_ = json.Unmarshal([]byte(stored), &ev)
	for _, x := range ev.Events {
		if x["type"] == "http_request" || x["type"] == "http_response" {
			apptest.AssertAbsent(t, fmt.Sprint(x["type"], " event"), js(x), literal)
		}
	}
	e.sweep(nil)
	t.Run("ByNameInBlockStartedConfig", func(t *testing.T) {
		e.t = t
		e.plant(literal)
		e.sweep(nil)
	})
}

func TestCase08_DerivedValues(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k := canary("c08")
	e.secret("K", k)
	// A transformation the redactor cannot know: the reversed base64.
	b := base64.StdEncoding.EncodeToString([]byte(k))
	r := []byte(b)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	derived := string(r)
	e.plant(derived)
	e.flow("derived",
		code("mint", "const t = btoa(secrets.K).split('').reverse().join(''); secrets.mask(t); console.log('token', t); return {token: t}"),
		map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'later: ' + steps.mint.output.token"}},
		code("c", "return {again: steps.mint.output.token, enc: encodeURIComponent(steps.mint.output.token)}"))
	_, out := e.runStatus("derived", "succeeded", nil)
	contains(t, "output", out, "[REDACTED")
	e.sweep(nil)
}

func TestCase09_SinksSweep(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k, pem := canary("c09"), pemCanary("c09")
	e.secret("K", k)
	e.secret("PEM", pem)
	e.flow("sinks",
		code("c", "console.log(secrets.K); console.error(secrets.PEM); return {k: secrets.K}"),
		code("boom", "throw new Error('failed with ' + secrets.K + ' and ' + secrets.PEM)"))
	_, msg := e.runStatus("sinks", "failed", nil)
	contains(t, "run error", msg, "[REDACTED")
	// The editor's preview, a failing preview, the flow export, the
	// metrics and the audit trail.
	prev := e.must(200, "POST", "/api/v1/projects/p/evaluate", map[string]any{"expression": "secrets.K + '/' + btoa(secrets.K)", "environment": "development"})
	contains(t, "preview", js(prev), "[REDACTED")
	e.do("POST", "/api/v1/projects/p/evaluate", map[string]any{"expression": "(() => { throw new Error(secrets.K) })()", "environment": "development"})
	e.do("GET", "/api/v1/projects/p/flows/sinks", nil)
	e.do("GET", "/api/v1/projects/p/flows/sinks/versions", nil)
	metrics := e.do("GET", "/metrics", nil)
	e.sweep(map[string]string{"metrics": string(metrics.Body)})
}

func TestCase10_SecretInRunInput(t *testing.T) {
	e := sqlite(t, noRateLimit)
	k := canary("c10")
	e.secret("K", k)
	e.flow("in", code("c", "console.log(input.k); return {k: input.k, all: input}"))
	_, out := e.runStatus("in", "succeeded", map[string]any{"k": k, "nested": []any{"x " + k + " y"}})
	contains(t, "output", out, "[REDACTED")
	// A webhook payload and a project event's payload.
	e.flowDef(map[string]any{"name": "hook", "trigger": map[string]any{"type": "webhook"}, "blocks": []any{code("c", "return input")}})
	resp, err := http.Post(e.s.URL+"/hooks/p/hook", "application/json", strings.NewReader(js(map[string]any{"token": k})))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("webhook: %d %s", resp.StatusCode, body)
	}
	var hook map[string]any
	_ = json.Unmarshal(body, &hook)
	e.waitRun(hook["id"].(string))
	e.flowDef(map[string]any{"name": "ev", "trigger": map[string]any{"type": "event", "topic": "leak:*"}, "blocks": []any{code("c", "return input")}})
	e.must(202, "POST", "/api/v1/projects/p/events", map[string]any{"topic": "leak:x", "environment": "development", "payload": map[string]any{"k": k}})
	var evRun string
	apptest.Eventually(t, 20*time.Second, "the event's run", func() error {
		l := e.must(200, "GET", "/api/v1/projects/p/runs?flow=ev", nil)
		runs, _ := l["runs"].([]any)
		if len(runs) == 0 {
			return errors.New("no run of flow ev")
		}
		evRun = runs[0].(map[string]any)["id"].(string)
		return nil
	})
	e.waitRun(evRun)
	e.sweep(nil)
}

// waitRun polls a run until it ends and remembers it for the sweep.
func (e *env) waitRun(id string) map[string]any {
	e.t.Helper()
	var r map[string]any
	apptest.Eventually(e.t, 30*time.Second, "run "+id+" to end", func() error {
		r = e.must(200, "GET", "/api/v1/runs/"+id, nil)
		switch r["status"] {
		case "succeeded", "failed", "canceled":
			return nil
		}
		return fmt.Errorf("run %v", r)
	})
	e.mu.Lock()
	e.runs = append(e.runs, id)
	e.mu.Unlock()
	return r
}
