package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

const flowCanary = `sk_live_7Hq2&Zp<9>"xV4%mT1`

const notifyYAML = `name: notify
trigger:
  type: manual
env:
  TARGET: %s
blocks:
  - id: call
    type: http
    config:
      method: "'POST'"
      url: "` + "`${env.TARGET}/send`" + `"
      headers: "({Authorization: 'Bearer ' + secrets.API_TOKEN})"
      body: "({text: input.text})"
  - id: report
    type: code
    if: steps.call.output.status == 200
    config:
      code: |
        console.log('sent with', secrets.API_TOKEN)
        return {echo: steps.call.output.body.auth, text: input.text}
`

// flowCLI runs the CLI in-process against a real server.
type flowCLI struct {
	t   *testing.T
	all bytes.Buffer // every byte printed, for the leak check
}

func (c *flowCLI) run(args ...string) (string, error) {
	c.t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(""))
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(&out, err.Error())
	}
	c.all.Write(out.Bytes())
	return out.String(), err
}

func (c *flowCLI) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("hushflow %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestFlowAndRunCommands(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		t.Setenv("HUSHFLOW_ADDR", s.URL)
		t.Setenv("HUSHFLOW_TOKEN", s.Token)
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": flowCanary, "project": "billing"})
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"auth": r.Header.Get("Authorization")})
		}))
		defer target.Close()
		c := &flowCLI{t: t}
		dir := t.TempDir()
		file := filepath.Join(dir, "notify.yaml")
		os.WriteFile(file, []byte(fmt.Sprintf(notifyYAML, target.URL)), 0o600)

		out := c.must("flow", "apply", "-f", file, "--project", "billing")
		if !strings.Contains(out, "flow notify created: version 1") {
			t.Errorf("apply: %s", out)
		}
		// The same file again makes no version.
		out = c.must("flow", "apply", "-f", file, "-p", "billing")
		if !strings.Contains(out, "flow notify unchanged: version 1") {
			t.Errorf("apply again: %s", out)
		}
		os.WriteFile(file, []byte("description: sends a message\n"+fmt.Sprintf(notifyYAML, target.URL)), 0o600)
		out = c.must("flow", "apply", "-f", file, "-p", "billing")
		if !strings.Contains(out, "flow notify updated: version 2") {
			t.Errorf("apply a change: %s", out)
		}
		// A warning for an unknown secret, through JSON.
		warn := filepath.Join(dir, "warn.json")
		os.WriteFile(warn, []byte(`{"name":"warn","trigger":{"type":"manual"},"blocks":[{"id":"l","type":"log","config":{"message":"secrets.MISSING_ONE"}}]}`), 0o600)
		if out = c.must("flow", "apply", "-f", warn, "-p", "billing"); !strings.Contains(out, `warning: secret "MISSING_ONE"`) {
			t.Errorf("apply with warning: %s", out)
		}
		// Problems are listed, one per line, with their location.
		bad := filepath.Join(dir, "bad.yaml")
		os.WriteFile(bad, []byte("name: bad\ntrigger: {type: manual}\nblocks:\n  - {id: a, type: log, config: {message: \"(1 +\"}}\n  - {id: a, type: nope}\n"), 0o600)
		out, err := c.run("flow", "apply", "-f", bad, "-p", "billing")
		// Each names its place in the file (issue 18 item 10): the
		// character of the expression, the duplicate's id.
		if err == nil || !strings.Contains(out, `flow "bad" is invalid:`) || !strings.Contains(out, "  "+bad+`:4:47: block "a", message, line 1, column 5: SyntaxError`) ||
			!strings.Contains(out, "  "+bad+`:5:6: block "a", id: duplicate block id`) || !strings.Contains(out, "  "+bad+`:5:13: block "a", type: unknown block type "nope"`) {
			t.Errorf("apply bad: %v\n%s", err, out)
		}
		// A file that is not YAML: the server's problem names the line.
		broken := filepath.Join(dir, "broken.yaml")
		os.WriteFile(broken, []byte("name: broken\ntrigger: {type: manual}\nblocks:\n  - id: a\n    type: log: x\n"), 0o600)
		out, err = c.run("flow", "apply", "-f", broken, "-p", "billing")
		if err == nil || !strings.Contains(out, "  "+broken+":5: definition is not valid YAML: mapping values are not allowed in this context") {
			t.Errorf("apply broken: %v\n%s", err, out)
		}

		out = c.must("flow", "list", "-p", "billing")
		if !strings.Contains(out, "notify") || !strings.Contains(out, "warn") || !strings.Contains(out, "manual") {
			t.Errorf("list: %s", out)
		}
		out = c.must("flow", "get", "notify", "-p", "billing")
		if !strings.Contains(out, "# flow notify, project billing, version 2") || !strings.Contains(out, "      code: |") ||
			!strings.Contains(out, "if: steps.call.output.status == 200") {
			t.Errorf("get yaml: %s", out)
		}
		// What get prints can be applied again, and is the same flow.
		again := filepath.Join(dir, "again.yaml")
		os.WriteFile(again, []byte(out), 0o600)
		if out := c.must("flow", "apply", "-f", again, "-p", "billing"); !strings.Contains(out, "flow notify unchanged: version 2") {
			t.Errorf("re-apply get output: %s", out)
		}
		out = c.must("flow", "get", "notify", "-p", "billing", "-o", "json")
		var def map[string]any
		if err := json.Unmarshal([]byte(out), &def); err != nil || def["name"] != "notify" {
			t.Errorf("get json: %v %s", err, out)
		}

		// run --follow streams events, then the outcome.
		out = c.must("flow", "run", "notify", "-p", "billing", "-e", "development", "--input", `{"text":"hello"}`, "--follow")
		for _, want := range []string{"run_queued", "run_started", "block_started      call", "http_request", "http_response",
			"block_finished     call", "log                report       [log] sent with [REDACTED", "run_finished", " succeeded in ", `"text": "hello"`} {
			if !strings.Contains(out, want) {
				t.Errorf("run --follow lacks %q:\n%s", want, out)
			}
		}
		id := strings.Fields(out)[1]
		// --wait waits for the end and prints the outcome; -o json prints
		// the run as the API answered it, for scripts.
		if out := c.must("flow", "run", "notify", "-p", "billing", "-e", "development", "--input", `{"text":"hi"}`, "--wait", "60s"); !strings.Contains(out, " succeeded in ") ||
			!strings.Contains(out, `"text": "hi"`) {
			t.Errorf("run --wait: %s", out)
		}
		var waited map[string]any
		if out := c.must("flow", "run", "notify", "-p", "billing", "-e", "development", "-i", `{"text":"hi"}`, "--wait", "60s", "-o", "json"); json.Unmarshal([]byte(out), &waited) != nil ||
			waited["status"] != "succeeded" || waited["id"] == "" {
			t.Errorf("run --wait -o json: %s", out)
		}
		if _, err := c.run("flow", "run", "notify", "-p", "billing", "-e", "development", "--wait", "60s", "--follow"); exitStatus(err) != exitUsage {
			t.Errorf("run --wait --follow: %v", err)
		}
		out = c.must("run", "get", id)
		if !strings.Contains(out, "status:       succeeded") || !strings.Contains(out, "flow:         notify (version 2)") {
			t.Errorf("run get: %s", out)
		}
		out = c.must("run", "logs", id)
		if !strings.Contains(out, "block_finished     report") || !strings.Contains(out, "run_finished") {
			t.Errorf("run logs: %s", out)
		}
		if out2 := c.must("run", "logs", id, "--follow"); out2 != out {
			t.Errorf("run logs --follow of a finished run differs:\n%s\n---\n%s", out2, out)
		}
		if out := c.must("run", "cancel", id); out != "run "+id+" had already ended: succeeded\n" {
			t.Errorf("cancel of an ended run: %q", out)
		}
		// run get links a run to its children, its parent and the run it
		// repeats.
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "outer", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "call", "type": "flow", "config": map[string]any{"flow": "'notify'", "input": `({text: "hi"})`}}}})
		outer := s.Must(200, "POST", "/api/v1/projects/billing/flows/outer/runs?wait=60s", map[string]any{"environment": "development"})["id"].(string)
		kid := s.Must(200, "GET", "/api/v1/projects/billing/runs?parent="+outer, nil)["runs"].([]any)[0].(map[string]any)["id"].(string)
		if out := c.must("run", "get", outer); !regexp.MustCompile(`children: +` + kid + ` notify, succeeded \(block call\)`).MatchString(out) {
			t.Errorf("run get of a parent: %s", out)
		}
		if out := c.must("run", "get", kid); !regexp.MustCompile(`parent: +` + outer + ` \(block call\)`).MatchString(out) {
			t.Errorf("run get of a child: %s", out)
		}
		re := s.Must(202, "POST", "/api/v1/runs/"+id+"/rerun", nil)["id"].(string)
		if out := c.must("run", "get", re); !regexp.MustCompile(`rerun of: +` + id).MatchString(out) {
			t.Errorf("run get of a rerun: %s", out)
		}
		// event publish starts the event-triggered flows that match.
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "on-record",
			"trigger": map[string]any{"type": "event", "topic": "records:*", "filter": "input.payload.n > 1"},
			"blocks":  []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": "return input.payload.n"}}}})
		out = c.must("event", "publish", "records:created", "-p", "billing", "--payload", `{"n": 2}`)
		m := regexp.MustCompile(`^run (\S+) queued\n$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("event publish: %q", out)
		}
		if r := s.Must(200, "GET", "/api/v1/runs/"+m[1], nil); r["flow"] != "on-record" || r["trigger"] != "event" {
			t.Errorf("the event's run: %v", r)
		}
		if out := c.must("event", "publish", "records:created", "-p", "billing", "--payload", `{"n": 1}`); out != "published records:created: no flow of project billing matched\n" {
			t.Errorf("event publish, filtered out: %q", out)
		}
		if _, err := c.run("event", "publish", "records:created", "-p", "billing", "--payload", `{n`); exitStatus(err) != exitUsage {
			t.Errorf("event publish, a payload that is no JSON: %v", err)
		}

		// A failing run: exit status 1 (an error), the reason printed.
		inFile := filepath.Join(dir, "in.json")
		os.WriteFile(inFile, []byte(`{"text": 1}`), 0o600)
		os.WriteFile(file, []byte(strings.Replace(fmt.Sprintf(notifyYAML, target.URL), "return {echo", "throw new Error('boom ' + secrets.API_TOKEN); return {echo", 1)), 0o600)
		c.must("flow", "apply", "-f", file, "-p", "billing")
		out, err = c.run("flow", "run", "notify", "-p", "billing", "-e", "development", "--input", "@"+inFile, "-f")
		if err == nil || !strings.Contains(out, "run_finished") || !strings.Contains(out, "boom [REDACTED") || !strings.HasSuffix(err.Error(), " failed") {
			t.Errorf("failing run: %v\n%s", err, out)
		}

		// list with filters, and cancel.
		out = c.must("run", "list", "-p", "billing", "--status", "failed")
		if strings.Count(out, "\n") != 2 || !strings.Contains(out, "failed") {
			t.Errorf("run list --status failed: %s", out)
		}
		slow := filepath.Join(dir, "slow.json")
		os.WriteFile(slow, []byte(`{"name":"slow","trigger":{"type":"manual"},"blocks":[{"id":"w","type":"delay","config":{"duration":"'20s'"}}]}`), 0o600)
		c.must("flow", "apply", "-f", slow, "-p", "billing")
		out = c.must("flow", "run", "slow", "-p", "billing", "-e", "development")
		sid := strings.Fields(out)[1]
		// A 20s delay is a durable wait: run get says until when.
		apptest.Eventually(t, 20*time.Second, "run get to show the run waiting", func() error {
			if out = c.must("run", "get", sid); !regexp.MustCompile(`status:\s+waiting`).MatchString(out) {
				return fmt.Errorf("run get: %s", out)
			}
			return nil
		})
		if !strings.Contains(out, "waiting until:") || !strings.Contains(out, "(holds no worker)") {
			t.Errorf("run get of a waiting run: %s", out)
		}
		out = c.must("run", "cancel", sid)
		if out != "run "+sid+" canceled\n" {
			t.Errorf("cancel: %q", out)
		}
		if out = c.must("run", "cancel", sid); !strings.HasPrefix(out, "run "+sid+" had already ended: canceled (canceled by ") {
			t.Errorf("cancel again: %q", out)
		}
		out, err = c.run("run", "logs", sid, "--follow")
		if err != nil || !strings.Contains(out, "status=canceled") {
			t.Errorf("canceled run's logs: %v\n%s", err, out)
		}
		if _, err := c.run("run", "list", "-p", "billing", "--status", "sleeping"); err == nil || exitStatus(err) != exitUsage ||
			!strings.Contains(err.Error(), "unknown run status") || !strings.Contains(err.Error(), "waiting") {
			t.Errorf("run list --status sleeping: %v", err)
		}
		if out = c.must("run", "list", "-p", "billing", "--flow", "slow"); !strings.Contains(out, "canceled") {
			t.Errorf("run list --flow slow: %s", out)
		}
		if _, err := c.run("run", "get", "00000000-0000-0000-0000-000000000000"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
			t.Errorf("unknown run: %v", err)
		}
		apptest.AssertAbsent(t, "CLI output", c.all.String(), flowCanary)
	})
}

// `run list --limit N` over the API's page size (200) follows the pages.
func TestRunListPages(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		t.Setenv("HUSHFLOW_ADDR", s.URL)
		t.Setenv("HUSHFLOW_TOKEN", s.Token)
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
		f := s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "tick",
			"trigger": map[string]any{"type": "manual"},
			"blocks":  []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'hi'"}}}})
		var pid string
		s.App.DB.Raw("SELECT id FROM projects WHERE name = ?", "billing").Scan(&pid)
		now := time.Now().UTC()
		var runs []flows.Run
		for i := range 230 {
			runs = append(runs, flows.Run{ID: fmt.Sprintf("01900000-0000-7000-8000-%012d", i), ProjectID: pid, Project: "billing",
				FlowID: f["id"].(string), Flow: "tick", FlowVersion: 1, Environment: "development", Trigger: "manual",
				Status: flows.StatusSucceeded, Input: "null", QueuedAt: now, FinishedAt: &now})
		}
		if err := s.App.DB.CreateInBatches(runs, 100).Error; err != nil {
			t.Fatal(err)
		}
		c := &flowCLI{t: t}
		if n := strings.Count(c.must("run", "list", "-p", "billing", "--limit", "225"), "01900000-"); n != 225 {
			t.Fatalf("--limit 225 listed %d runs", n)
		}
		if n := strings.Count(c.must("run", "list", "-p", "billing", "--limit", "1000"), "01900000-"); n != 230 {
			t.Fatalf("--limit 1000 listed %d runs, want all 230", n)
		}
		if n := strings.Count(c.must("run", "list", "-p", "billing"), "01900000-"); n != 50 {
			t.Fatalf("default listed %d runs", n)
		}
		if out, err := c.run("run", "list", "-p", "billing", "--limit", "0"); err == nil || !strings.Contains(out, "--limit must be at least 1") {
			t.Fatalf("--limit 0: %v %s", err, out)
		}
		// The API clamps a page to 200 and refuses what is not a number.
		page := s.Must(200, "GET", "/api/v1/projects/billing/runs?limit=500", nil)
		if n := len(page["runs"].([]any)); n != 200 || page["next_cursor"] == "" {
			t.Fatalf("limit=500: %d runs, next %v", n, page["next_cursor"])
		}
		for _, bad := range []string{"abc", "0", "-3"} {
			if r := s.Do("GET", "/api/v1/projects/billing/runs?limit="+bad, nil); r.Status != 400 || !strings.Contains(string(r.Body), "limit must be") {
				t.Fatalf("limit=%s: %d %s", bad, r.Status, r.Body)
			}
		}
	})
}

// Event summaries show code and URLs as written, not JSON's HTML escapes.
func TestCompactKeepsCharacters(t *testing.T) {
	got := compact(map[string]any{"code": "x => x < 2 && y > 1", "url": "https://h/p?a=1&b=2"})
	if want := `{"code":"x => x < 2 && y > 1","url":"https://h/p?a=1&b=2"}`; got != want {
		t.Fatalf("compact = %s, want %s", got, want)
	}
}

// A definition identical to the flow's current version makes no new
// version, through the API (PUT answers "unchanged": true) and through
// flow apply, which says "unchanged" (issue 18 item 7).
func TestFlowApplyUnchanged(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		t.Setenv("HUSHFLOW_ADDR", s.URL)
		t.Setenv("HUSHFLOW_TOKEN", s.Token)
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
		def := map[string]any{"name": "tick", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'hi'"}}}}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", def)
		stored := s.Must(200, "GET", "/api/v1/projects/billing/flows/tick", nil)
		versions := func() int {
			return len(s.Must(200, "GET", "/api/v1/projects/billing/flows/tick/versions", nil)["versions"].([]any))
		}
		// The same definition, also with its keys in another order and spaced out.
		for _, body := range []any{def, `{ "blocks": [{"config": {"message": "'hi'"}, "type": "log", "id": "l"}],
			"trigger": {"type": "manual"}, "name": "tick" }`} {
			got := s.Must(200, "PUT", "/api/v1/projects/billing/flows/tick", body)
			if got["unchanged"] != true || got["version"] != 1.0 || got["updated_at"] != stored["updated_at"] {
				t.Fatalf("PUT of the same definition: %v", got)
			}
		}
		if n := versions(); n != 1 {
			t.Fatalf("%d versions after identical PUTs, want 1", n)
		}
		changed := map[string]any{"name": "tick", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'ho'"}}}}
		if got := s.Must(200, "PUT", "/api/v1/projects/billing/flows/tick", changed); got["version"] != 2.0 || got["unchanged"] != nil {
			t.Fatalf("PUT of a change: %v", got)
		}
		// Identical to version 1 but not to the current version: a version.
		if got := s.Must(200, "PUT", "/api/v1/projects/billing/flows/tick", def); got["version"] != 3.0 || got["unchanged"] != nil {
			t.Fatalf("PUT of version 1's definition: %v", got)
		}

		c := &flowCLI{t: t}
		file := filepath.Join(t.TempDir(), "tick.yaml")
		os.WriteFile(file, []byte("name: tick\ntrigger: {type: manual}\nblocks:\n  - id: l\n    type: log\n    config: {message: \"'hi'\"}\n"), 0o600)
		if out := c.must("flow", "apply", "-f", file, "-p", "billing"); out != "flow tick unchanged: version 3 (project billing)\n" {
			t.Fatalf("apply of the current definition: %q", out)
		}
		if n := versions(); n != 3 {
			t.Fatalf("%d versions after apply of the current definition, want 3", n)
		}
		os.WriteFile(file, []byte("name: tick\ntrigger: {type: manual}\nblocks:\n  - {id: l, type: log, config: {message: \"'hey'\"}}\n"), 0o600)
		if out := c.must("flow", "apply", "-f", file, "-p", "billing"); out != "flow tick updated: version 4 (project billing)\n" {
			t.Fatalf("apply of a change: %q", out)
		}
	})
}

// flow run --follow prints a failed run's error once: in the outcome, not
// also in run_finished's line and the final message. run logs, which
// prints no outcome, keeps it in run_finished's line.
func TestFollowPrintsRunErrorOnce(t *testing.T) {
	apptest.SkipShort(t)
	s := apptest.Start(t, storetest.SQLiteConfig(t))
	t.Setenv("HUSHFLOW_ADDR", s.URL)
	t.Setenv("HUSHFLOW_TOKEN", s.Token)
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
	s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "fails",
		"trigger": map[string]any{"type": "manual"},
		"blocks":  []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": "throw new Error('the disk is full')"}}}})
	c := &flowCLI{t: t}
	// out holds stdout, stderr and the error main prints: all a person sees.
	out, err := c.run("flow", "run", "fails", "-p", "billing", "-e", "development", "--follow")
	if exitStatus(err) != exitError {
		t.Fatalf("exit status %d: %v\n%s", exitStatus(err), err, out)
	}
	id := strings.Fields(out)[1]
	runErr := s.Must(200, "GET", "/api/v1/runs/"+id, nil)["error"].(string)
	if !strings.Contains(runErr, "the disk is full") {
		t.Fatalf("run error %q", runErr)
	}
	// Not counting the block's own block_failed line (one per attempt,
	// whose error the run's error is when the block failed the run).
	outcome := withoutLines(out, "block_failed")
	if n := strings.Count(outcome, runErr); n != 1 || !strings.Contains(out, "\nerror: "+runErr+"\n") ||
		!strings.Contains(out, "run_finished       -            status=failed\n") || !strings.HasSuffix(out, "run "+id+" failed\n") {
		t.Fatalf("the run's error %q is printed %d times, want once, after error:\n%s", runErr, n, out)
	}
	logs := c.must("run", "logs", id)
	if n := strings.Count(withoutLines(logs, "block_failed"), runErr); n != 1 || !strings.Contains(logs, "status=failed error="+runErr) {
		t.Fatalf("run logs prints the run's error %d times, want once, in run_finished:\n%s", n, logs)
	}
	if follow := c.must("run", "logs", id, "--follow"); follow != logs {
		t.Fatalf("run logs --follow differs from run logs:\n%s\n---\n%s", follow, logs)
	}
}

// withoutLines returns text without the lines that contain s.
func withoutLines(text, s string) string {
	var keep []string
	for _, l := range strings.Split(text, "\n") {
		if !strings.Contains(l, s) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
