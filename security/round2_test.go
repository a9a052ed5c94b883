package security_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// Security round two (issue 16): cases 38 and on, numbered after the 37
// cases of SECURITY.md. Each is a named test against a real server that
// fails without its fix.

// Case 38: a pin follows the value, whichever way the run read it. A
// development run reads a production secret pinned to host A with
// secrets.get(..., {environment: 'production'}) (also under a name the
// development scope defines unpinned with another value, and passed
// through a code block's output) and tries to send it to host B.
func TestCase38_PinFollowsValue(t *testing.T) {
	e := sqlite(t, func(c *app.Config) { c.HTTPAllow = "127.0.0.0/8"; c.RateLimit = -1 })
	hostA := newCounter(t, "127.0.0.1:0", nil)
	hostB := newCounter(t, "127.0.0.2:0", nil)
	prodOnly, prodK, devK := canary("c38p"), canary("c38k"), canary("c38d")
	pinA := map[string]any{"environment": "production", "allowed_hosts": []string{"127.0.0.1"}}
	e.secret("P", prodOnly, pinA)
	e.secret("K", prodK, pinA)
	e.secret("K", devK, map[string]any{"environment": "development"})

	// The values are read in a code block (secrets.get is awaited there)
	// and sent by the http block after it.
	read := code("c", "return {p: await secrets.get('P', {environment: 'production'}), k: await secrets.get('K', {environment: 'production'})}")
	send := func(name string, cfg map[string]any) {
		cfg["timeout"] = "'2s'"
		e.flow(name, read, httpBlock("h", cfg))
	}
	// Allowed where pinned: the values reach host A.
	send("to-a", map[string]any{"method": "'POST'", "url": quote(hostA.URL + "/ok"), "body": "steps.c.output"})
	e.runStatus("to-a", "succeeded", nil)
	if hostA.hits.Load() != 1 {
		t.Fatalf("host A: %d hits", hostA.hits.Load())
	}
	b := hostB.URL
	ways := map[string]map[string]any{
		"other-env":     {"method": "'POST'", "url": quote(b + "/x"), "body": "({p: steps.c.output.p})"},
		"same-name":     {"method": "'POST'", "url": quote(b + "/x"), "body": "({k: steps.c.output.k})"},
		"header-base64": {"url": quote(b + "/x"), "headers": "({Authorization: 'Basic ' + btoa('u:' + steps.c.output.k)})"},
		"url":           {"url": "`" + b + "/x?q=${encodeURIComponent(steps.c.output.p)}`"},
	}
	for name, cfg := range ways {
		send("pin-"+name, cfg)
		if _, msg := e.runStatus("pin-"+name, "failed", nil); !strings.Contains(msg, "may only be sent to 127.0.0.1") {
			t.Errorf("%s: not refused by pinning: %s", name, msg)
		}
	}
	// The development value of K is not pinned: it may go to host B.
	e.flow("dev-k", httpBlock("h", map[string]any{"method": "'POST'", "url": quote(b + "/x"), "body": "({k: secrets.K})"}))
	e.runStatus("dev-k", "succeeded", nil)
	if n := hostB.hits.Load(); n != 1 {
		t.Errorf("host B received %d requests, want 1 (the unpinned development value)", n)
	}
	e.sweep(nil)
}

// Case 41: after an update, the earlier value (often still valid during a
// rotation) is masked like the current one wherever a run shows it: run
// input, events, the live stream, the run and run list, and at rest in
// runs.input and events.data. An earlier version is pinned like the
// current one.
func TestCase41_PreviousVersionsMasked(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		old, cur := canary("c41old"), canary("c41cur")
		id := e.secret("K", old)["id"].(string)
		e.plant(cur)
		e.must(200, "PUT", "/api/v1/secrets/"+id, map[string]any{"value": cur})
		e.flow("echo", code("c", "console.log('old', input.old); return {old: input.old, cur: secrets.K}"))
		_, out := e.runStatus("echo", "succeeded", map[string]any{"old": old})
		if !strings.Contains(out, "[REDACTED:K]") {
			t.Errorf("output %s: no mask of K", out)
		}
		e.sweep(nil)
	})
}

// Case 40: the server log's redactor knows every live value from the
// start, not only those this process sealed or opened: after a restart,
// and on a replica that never touched the secret (it learns values other
// replicas write within its poll interval), a value in a URL path is
// masked in the access log line.
func TestCase40_LogRedactorKnowsEveryValue(t *testing.T) {
	apptest.SkipShort(t)
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			dbc := b.Config(t)
			poll := func(c *app.Config) { c.SecretsPoll = 20 * time.Millisecond }
			first := newEnv(t, apptest.Start(t, dbc, poll))
			before := canary("c40a")
			first.secret("K", before)
			first.s.Stop()

			// After a restart.
			a := apptest.Start(t, dbc, poll)
			e := &env{t: t, s: a, project: "p"}
			e.plant(before)
			e.do("GET", "/api/v1/projects/"+url.PathEscape(before), nil)
			apptest.AssertAbsent(t, "restarted server's log", a.Logs.String(), before)

			// A replica that never touched the value: B runs beside A, the
			// value is written on A.
			b := apptest.Start(t, dbc, poll)
			after := canary("c40b")
			e.secret("L", after)
			apptest.Eventually(t, 10*time.Second, "replica B to learn the new value", func() error {
				if b.App.Redactor.String(after) == after {
					return fmt.Errorf("not known yet")
				}
				return nil
			})
			b.Do("GET", "/api/v1/projects/"+url.PathEscape(after), nil)
			b.Do("GET", "/api/v1/projects/"+url.PathEscape(before), nil)
			for name, logs := range map[string]string{"restarted server": a.Logs.String(), "replica": b.Logs.String()} {
				apptest.AssertAbsent(t, name+" log", logs, before, after)
				if !strings.Contains(logs, "[REDACTED:") {
					t.Errorf("%s log: no mask at all", name)
				}
			}
		})
	}
}

// Case 43: revoking a token ends the live event streams it opened (they
// went on to the end of the run): the stream gets an error event and
// closes within about a second.
func TestCase43_RevokedTokenEndsStreams(t *testing.T) {
	e := sqlite(t, noRateLimit)
	u := e.must(201, "POST", "/api/v1/users", map[string]any{"name": "watcher"})
	tok := e.must(201, "POST", "/api/v1/users/"+u["id"].(string)+"/tokens", map[string]string{"name": "t"})
	e.must(200, "PUT", "/api/v1/projects/p/members/"+u["id"].(string), map[string]string{"role": "viewer"})
	e.flow("slow", map[string]any{"id": "nap", "type": "delay", "timeout": "2m", "config": map[string]any{"duration": "'60s'"}})
	run := e.must(202, "POST", "/api/v1/projects/p/flows/slow/runs", map[string]any{"environment": "development"})
	id := run["id"].(string)
	req, _ := http.NewRequest("GET", e.s.URL+"/api/v1/runs/"+id+"/events?follow=1", nil)
	req.Header.Set("Authorization", "Bearer "+tok["token"].(string))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("follow: %v %v", resp, err)
	}
	defer resp.Body.Close()
	var body apptest.SyncBuffer
	closed := make(chan struct{})
	go func() { _, _ = io.Copy(&body, resp.Body); close(closed) }()
	apptest.Eventually(t, 10*time.Second, "the stream to show the run started", func() error {
		if !strings.Contains(body.String(), "run_started") {
			return fmt.Errorf("got %q", body.String())
		}
		return nil
	})
	e.must(204, "DELETE", "/api/v1/tokens/"+tok["id"].(string), nil)
	apptest.Eventually(t, 10*time.Second, "the stream of the revoked token to end", func() error {
		select {
		case <-closed:
			return nil
		default:
			return fmt.Errorf("still open")
		}
	})
	if s := body.String(); !strings.Contains(s, "event: error") || strings.Contains(s, "event: end") {
		t.Errorf("stream: %s", s)
	}
	e.must(200, "POST", "/api/v1/runs/"+id+"/cancel", nil)
}

// Case 44: a sink that changes case (a host name in an egress refusal or
// a DNS error) does not show a secret used in a DNS label in a form the
// redactor does not know: the refusal names the host as the request
// spelled it.
func TestCase44_HostCaseInErrors(t *testing.T) {
	e := sqlite(t, func(c *app.Config) { c.HTTPAllow = "127.0.0.0/8"; c.RateLimit = -1 })
	label := func(tag string) string { // a DNS label of mixed case
		var b [12]byte
		_, _ = rand.Read(b[:])
		h := hex.EncodeToString(b[:])
		return "Up" + tag + strings.ToUpper(h[:12]) + "mIx" + h[12:]
	}
	pinned, free := label("P"), label("F")
	for _, v := range []string{pinned, free} {
		e.plant(strings.ToLower(v), strings.ToUpper(v))
	}
	e.secret("PINNED", pinned, map[string]any{"allowed_hosts": []string{"127.0.0.1"}})
	e.secret("FREE", free)
	msg := e.refusedRun("pinned-label", map[string]any{"url": "`http://${secrets.PINNED}.example.invalid/`"})
	if !strings.Contains(msg, "may only be sent to 127.0.0.1") || !strings.Contains(msg, "[REDACTED:PINNED]") {
		t.Errorf("pinned label: %s", msg)
	}
	msg = e.refusedRun("free-label", map[string]any{"url": "`http://${secrets.FREE}.example.invalid/`"})
	if strings.Contains(msg, "may only be sent") {
		t.Errorf("free label refused by pinning: %s", msg)
	}
	e.sweep(nil)
}

// Case 42: every string the API returns passes through a redactor, the
// text users type too. Text that holds a secret's value is refused when
// it is saved (a flow's description, env or block configuration, a
// secret's description, an installation's config), naming where and
// which secret; text saved before the value became a secret is masked
// when returned, to viewers too; 400 errors that quote a submitted field
// (cron, timeout, unknown field, environment) are masked.
func TestCase42_EveryStringMasked(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		later := canary("c42l")
		viewer := e.member("v42", "p", "viewer")
		// Saved before the value is a secret (so kept as typed, and not
		// planted for the sweep): masked when shown from then on.
		e.s.Must(201, "POST", "/api/v1/projects/p/flows", map[string]any{"name": "before", "description": "call with " + later,
			"env": map[string]string{"TOKEN": later}, "trigger": map[string]any{"type": "manual"}, "blocks": []any{code("c", "return env.TOKEN.length")}})
		e.s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "LATER", "value": later, "project": "p"})
		for _, path := range []string{"/api/v1/projects/p/flows/before", "/api/v1/projects/p/flows/before/versions", "/api/v1/projects/p/flows"} {
			r := e.doToken(viewer, "GET", path, nil)
			if r.Status != 200 {
				t.Errorf("viewer GET %s: %d %.300s", path, r.Status, r.Body)
			}
			apptest.AssertAbsent(t, "viewer GET "+path, string(r.Body), later)
		}
		if r := e.doToken(viewer, "GET", "/api/v1/projects/p/flows/before", nil); !strings.Contains(string(r.Body), "[REDACTED:LATER]") {
			t.Errorf("flow get: no mask: %.400s", r.Body)
		}

		k := canary("c42")
		e.secret("K", k)
		refused := func(what string, r apptest.Response) {
			t.Helper()
			if r.Status != 400 || !strings.Contains(string(r.Body), "secret_value_pasted") || !strings.Contains(string(r.Body), "secret K") {
				t.Errorf("%s: %d %.400s", what, r.Status, r.Body)
			}
		}
		flow := func(name string, mut func(map[string]any)) map[string]any {
			def := map[string]any{"name": name, "trigger": map[string]any{"type": "manual"}, "blocks": []any{code("c", "return 1")}}
			mut(def)
			return def
		}
		refused("description", e.do("POST", "/api/v1/projects/p/flows", flow("d", func(d map[string]any) { d["description"] = "call with " + k })))
		refused("env", e.do("POST", "/api/v1/projects/p/flows", flow("v", func(d map[string]any) { d["env"] = map[string]string{"TOKEN": k} })))
		codeRefused := e.do("POST", "/api/v1/projects/p/flows", flow("c", func(d map[string]any) {
			d["blocks"] = []any{code("first", "return 1"), code("c", "return "+js("Bearer "+k))}
		}))
		refused("code", codeRefused)
		if !strings.Contains(string(codeRefused.Body), `blocks[\"c\"].config.code holds`) {
			t.Errorf("the refusal does not name the block by its id: %s", codeRefused.Body)
		}
		refused("update", e.do("PUT", "/api/v1/projects/p/flows/before", flow("before", func(d map[string]any) { d["description"] = "now " + k })))
		refused("secret description", e.do("POST", "/api/v1/secrets", map[string]any{"name": "D", "value": canary("c42d"), "project": "p", "description": "same as " + k}))
		own := canary("c42o")
		e.plant(own)
		if r := e.do("POST", "/api/v1/secrets", map[string]any{"name": "OWN", "value": own, "project": "p", "description": "it is " + own}); r.Status != 400 {
			t.Errorf("a description holding its own value: %d %s", r.Status, r.Body)
		}
		refused("installation", e.do("POST", "/api/v1/projects/p/installations", map[string]any{"app": "bearer_api", "name": "api",
			"config": map[string]string{"token": "secrets.K", "base_url": js("https://api.example.com/" + k)}}))
		// Errors that quote what was sent.
		for _, def := range []map[string]any{
			flow("cron", func(d map[string]any) { d["trigger"] = map[string]any{"type": "schedule", "cron": k} }),
			flow("timeout", func(d map[string]any) {
				d["blocks"] = []any{map[string]any{"id": "c", "type": "code", "timeout": k, "config": map[string]any{"code": "return 1"}}}
			}),
			flow("unknown", func(d map[string]any) {
				d["blocks"] = []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": "return 1", k: "x"}}}
			}),
			flow("field", func(d map[string]any) { d[k] = 1 }),
		} {
			if r := e.do("POST", "/api/v1/projects/p/flows", def); r.Status != 400 {
				t.Errorf("%v: %d %s", def["name"], r.Status, r.Body)
			}
		}
		e.do("POST", "/api/v1/secrets", map[string]any{"name": "X", "value": "v", "project": "p", "environment": k})
		e.sweep(nil)
	})
}

// Case 39: a protected environment's secrets resolve only in its own
// runs, unless a secret names the other environments allowed to read it
// (readable_from). Before, any run could read any environment's secrets
// with secrets.get(..., {environment}).
func TestCase39_ProtectedEnvironments(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		prod, shared := canary("c39p"), canary("c39s")
		e.secret("PROD_ONLY", prod, map[string]any{"environment": "production"})
		sharedID := e.secret("SHARED", shared, map[string]any{"environment": "production", "readable_from": []string{"development"}})["id"].(string)
		// Where a value in place may go is never widened without a new
		// value (an editor could then send it there); its description
		// may change alone.
		for _, body := range []map[string]any{{"readable_from": []string{"development", "staging"}}, {"allowed_hosts": []string{"evil.example"}, "description": "x"}} {
			if r := e.do("PUT", "/api/v1/secrets/"+sharedID, body); r.Status != 400 || !strings.Contains(string(r.Body), "change only with a new value") {
				t.Errorf("PUT %v without a value: %d %s", body, r.Status, r.Body)
			}
		}
		before := e.must(200, "GET", "/api/v1/secrets/"+sharedID, nil)["updated_at"]
		if r := e.do("PUT", "/api/v1/secrets/"+sharedID, map[string]any{"description": "shared with development"}); r.Status != 200 || r.JSON(t)["version"] != float64(1) ||
			r.JSON(t)["updated_at"] != before {
			// updated_at says when the value changed: an exposure mark
			// compares it with when a run loaded the value.
			t.Errorf("PUT a description alone: %d %s (updated_at was %v)", r.Status, r.Body, before)
		}
		// A mistyped environment would grant nothing, silently: refused.
		if r := e.do("POST", "/api/v1/secrets", map[string]any{"name": "TYPO", "value": canary("c39t"), "project": "p", "environment": "production",
			"readable_from": []string{"stagin"}}); r.Status != 400 || !strings.Contains(string(r.Body), `readable_from names \"stagin\", which is not an environment; did you mean \"staging\"?`) {
			t.Errorf("readable_from with a typo: %d %s", r.Status, r.Body)
		}
		e.flow("read", code("c", "return {v: await secrets.get(input.name, {environment: 'production'})}"))
		runIn := func(environment, name string) map[string]any {
			return e.must(200, "POST", "/api/v1/projects/p/flows/read/runs?wait=60s", map[string]any{"environment": environment, "input": map[string]any{"name": name}})
		}
		// Not protected yet: readable from development, as before.
		if r := runIn("development", "PROD_ONLY"); r["status"] != "succeeded" {
			t.Fatalf("unprotected read: %v", r)
		}
		// Only an organization admin protects an environment.
		editor := e.member("ed39", "p", "editor")
		if r := e.doToken(editor, "PUT", "/api/v1/environments/production", map[string]any{"protected": true}); r.Status != 403 {
			t.Errorf("editor protects: %d", r.Status)
		}
		if env := e.must(200, "PUT", "/api/v1/environments/production", map[string]any{"protected": true}); env["protected"] != true {
			t.Fatalf("protect: %v", env)
		}
		r := runIn("development", "PROD_ONLY")
		if r["status"] != "failed" || !strings.Contains(fmt.Sprint(r["error"]), "production is protected") {
			t.Errorf("development read of a protected secret: %v", r)
		}
		if r := runIn("staging", "SHARED"); r["status"] != "failed" || !strings.Contains(fmt.Sprint(r["error"]), "readable_from") {
			t.Errorf("staging read of a secret readable from development: %v", r)
		}
		if r := runIn("development", "SHARED"); r["status"] != "succeeded" {
			t.Errorf("development read of a secret readable from development: %v", r)
		}
		if r := runIn("production", "PROD_ONLY"); r["status"] != "succeeded" {
			t.Errorf("production read of its own secret: %v", r)
		}
		// The refusal is audited; the environment list shows the setting.
		audit := e.must(200, "GET", "/api/v1/audit?project=p", nil)
		if !strings.Contains(js(audit), "read_denied") {
			t.Errorf("no read_denied record: %s", js(audit))
		}
		envs := e.must(200, "GET", "/api/v1/environments", nil)
		if !strings.Contains(js(envs), `"name":"production","protected":true`) && !strings.Contains(js(envs), `"protected":true`) {
			t.Errorf("environments: %s", js(envs))
		}
		e.sweep(nil)
	})
}

// Case 42, name-like values: the save-time warnings quote the name a user
// typed for a trigger environment and for a called flow (apperr.Echo
// shows a name-like value as it is). A secret whose value looks like a
// name (a GitHub-style token: letters, digits and _ only) pasted into
// either field is refused before any warning is made, or masked: it is
// never shown back, logged or stored.
func TestCase42_NameLikeValueInWarnings(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		k := "ghp_" + hex.EncodeToString(b[:]) // 28 characters Echo would quote
		e.secret("GH", k)
		envTrigger := map[string]any{"name": "envk", "trigger": map[string]any{"type": "webhook", "environment": k},
			"blocks": []any{code("c", "return 1")}}
		calls := map[string]any{"name": "callk", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "f", "type": "flow", "config": map[string]any{"flow": js(k)}}}}
		for _, def := range []map[string]any{envTrigger, calls} {
			r := e.do("POST", "/api/v1/projects/p/flows", def)
			if r.Status != 400 || !strings.Contains(string(r.Body), "secret_value_pasted") {
				t.Errorf("flow %v holding a secret's value: %d %.400s", def["name"], r.Status, r.Body)
			}
		}
		e.sweep(nil)
	})
}

// Case 62 (attacker round four): names and ids a client chooses are never
// a way to show a value in clear.
//   - A secret's value as the name of a project, an environment, a user,
//     a token or another secret is refused: those names are listed
//     unmasked, to everyone, and a secret's name is its mask label.
//   - The audit trail is masked like every answer: a name saved before it
//     became a value does not show there.
//   - A client's X-Request-ID is not taken: every request gets an id of
//     its own (before, the caller's was shown back and logged).
func TestCase62_NamesAndRequestIDs(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		k := "k" + hex.EncodeToString(b[:]) // a valid name of every kind
		e.secret("K", k)
		for _, c := range []struct {
			path string
			body map[string]any
		}{
			{"/api/v1/projects", map[string]any{"name": k}},
			{"/api/v1/environments", map[string]any{"name": k}},
			{"/api/v1/users", map[string]any{"name": k}},
			{"/api/v1/tokens", map[string]any{"name": k}},
			{"/api/v1/secrets", map[string]any{"name": k, "value": canary("c62v"), "project": "p"}},
		} {
			if r := e.do("POST", c.path, c.body); r.Status != 400 || !strings.Contains(string(r.Body), "secret_value_pasted") {
				t.Errorf("POST %s named with a secret's value: %d %.300s", c.path, r.Status, r.Body)
			}
		}
		// Named with another project's value (the name is shown to this
		// project's viewers).
		_, _ = rand.Read(b[:])
		other := "O" + hex.EncodeToString(b[:])
		e.plant(other)
		e.must(201, "POST", "/api/v1/projects", map[string]any{"name": "other62"})
		e.must(201, "POST", "/api/v1/secrets", map[string]any{"name": "OTHER", "value": other, "project": "other62"})
		if r := e.do("POST", "/api/v1/secrets", map[string]any{"name": other, "value": canary("c62o"), "project": "p"}); r.Status != 400 ||
			!strings.Contains(string(r.Body), "secret_value_pasted") {
			t.Errorf("a secret named with another project's value: %d %s", r.Status, r.Body)
		}
		// A name first, the same text as a new value later: refused when
		// it is token-like (attacker round five: a user so named who
		// canceled a run showed it in "canceled by"); a weak one (a
		// user name kept as DB_USER) is let through.
		_, _ = rand.Read(b[:])
		user := "usr_" + hex.EncodeToString(b[:])
		e.must(201, "POST", "/api/v1/users", map[string]any{"name": user})
		if r := e.do("POST", "/api/v1/secrets", map[string]any{"name": "UNAME", "value": user, "project": "p"}); r.Status != 400 ||
			!strings.Contains(string(r.Body), "value_is_a_name") {
			t.Errorf("a secret whose value is a user's name: %d %s", r.Status, r.Body)
		}
		e.must(201, "POST", "/api/v1/users", map[string]any{"name": "dbadmin"})
		e.must(201, "POST", "/api/v1/secrets", map[string]any{"name": "DB_USER", "value": "dbadmin", "project": "p"})
		// A name first, the same text as a (weak, so allowed) value later
		// (not planted for the sweep: the name was no secret when it was
		// saved and shown): masked in the audit trail from then on.
		later := "LATER" + strings.Repeat("Q", 20)
		e.s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": later, "value": canary("c62n"), "project": "p"})
		e.s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "LATER", "value": later, "project": "p"})
		for _, path := range []string{"/api/v1/audit", "/api/v1/audit?project=p"} {
			r := e.s.Do("GET", path, nil)
			if r.Status != 200 || !strings.Contains(string(r.Body), "[REDACTED") {
				t.Errorf("GET %s: %d %.300s", path, r.Status, r.Body)
			}
			apptest.AssertAbsent(t, "GET "+path, string(r.Body), later)
		}
		req, _ := http.NewRequest("GET", e.s.URL+"/api/v1/projects/none", nil)
		req.Header.Set("Authorization", "Bearer "+e.s.Token)
		req.Header.Set("X-Request-ID", k)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e.record("GET", "/api/v1/projects/none", apptest.Response{Status: resp.StatusCode, Body: body, Header: resp.Header})
		if id := resp.Header.Get("X-Request-Id"); id == "" || id == k || !strings.Contains(string(body), id) {
			t.Errorf("request id %q (body %s)", id, body)
		}
		e.sweep(nil)
	})
}

// Case 63 (attacker round four): a service that echoes a secret changed
// (read from a query string with '+' as a space, cut to a prefix,
// upper-cased, reversed) is masked in the http block's events, its
// output and whatever a later block makes of it, as a script's derived
// values are. Before, what blocks other than scripts showed was masked
// with the value's encodings only.
func TestCase63_ServiceEchoesDerivedValue(t *testing.T) {
	each(t, func(t *testing.T, e *env) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		h := hex.EncodeToString(b[:])
		k := "Zq" + h[:10] + "+" + h[10:] + "Wy" // with a '+' a query string reads as a space
		reverse := func(s string) string {
			r := []rune(s)
			for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
				r[i], r[j] = r[j], r[i]
			}
			return string(r)
		}
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := r.URL.Query().Get("key") // '+' decoded as a space
			switch r.URL.Query().Get("mode") {
			case "prefix":
				got = "Incorrect API key provided: " + got[:20] + "***"
			case "upper":
				got = strings.ToUpper(got)
			case "rev":
				got = reverse(got)
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"error":"invalid api key","got":%q}`, got)
		}))
		defer echo.Close()
		e.secret("PLUS", k)
		e.plant(strings.ReplaceAll(k, "+", " "), strings.ReplaceAll(k, "+", " ")[:20], strings.ToUpper(strings.ReplaceAll(k, "+", " ")),
			reverse(strings.ReplaceAll(k, "+", " ")))
		var blocks []map[string]any
		for _, mode := range []string{"plain", "prefix", "upper", "rev"} {
			blocks = append(blocks, map[string]any{"id": mode, "type": "http", "config": map[string]any{
				"url": "`" + echo.URL + "/check?mode=" + mode + "&key=${secrets.PLUS}`"}})
		}
		blocks = append(blocks, code("show", "console.log(JSON.stringify(steps)); return steps"))
		e.flow("echoes", blocks...)
		if r := e.run("echoes", nil); r["status"] != "succeeded" {
			t.Fatalf("run: %v", r)
		}
		e.sweep(nil)
	})
}
