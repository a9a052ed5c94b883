package flows_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/secrets"
)

// TestIssue20ExposureAlerts (issue 20 item 2): a secret value a run finds
// where it should never be is recorded once per run, block, sink and
// secret in the audit trail (action exposure, never the value), marks the
// secret possibly exposed in the API until it is updated, and counts in
// hushflow_secret_exposures_total by sink. The sinks: an outside
// service's response (a local server echoes the token in its body and in
// a header), a block's output, an exec command's output, a run's input
// and a webhook's payload. A token only sent in a request header, to a
// server that does not echo it, is no exposure.
func TestIssue20ExposureAlerts(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
		vals := map[string]string{}
		ids := map[string]string{}
		for _, n := range []string{"API_TOKEN", "QUIET_TOKEN", "OUT_KEY", "EXEC_KEY", "INPUT_KEY", "HOOK_KEY"} {
			vals[n] = "exp_" + strings.ToLower(n) + "_" + secrets.NewKey()
			m := s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": n, "value": vals[n], "project": "billing"})
			ids[n] = m["id"].(string)
		}
		var echoed, quiet atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			switch r.URL.Path {
			case "/echo": // a service that echoes the credential it got
				echoed.Add(1)
				tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				w.Header().Set("X-Echo", tok)
				fmt.Fprintf(w, `{"error": "invalid key %s"}`, tok)
			default: // one that does not
				quiet.Add(1)
				io.WriteString(w, `{"ok": true}`)
			}
		}))
		defer srv.Close()
		flows := []map[string]any{
			{"name": "echo", "trigger": map[string]any{"type": "manual"}, "blocks": []any{
				map[string]any{"id": "call", "type": "http", "config": map[string]any{"url": "'" + srv.URL + "/echo'",
					"headers": "({Authorization: `Bearer ${secrets.API_TOKEN}`})"}},
				map[string]any{"id": "quiet", "type": "http", "config": map[string]any{"url": "'" + srv.URL + "/quiet'",
					"headers": "({'X-Api-Key': secrets.QUIET_TOKEN})"}},
			}},
			{"name": "leak", "trigger": map[string]any{"type": "manual"}, "blocks": []any{
				map[string]any{"id": "give", "type": "code", "config": map[string]any{"code": "return {key: secrets.OUT_KEY}"}},
			}},
			{"name": "cmd", "trigger": map[string]any{"type": "manual"}, "blocks": []any{
				map[string]any{"id": "print", "type": "exec", "config": map[string]any{"command": []any{`echo "key is $K"`}, "shell": true,
					"secrets": []any{map[string]any{"key": "EXEC_KEY", "as_env_var": "K"}}}},
			}},
			{"name": "inp", "trigger": map[string]any{"type": "manual"}, "blocks": []any{
				map[string]any{"id": "note", "type": "log", "config": map[string]any{"message": "'got an input'"}},
			}},
			{"name": "hook", "trigger": map[string]any{"type": "webhook"}, "blocks": []any{
				map[string]any{"id": "note", "type": "log", "config": map[string]any{"message": "'got a webhook'"}},
			}},
		}
		for _, f := range flows {
			s.Must(201, "POST", "/api/v1/projects/billing/flows", f)
		}
		runIDs := map[string]string{}
		for flow, input := range map[string]string{"echo": `{}`, "leak": `{}`, "cmd": `{}`, "inp": `{"card": "` + vals["INPUT_KEY"] + `"}`} {
			run := s.Must(200, "POST", "/api/v1/projects/billing/flows/"+flow+"/runs?wait=60s", `{"environment":"development","input":`+input+`}`)
			if run["status"] != "succeeded" {
				t.Fatalf("run %s: %v", flow, run)
			}
			runIDs[flow] = run["id"].(string)
		}
		if r := hook(t, s, "/hooks/billing/hook", nil, `{"event": "paid", "token": "`+vals["HOOK_KEY"]+`"}`); r.Status/100 != 2 {
			t.Fatalf("webhook: %d %s", r.Status, r.Body)
		}
		if echoed.Load() != 1 || quiet.Load() != 1 {
			t.Fatalf("the server saw %d echo and %d quiet requests", echoed.Load(), quiet.Load())
		}

		// The audit trail: one exposure record per sink, naming the run,
		// the block and the sink.
		want := []string{
			"API_TOKEN call http_response " + runIDs["echo"],
			"EXEC_KEY print exec_output " + runIDs["cmd"],
			"HOOK_KEY - webhook_payload hook",
			"INPUT_KEY - run_input " + runIDs["inp"],
			"OUT_KEY give output " + runIDs["leak"],
		}
		var audit map[string]any
		var got []string
		apptest.Eventually(t, 30*time.Second, "five exposure records", func() error {
			audit = s.Must(200, "GET", "/api/v1/audit?project=billing&limit=1000", nil)
			got = exposureRecords(audit, runIDs)
			if len(got) < len(want) {
				return fmt.Errorf("records %q", got)
			}
			return nil
		})
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("exposure records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}

		// The mark on each secret, with the time and the place; none on the
		// secret that only went out in a request.
		list := s.Must(200, "GET", "/api/v1/secrets?project=billing", nil)
		marks := map[string]map[string]any{}
		for _, x := range list["secrets"].([]any) {
			m := x.(map[string]any)
			if e, ok := m["exposure"].(map[string]any); ok {
				marks[m["name"].(string)] = e
			} else if m["exposure"] != nil {
				t.Errorf("%s: exposure %v", m["name"], m["exposure"])
			}
		}
		if len(marks) != 5 || marks["QUIET_TOKEN"] != nil {
			t.Fatalf("marks: %v", marks)
		}
		// The mark is no update of the secret: its updated_at still says
		// when its value last changed.
		for _, x := range list["secrets"].([]any) {
			if m := x.(map[string]any); m["exposure"] != nil && m["updated_at"] != m["created_at"] {
				t.Errorf("%s: marked, and its updated_at moved from %v to %v", m["name"], m["created_at"], m["updated_at"])
			}
		}
		call := s.Must(200, "GET", "/api/v1/secrets/"+ids["API_TOKEN"], nil)["exposure"].(map[string]any)
		if call["run_id"] != runIDs["echo"] || call["run_project"] != "billing" || call["block"] != "call" || call["sink"] != "http_response" || call["at"] == "" {
			t.Errorf("API_TOKEN's mark: %v", call)
		}

		// The counter, by sink.
		metrics := s.Do("GET", "/metrics", nil)
		for _, sink := range []string{"http_response", "output", "exec_output", "run_input", "webhook_payload"} {
			if !strings.Contains(string(metrics.Body), `hushflow_secret_exposures_total{sink="`+sink+`"} 1`) {
				t.Errorf("no count of 1 for sink %s:\n%s", sink, grepLines(string(metrics.Body), "exposures"))
			}
		}

		// The same run again: a new run, a new record; the mark keeps the
		// first exposure.
		again := s.Must(200, "POST", "/api/v1/projects/billing/flows/echo/runs?wait=60s", `{"environment":"development"}`)
		apptest.Eventually(t, 30*time.Second, "the second run's record", func() error {
			a := s.Must(200, "GET", "/api/v1/audit?project=billing&secret=API_TOKEN", nil)
			n := 0
			for _, r := range a["records"].([]any) {
				if r.(map[string]any)["action"] == "exposure" {
					n++
				}
			}
			if n != 2 {
				return fmt.Errorf("%d records", n)
			}
			return nil
		})
		if m := s.Must(200, "GET", "/api/v1/secrets/"+ids["API_TOKEN"], nil)["exposure"].(map[string]any); m["run_id"] != runIDs["echo"] || again["id"] == runIDs["echo"] {
			t.Errorf("mark after a second exposure: %v", m)
		}

		// An update clears the mark, and only that secret's.
		s.Must(200, "PUT", "/api/v1/secrets/"+ids["API_TOKEN"], map[string]any{"value": "exp_rotated_" + secrets.NewKey()})
		if m := s.Must(200, "GET", "/api/v1/secrets/"+ids["API_TOKEN"], nil); m["exposure"] != nil {
			t.Errorf("after the update: %v", m["exposure"])
		}
		if m := s.Must(200, "GET", "/api/v1/secrets/"+ids["OUT_KEY"], nil); m["exposure"] == nil {
			t.Errorf("OUT_KEY's mark went with API_TOKEN's update")
		}

		// Never a value: in the audit rows and answers, the secrets' answers,
		// the metrics, the logs and every table.
		all := make([]string, 0, len(vals))
		for _, v := range vals {
			all = append(all, v)
		}
		apptest.AssertAbsent(t, "audit answer", mustJSON(audit), all...)
		apptest.AssertAbsent(t, "secrets answer", mustJSON(list), all...)
		apptest.AssertAbsent(t, "metrics", string(metrics.Body), all...)
		apptest.AssertAbsent(t, "server logs", s.Logs.String(), all...)
		apptest.AssertAbsent(t, "database", apptest.DumpTables(t, s.App.DB), all...)
	}, func(c *app.Config) { c.Exec = true })
}

// exposureRecords lists the exposure records of an audit answer as
// "SECRET BLOCK SINK RUN" (the run as its flow's name for a webhook's,
// whose id the test does not know), sorted.
func exposureRecords(audit map[string]any, runIDs map[string]string) []string {
	known := map[string]bool{}
	for _, id := range runIDs {
		known[id] = true
	}
	var out []string
	for _, x := range audit["records"].([]any) {
		r := x.(map[string]any)
		if r["action"] != "exposure" {
			continue
		}
		run, _ := r["run_id"].(string)
		if !known[run] {
			run = "hook"
		}
		block, _ := r["block_id"].(string)
		if block == "" {
			block = "-"
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", r["secret_name"], block, r["sink"], run))
	}
	sort.Strings(out)
	return out
}

func grepLines(text, word string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
