package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/internal/apptest"
)

// TestRerunVersionsRollbackUserCommands (issue 18 item 5): run rerun, flow
// versions, flow rollback and user list against a real server, with
// their output formats, exit statuses, and no secret value in anything
// printed.
func TestRerunVersionsRollbackUserCommands(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		t.Setenv("HUSHFLOW_ADDR", s.URL)
		t.Setenv("HUSHFLOW_TOKEN", s.Token)
		c := &flowCLI{t: t}
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": flowCanary, "project": "ops"})
		check := func(code string) map[string]any {
			return map[string]any{"name": "check", "trigger": map[string]any{"type": "manual"},
				"blocks": []any{map[string]any{"id": "c", "type": "code", "config": map[string]any{"code": code}}}}
		}
		s.Must(201, "POST", "/api/v1/projects/ops/flows", check("return {same: input.token === secrets.API_TOKEN}"))
		first := s.Must(200, "POST", "/api/v1/projects/ops/flows/check/runs?wait=60s",
			map[string]any{"environment": "development", "input": map[string]any{"token": flowCanary}})
		id := first["id"].(string)

		// run rerun: the new run, linked, with the real input.
		out := c.must("run", "rerun", id, "--follow")
		if !strings.Contains(out, "(rerun of "+id+")") || !strings.Contains(out, "succeeded") || !strings.Contains(out, `"same": true`) {
			t.Errorf("run rerun --follow:\n%s", out)
		}
		out = c.must("run", "rerun", id)
		if m := regexp.MustCompile(`run (\S+) (queued|running) \(rerun of `).FindStringSubmatch(out); m == nil || !strings.Contains(out, "hushflow run logs "+m[1]+" --follow") {
			t.Errorf("run rerun:\n%s", out)
		}
		if _, err := c.run("run", "rerun", "no-such-run"); exitStatus(err) != exitNotFound {
			t.Errorf("rerun of an unknown run: %v (exit %d, want %d)", err, exitStatus(err), exitNotFound)
		}

		// flow versions, in each format.
		s.Must(200, "PUT", "/api/v1/projects/ops/flows/check", check("return {same: input.token === secrets.API_TOKEN, v: 2}"))
		out = c.must("flow", "versions", "check", "-p", "ops")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "VERSION") || !regexp.MustCompile(`^2\s+\S+\s+admin\s+current$`).MatchString(lines[1]) ||
			!regexp.MustCompile(`^1\s+\S+\s+admin\s*$`).MatchString(lines[2]) {
			t.Errorf("flow versions:\n%s", out)
		}
		var vs struct {
			Versions []struct {
				Version int `json:"version"`
			} `json:"versions"`
		}
		if err := json.Unmarshal([]byte(c.must("flow", "versions", "check", "-p", "ops", "-o", "json")), &vs); err != nil || len(vs.Versions) != 2 || vs.Versions[0].Version != 2 {
			t.Errorf("flow versions -o json: %+v %v", vs, err)
		}
		if out := c.must("flow", "versions", "check", "-p", "ops", "-o", "yaml"); !strings.HasPrefix(out, "versions:\n") ||
			!regexp.MustCompile(`(?s)version: 2\n.*version: 1\n`).MatchString(out) {
			t.Errorf("flow versions -o yaml:\n%s", out)
		}

		// flow rollback.
		if out := c.must("flow", "rollback", "check", "--to", "1", "-p", "ops"); !strings.Contains(out, "flow check rolled back to version 1: now version 3 (project ops)") {
			t.Errorf("flow rollback:\n%s", out)
		}
		if got := s.Must(200, "GET", "/api/v1/projects/ops/flows/check", nil); !strings.Contains(mustJSON(t, got["definition"]), `"return {same: input.token === secrets.API_TOKEN}"`) {
			t.Errorf("definition after the rollback: %v", got["definition"])
		}
		if out := c.must("flow", "rollback", "check", "--to", "3", "-p", "ops"); !strings.Contains(out, "flow check unchanged: version 3") {
			t.Errorf("flow rollback to the current definition:\n%s", out)
		}
		out, err := c.run("flow", "rollback", "check", "--to", "9", "-p", "ops")
		if exitStatus(err) != exitNotFound || !strings.Contains(out, `flow "check" has no version 9; its versions are 1 to 3`) {
			t.Errorf("rollback to an unknown version: exit %d\n%s", exitStatus(err), out)
		}
		for _, args := range [][]string{{"flow", "rollback", "check", "-p", "ops"}, {"flow", "rollback", "check", "--to", "x", "-p", "ops"}, {"flow", "versions", "check"}} {
			if _, err := c.run(args...); exitStatus(err) != exitUsage {
				t.Errorf("hushflow %s: exit %d, want %d", strings.Join(args, " "), exitStatus(err), exitUsage)
			}
		}

		// flow pause and resume.
		if out := c.must("flow", "pause", "check", "-p", "ops"); !regexp.MustCompile(`^flow check paused by admin at \S+ \(project ops\): it starts no run until hushflow flow resume check\n$`).MatchString(out) {
			t.Errorf("flow pause:\n%s", out)
		}
		if out := c.must("flow", "list", "-p", "ops"); !regexp.MustCompile(`(?m)^check\s+3\s+manual \(paused\)\s`).MatchString(out) {
			t.Errorf("flow list of a paused flow:\n%s", out)
		}
		if out := c.must("flow", "get", "check", "-p", "ops"); !regexp.MustCompile(`^# flow check, project ops, version 3, updated \S+ by admin; paused \S+ by admin\n`).MatchString(out) {
			t.Errorf("flow get of a paused flow:\n%s", out)
		}
		if out, err := c.run("run", "rerun", id); exitStatus(err) != exitError || !strings.Contains(out, `flow "check" is paused (by admin, `) {
			t.Errorf("rerun of a paused flow: exit %d\n%s", exitStatus(err), out)
		}
		if out := c.must("flow", "resume", "check", "-p", "ops"); out != "flow check resumed (project ops): it starts runs again\n" {
			t.Errorf("flow resume:\n%s", out)
		}
		if _, err := c.run("flow", "pause", "nope", "-p", "ops"); exitStatus(err) != exitNotFound {
			t.Errorf("pause of no such flow: exit %d, want %d", exitStatus(err), exitNotFound)
		}
		if _, err := c.run("flow", "pause", "check"); exitStatus(err) != exitUsage {
			t.Errorf("pause without --project: exit %d, want %d", exitStatus(err), exitUsage)
		}

		// user create and list.
		c.must("user", "create", "zoe")
		out = c.must("user", "list")
		if !regexp.MustCompile(`(?m)^\S+\s+admin\s+yes\s`).MatchString(out) || !regexp.MustCompile(`(?m)^\S+\s+zoe\s+-\s`).MatchString(out) {
			t.Errorf("user list:\n%s", out)
		}
		var us struct {
			Users []struct {
				Name string `json:"name"`
			} `json:"users"`
		}
		if err := json.Unmarshal([]byte(c.must("user", "list", "-o", "json")), &us); err != nil || len(us.Users) != 2 || us.Users[1].Name != "zoe" {
			t.Errorf("user list -o json: %+v %v", us, err)
		}
		if out := c.must("user", "list", "-o", "yaml"); !strings.Contains(out, "name: zoe") {
			t.Errorf("user list -o yaml:\n%s", out)
		}
		apptest.AssertAbsent(t, "CLI output", c.all.String(), flowCanary)
	})
}
