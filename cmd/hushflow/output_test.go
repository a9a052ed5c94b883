package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
	"go.yaml.in/yaml/v3"
)

// TestOutputFormats checks -o on every list and get command against a
// real server: json is the API's answer as the server returned it, yaml
// the same data, table (the default) what the command printed before -o
// existed, and an unknown format a usage error naming the formats.
func TestOutputFormats(t *testing.T) {
	apptest.SkipShort(t)
	s := apptest.Start(t, storetest.SQLiteConfig(t))
	t.Setenv("HUSHFLOW_ADDR", s.URL)
	t.Setenv("HUSHFLOW_TOKEN", s.Token)
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
	secret := s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": flowCanary, "project": "billing"})
	s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "OTHER", "value": "other-" + flowCanary, "project": "billing"})
	s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "notify",
		"trigger": map[string]any{"type": "manual"},
		"blocks": []any{map[string]any{"id": "l", "type": "code", "config": map[string]any{
			"code": "console.log('a <b> & ' + secrets.API_TOKEN); return {token: secrets.API_TOKEN, at: '2026-01-02T03:04:05Z', n: '12'}"}}}})
	run := s.Must(200, "POST", "/api/v1/projects/billing/flows/notify/runs?wait=30s", map[string]any{"environment": "development"})
	if run["status"] != "succeeded" {
		t.Fatalf("run: %v", run)
	}
	runID := run["id"].(string)
	// The server log's redactor loads new values when it polls (once a
	// second) and audits each load: let it load both before the audit
	// is compared, so that no record lands between the two requests.
	apptest.Eventually(t, 30*time.Second, "the server log's redactor to load both values", func() error {
		loaded := 0
		for _, r := range s.Must(200, "GET", "/api/v1/audit", nil)["records"].([]any) {
			if r := r.(map[string]any); r["actor"] == "server-log" {
				n, _ := strconv.Atoi(strings.Fields(r["detail"].(string))[0])
				loaded += n
			}
		}
		if loaded != 2 {
			return fmt.Errorf("%d values loaded", loaded)
		}
		return nil
	})
	c := &flowCLI{t: t}

	for _, tc := range []struct {
		args []string
		api  string // the route whose answer -o json prints
		pick func(map[string]any) any
		// ignore is a field of the listed items left out of the comparison.
		ignore string
	}{
		{args: []string{"project", "list"}, api: "/api/v1/projects"},
		{args: []string{"environment", "list"}, api: "/api/v1/environments"},
		// last_used_at moves once a minute at most, maybe between the two
		// requests.
		{args: []string{"token", "list"}, api: "/api/v1/tokens", ignore: "last_used_at"},
		{args: []string{"secret", "list", "-p", "billing"}, api: "/api/v1/secrets?project=billing"},
		{args: []string{"secret", "list", "-p", "billing", "-e", "development", "--resolved"}, api: "/api/v1/secrets?project=billing&environment=development&resolved=true"},
		{args: []string{"secret", "list", "API_TOKEN", "-p", "billing"}, api: "/api/v1/secrets?project=billing", pick: func(m map[string]any) any {
			var one []any
			for _, s := range m["secrets"].([]any) {
				if s.(map[string]any)["name"] == "API_TOKEN" {
					one = append(one, s)
				}
			}
			return map[string]any{"secrets": one}
		}},
		{args: []string{"secret", "versions", "API_TOKEN", "-p", "billing"}, api: "/api/v1/secrets/" + secret["id"].(string) + "/versions"},
		{args: []string{"secret", "audit"}, api: "/api/v1/audit"},
		{args: []string{"keys", "status"}, api: "/api/v1/keys"},
		{args: []string{"flow", "list", "-p", "billing"}, api: "/api/v1/projects/billing/flows"},
		{args: []string{"run", "list", "-p", "billing"}, api: "/api/v1/projects/billing/runs?limit=50", pick: func(m map[string]any) any {
			return map[string]any{"runs": m["runs"]} // the pages are followed: no cursor
		}},
		{args: []string{"run", "get", runID}, api: "/api/v1/runs/" + runID},
	} {
		name := strings.Join(tc.args, " ")
		t.Run(name, func(t *testing.T) {
			c.t = t
			want := any(s.Must(200, "GET", tc.api, nil))
			if tc.pick != nil {
				want = tc.pick(want.(map[string]any))
			}
			want = without(viaJSON(t, want), tc.ignore)

			out := c.must(append(tc.args, "-o", "json")...)
			var got any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("-o json is not JSON: %v\n%s", err, out)
			}
			if got = without(got, tc.ignore); !reflect.DeepEqual(got, want) {
				t.Fatalf("-o json differs from the API's answer:\n%s\nwant\n%s", out, mustJSON(t, want))
			}

			out = c.must(append(tc.args, "--output", "yaml")...)
			var y any
			if err := yaml.Unmarshal([]byte(out), &y); err != nil {
				t.Fatalf("-o yaml is not YAML: %v\n%s", err, out)
			}
			if got := without(viaJSON(t, y), tc.ignore); !reflect.DeepEqual(got, want) {
				t.Fatalf("-o yaml differs from the API's answer:\n%s\nwant\n%s", out, mustJSON(t, want))
			}

			table := c.must(tc.args...)
			if out := c.must(append(tc.args, "-o", "table")...); out != table {
				t.Fatalf("-o table differs from the default:\n%s\n---\n%s", out, table)
			}
			if strings.HasPrefix(strings.TrimSpace(table), "{") {
				t.Fatalf("the default output is JSON: %s", table)
			}

			out, err := c.run(append(tc.args, "-o", "xml")...)
			if exitStatus(err) != exitUsage || !strings.Contains(out, `unknown output format "xml": use table, json or yaml`) {
				t.Fatalf("-o xml: exit status %d: %v\n%s", exitStatus(err), err, out)
			}
		})
	}

	t.Run("run get -o text", func(t *testing.T) {
		c.t = t
		if out, table := c.must("run", "get", runID, "-o", "text"), c.must("run", "get", runID); out != table {
			t.Fatalf("-o text differs from the table:\n%s\n---\n%s", out, table)
		}
	})

	// flow get prints the definition, YAML by default: what flow apply
	// takes back.
	t.Run("flow get", func(t *testing.T) {
		c.t = t
		api := s.Must(200, "GET", "/api/v1/projects/billing/flows/notify", nil)
		def := viaJSON(t, api["definition"])
		out := c.must("flow", "get", "notify", "-p", "billing", "-o", "json")
		var got any
		if err := json.Unmarshal([]byte(out), &got); err != nil || !reflect.DeepEqual(got, def) {
			t.Fatalf("-o json: %v\n%s", err, out)
		}
		yamlOut := c.must("flow", "get", "notify", "-p", "billing")
		if out := c.must("flow", "get", "notify", "-p", "billing", "-o", "yaml"); out != yamlOut || !strings.HasPrefix(out, "# flow notify, project billing, version 1") {
			t.Fatalf("-o yaml:\n%s\ndefault:\n%s", out, yamlOut)
		}
		var y any
		if err := yaml.Unmarshal([]byte(yamlOut), &y); err != nil || !reflect.DeepEqual(viaJSON(t, y), def) {
			t.Fatalf("yaml: %v\n%s", err, yamlOut)
		}
		out = c.must("flow", "get", "notify", "-p", "billing", "-o", "table")
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[1], "notify ") {
			t.Fatalf("-o table:\n%s", out)
		}
		file := filepath.Join(t.TempDir(), "notify.json")
		os.WriteFile(file, []byte(c.must("flow", "get", "notify", "-p", "billing", "-o", "json")), 0o600)
		if _, err := c.run("flow", "apply", "-f", file, "-p", "billing"); err != nil {
			t.Fatalf("apply the JSON of get: %v", err)
		}
		out, err := c.run("flow", "get", "notify", "-p", "billing", "-o", "xml")
		if exitStatus(err) != exitUsage || !strings.Contains(out, `unknown output format "xml": use yaml, json or table`) {
			t.Fatalf("-o xml: exit status %d: %v\n%s", exitStatus(err), err, out)
		}
	})

	// An unknown format is refused before anything is sent.
	t.Run("unknown format without a server", func(t *testing.T) {
		t.Setenv("HUSHFLOW_ADDR", closedAddr(t))
		c.t = t
		if out, err := c.run("project", "list", "-o", "csv"); exitStatus(err) != exitUsage {
			t.Fatalf("exit status %d: %v\n%s", exitStatus(err), err, out)
		}
	})

	apptest.AssertAbsent(t, "CLI output", c.all.String(), flowCanary)
}

// without removes field from the objects listed in answer, a list
// answer ({"tokens": [...]}).
func without(answer any, field string) any {
	if field == "" {
		return answer
	}
	for _, list := range answer.(map[string]any) {
		for _, it := range list.([]any) {
			delete(it.(map[string]any), field)
		}
	}
	return answer
}

// viaJSON is v as encoding/json decodes it (numbers as float64).
func viaJSON(t *testing.T, v any) any {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(mustJSON(t, v)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The one-line summaries of `run events` and `--follow` keep the fields
// the events table documents for each type: a loop's items, a failure
// the run went on after (continued).
func TestEventSummaries(t *testing.T) {
	for _, c := range []struct {
		typ  string
		data map[string]any
		want string
	}{
		{"block_finished", map[string]any{"output": []any{1, 2}, "items": 2, "duration_ms": 5}, "duration_ms=5 items=2 output=[1,2]"},
		{"block_finished", map[string]any{"output": map[string]any{"ok": true}, "attempt": 1, "duration_ms": 3}, `duration_ms=3 attempt=1 output={"ok":true}`},
		{"block_failed", map[string]any{"error": "boom", "attempt": 2, "continued": true}, "error=boom attempt=2 continued=true"},
		{"block_retry", map[string]any{"error": "503", "attempt": 1, "retry_in_ms": 500}, "error=503 attempt=1 retry_in_ms=500"},
		{"run_finished", map[string]any{"status": "canceled", "error": "canceled by ana"}, "status=canceled error=canceled by ana"},
		{"iteration_finished", map[string]any{"index": 3, "output": "x", "duration_ms": 1}, "duration_ms=1 index=3 output=x"},
	} {
		if got := summarize(c.typ, c.data); got != c.want {
			t.Errorf("%s %v: %q, want %q", c.typ, c.data, got, c.want)
		}
	}
}

// A follower that lost the server for longer than it tries to reconnect
// says which run it stopped following, that the run goes on, and how to
// follow it again, keeping the exit status of a server out of reach (5);
// before, it printed only "cannot reach ...".
func TestFollowGivesUpNamingTheRun(t *testing.T) {
	saved := reconnectFor
	reconnectFor = 0
	defer func() { reconnectFor = saved }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there
	t.Setenv("HUSHFLOW_TOKEN", "hf_test_follow_token")
	c, err := newClientFor(addr)
	if err != nil {
		t.Fatal(err)
	}
	err = followRun(context.Background(), c, io.Discard, "run-42", true)
	if exitStatus(err) != exitUnavailable || !strings.Contains(err.Error(), "stopped following run run-42, which goes on on the server") ||
		!strings.Contains(err.Error(), "hushflow run logs run-42 --follow") {
		t.Fatalf("%v (exit %d)", err, exitStatus(err))
	}
}

// Every event type fits the type column of `run logs`, so that blocks and
// summaries line up (iteration_finished shifted its line by three).
func TestEventLinesAlign(t *testing.T) {
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.Local)
	var col []int
	for _, typ := range []string{"log", "run_started", "block_finished", "on_error_finished", "iteration_finished"} {
		line := eventLine(eventInfo{At: at, Type: typ, Block: "call", Data: map[string]any{"duration_ms": 1}})
		col = append(col, strings.Index(line, " call "))
	}
	for _, c := range col[1:] {
		if c != col[0] {
			t.Fatalf("the block column starts at %v", col)
		}
	}
}
