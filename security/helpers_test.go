package security_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
)

// canary returns a unique, high-entropy secret value for one test that
// holds every character encodings treat specially: & < > " % \.
func canary(tag string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "cnry_" + tag + `_&<>"%\_` + hex.EncodeToString(b[:])
}

// pemCanary returns a unique multi-line PEM-like value.
func pemCanary(tag string) string {
	var b [48]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return "-----BEGIN " + strings.ToUpper(tag) + " PRIVATE KEY-----\n" +
		"MIIB" + h[:60] + "\n" + "Qk9" + h[60:] + `&<>"%\` + "\n" +
		"-----END " + strings.ToUpper(tag) + " PRIVATE KEY-----"
}

// pemLines are the body lines of a PEM canary (the ones that must never
// show on their own).
func pemLines(pem string) []string {
	var out []string
	for _, l := range strings.Split(pem, "\n") {
		if !strings.HasPrefix(l, "-----") {
			out = append(out, l)
		}
	}
	return out
}

// env is one test's server with a record of every response it received,
// the runs it started and the values it planted.
type env struct {
	t       *testing.T
	s       *apptest.Server
	mu      sync.Mutex // guards seen and runs
	seen    strings.Builder
	runs    []string
	canary  []string // planted values: the sweep looks for every form of each
	project string
}

// newEnv starts a server on b with a project "p" and nothing else.
func newEnv(t *testing.T, s *apptest.Server) *env {
	e := &env{t: t, s: s, project: "p"}
	e.must(201, "POST", "/api/v1/projects", map[string]string{"name": "p"})
	return e
}

// sqlite starts one server on SQLite (the cases that do not depend on the
// database run once, to keep the suite fast).
func sqlite(t *testing.T, opts ...func(*app.Config)) *env {
	apptest.SkipShort(t)
	return newEnv(t, apptest.Start(t, storetest.SQLiteConfig(t), opts...))
}

// each runs f on a server of every backend.
func each(t *testing.T, f func(t *testing.T, e *env), opts ...func(*app.Config)) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) { f(t, newEnv(t, s)) }, opts...)
}

func noRateLimit(c *app.Config) { c.RateLimit = -1 }

// defaultEgress starts the server with the default egress policy: no
// private or loopback address allowed.
func defaultEgress(c *app.Config) { c.HTTPAllow = ""; c.RateLimit = -1 }

func (e *env) record(method, path string, r apptest.Response) {
	e.mu.Lock()
	defer e.mu.Unlock()
	path, _, _ = strings.Cut(path, "?") // the request's own query is not a response
	fmt.Fprintf(&e.seen, "%s %s %d %v\n%s\n", method, path, r.Status, r.Header, r.Body)
}

// do sends a request with the admin token and records the response.
func (e *env) do(method, path string, body any) apptest.Response {
	e.t.Helper()
	r := e.s.Do(method, path, body)
	e.record(method, path, r)
	return r
}

func (e *env) doToken(tok, method, path string, body any) apptest.Response {
	e.t.Helper()
	r := e.s.DoToken(tok, method, path, body)
	e.record(method, path, r)
	return r
}

// must sends a request and fails unless the status is want.
func (e *env) must(want int, method, path string, body any) map[string]any {
	e.t.Helper()
	r := e.do(method, path, body)
	if r.Status != want {
		e.t.Fatalf("%s %s: status %d, want %d: %.600s", method, path, r.Status, want, r.Body)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.JSON(e.t)
}

// secret plants value as secret name in project p and remembers it for
// the sweep.
func (e *env) secret(name, value string, extra ...map[string]any) map[string]any {
	e.t.Helper()
	body := map[string]any{"name": name, "value": value, "project": e.project}
	for _, x := range extra {
		for k, v := range x {
			body[k] = v
		}
	}
	e.plant(value)
	return e.must(201, "POST", "/api/v1/secrets", body)
}

// plant adds values the sweep must not find.
func (e *env) plant(values ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, v := range values {
		e.canary = append(e.canary, v)
		// The random tail of a canary appears as it is in every escaping
		// of the value (JSON inside JSON, say): searching for it too
		// catches forms the list of encodings does not name.
		if i := strings.LastIndexByte(v, '_'); strings.HasPrefix(v, "cnry_") && len(v)-i > 16 {
			e.canary = append(e.canary, v[i+1:])
		}
		if strings.Contains(v, "\n") {
			e.canary = append(e.canary, pemLines(v)...)
			e.canary = append(e.canary, strings.ReplaceAll(v, "\n", "\r\n"))
		}
	}
}

// flow saves a flow of blocks in project p.
func (e *env) flow(name string, blocks ...map[string]any) {
	e.t.Helper()
	e.flowDef(map[string]any{"name": name, "trigger": map[string]any{"type": "manual"}, "blocks": blocks})
}

func (e *env) flowDef(def map[string]any) {
	e.t.Helper()
	e.must(201, "POST", "/api/v1/projects/"+e.project+"/flows", def)
}

// run starts flow and waits for its end; it returns the run.
func (e *env) run(flow string, input any) map[string]any {
	e.t.Helper()
	body := map[string]any{"environment": "development"}
	if input != nil {
		body["input"] = input
	}
	r := e.must(200, "POST", "/api/v1/projects/"+e.project+"/flows/"+flow+"/runs?wait=60s", body)
	e.mu.Lock()
	e.runs = append(e.runs, r["id"].(string))
	e.mu.Unlock()
	return r
}

// runStatus runs flow and fails unless it ends with status want; it
// returns the run's error text (or output as JSON).
func (e *env) runStatus(flow, want string, input any) (map[string]any, string) {
	e.t.Helper()
	r := e.run(flow, input)
	if r["status"] != want {
		e.t.Fatalf("run of %s: status %v, want %s: %.800s", flow, r["status"], want, js(r))
	}
	if want == "failed" {
		return r, fmt.Sprint(r["error"])
	}
	return r, js(r["output"])
}

func code(id, src string) map[string]any {
	return map[string]any{"id": id, "type": "code", "config": map[string]any{"code": src}}
}

func httpBlock(id string, cfg map[string]any) map[string]any {
	return map[string]any{"id": id, "type": "http", "config": cfg}
}

func quote(s string) string { return js(s) } // a JavaScript string literal

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// events returns the stored events of a run and its SSE stream.
func (e *env) events(id string) (stored, stream string) {
	e.t.Helper()
	ev := e.do("GET", "/api/v1/runs/"+id+"/events", nil)
	st := e.do("GET", "/api/v1/runs/"+id+"/events?follow=1", nil)
	if ev.Status != 200 || st.Status != 200 {
		e.t.Fatalf("events of %s: %d / %d", id, ev.Status, st.Status)
	}
	return string(ev.Body), string(st.Body)
}

// sweep fails the test if any planted value, in any form, shows in a
// sink: every response received, every run's events and event stream,
// the run list, the server log and every stored row. extra adds
// surfaces of the test's own (name -> text).
func (e *env) sweep(extra map[string]string) {
	e.t.Helper()
	if len(e.canary) == 0 {
		e.t.Fatal("sweep without planted values")
	}
	surfaces := map[string]string{}
	for _, id := range e.runs {
		st, stream := e.events(id)
		surfaces["events of "+id] = st
		surfaces["event stream of "+id] = stream
		surfaces["run "+id] = string(e.do("GET", "/api/v1/runs/"+id, nil).Body)
	}
	surfaces["run list"] = string(e.do("GET", "/api/v1/projects/"+e.project+"/runs", nil).Body)
	surfaces["flow list"] = string(e.do("GET", "/api/v1/projects/"+e.project+"/flows", nil).Body)
	surfaces["secret list"] = string(e.do("GET", "/api/v1/secrets?project="+e.project, nil).Body)
	surfaces["audit"] = string(e.do("GET", "/api/v1/audit?project="+e.project, nil).Body)
	e.mu.Lock()
	surfaces["API responses"] = e.seen.String()
	e.mu.Unlock()
	surfaces["server log"] = e.s.Logs.String()
	surfaces["database"] = apptest.DumpTables(e.t, e.s.App.DB)
	for k, v := range extra {
		surfaces[k] = v
	}
	for name, text := range surfaces {
		apptest.AssertAbsent(e.t, name, text, e.canary...)
	}
}

// contains fails unless text holds every want.
func contains(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q: %.800s", what, w, text)
		}
	}
}

// pgDump returns a pg_dump of the server's PostgreSQL database ("" on
// SQLite or without pg_dump).
func pgDump(t *testing.T, db *store.DB) string {
	t.Helper()
	if db.Dialect != store.Postgres {
		return ""
	}
	path, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Log("pg_dump not on PATH: dump not checked")
		return ""
	}
	var name string
	if err := db.Raw("SELECT current_database()").Scan(&name).Error; err != nil {
		t.Fatal(err)
	}
	url := os.Getenv(storetest.EnvURL)
	i := strings.LastIndex(url, "/")
	q := ""
	if j := strings.Index(url[i:], "?"); j >= 0 {
		q = url[i+j:]
	}
	out, err := exec.Command(path, "--data-only", "--dbname="+url[:i+1]+name+q).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v: %s", err, out)
	}
	return string(out)
}

// healthy fails unless /healthz answers within d.
func healthy(t *testing.T, s *apptest.Server, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	r := s.Do("GET", "/healthz", nil)
	took := time.Since(start)
	if r.Status != 200 || took > d {
		t.Errorf("/healthz: %d after %s", r.Status, took)
	}
	return took
}

func dumpTables(t *testing.T, e *env) string { return apptest.DumpTables(t, e.s.App.DB) }
