package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/internal/apptest"
)

// TestInstallationCommands drives installation create, list, get, update
// and delete against a real server; the config shows expressions, never
// the secret's value.
func TestInstallationCommands(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		t.Setenv("HUSHFLOW_ADDR", s.URL)
		t.Setenv("HUSHFLOW_TOKEN", s.Token)
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "SLACK_BOT_TOKEN", "value": flowCanary, "project": "billing"})
		c := &flowCLI{t: t}

		out := c.must("installation", "create", "notifier", "--app", "slack", "-p", "billing", "--config", "bot_token=secrets.SLACK_BOT_TOKEN")
		if !strings.Contains(out, "created installation notifier of app slack (project billing)") {
			t.Errorf("create: %s", out)
		}
		out = c.must("installation", "list", "-p", "billing")
		if !strings.Contains(out, "NAME") || !strings.Contains(out, "notifier") || !strings.Contains(out, "bot_token=secrets.SLACK_BOT_TOKEN") {
			t.Errorf("list: %s", out)
		}
		var list struct {
			Installations []installationInfo `json:"installations"`
		}
		if err := json.Unmarshal([]byte(c.must("installation", "list", "-p", "billing", "-o", "json")), &list); err != nil ||
			len(list.Installations) != 1 || list.Installations[0].Config["bot_token"] != "secrets.SLACK_BOT_TOKEN" {
			t.Errorf("list -o json: %+v %v", list, err)
		}
		if out := c.must("installation", "list", "-p", "billing", "-o", "yaml"); !strings.Contains(out, "installations:\n") || !strings.Contains(out, "app: slack") {
			t.Errorf("list -o yaml: %s", out)
		}
		var one installationInfo
		if err := json.Unmarshal([]byte(c.must("installation", "get", "notifier", "-p", "billing", "-o", "json")), &one); err != nil || one.App != "slack" {
			t.Errorf("get -o json: %+v %v", one, err)
		}

		// update changes the fields given and keeps the others; a warning
		// for a secret that is not defined goes to stderr.
		out = c.must("installation", "update", "notifier", "-p", "billing", "--config", "signing_secret=secrets.SLACK_SIGNING_SECRET")
		if !strings.Contains(out, "updated installation notifier") || !strings.Contains(out, `warning: `) || !strings.Contains(out, "SLACK_SIGNING_SECRET") {
			t.Errorf("update: %s", out)
		}
		out = c.must("installation", "get", "notifier", "-p", "billing")
		if !strings.Contains(out, "bot_token=secrets.SLACK_BOT_TOKEN signing_secret=secrets.SLACK_SIGNING_SECRET") {
			t.Errorf("get after update: %s", out)
		}
		c.must("installation", "update", "notifier", "-p", "billing", "--unset", "signing_secret")
		if out := c.must("installation", "get", "notifier", "-p", "billing"); strings.Contains(out, "signing_secret") {
			t.Errorf("get after --unset: %s", out)
		}

		// A pasted token is refused by the server, and not echoed.
		_, err := c.run("installation", "create", "pasted", "--app", "slack", "-p", "billing", "--config", "bot_token='"+flowCanary+"'")
		if err == nil || exitStatus(err) != exitError {
			t.Errorf("pasted token: %v (exit %d)", err, exitStatus(err))
		}
		for _, tc := range []struct {
			args   []string
			status int
			msg    string
		}{
			{[]string{"installation", "create", "x", "-p", "billing", "--config", "bot_token=secrets.SLACK_BOT_TOKEN"}, exitUsage, "--app is required"},
			{[]string{"installation", "create", "x", "--app", "slack", "-p", "billing", "--config", "bot_token"}, exitUsage, "--config takes FIELD=EXPRESSION"},
			{[]string{"installation", "update", "notifier", "-p", "billing"}, exitUsage, "nothing to change"},
			{[]string{"installation", "update", "notifier", "-p", "billing", "--unset", "nope"}, exitUsage, "has no field nope"},
			{[]string{"installation", "get", "nope", "-p", "billing"}, exitNotFound, "(HTTP 404)"},
			{[]string{"installation", "list"}, exitUsage, "--project is required"},
			{[]string{"installation", "rm", "notifier", "-p", "billing"}, exitUsage, `did you mean "delete"?`},
		} {
			_, err := c.run(tc.args...)
			if exitStatus(err) != tc.status || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("hushflow %s: exit %d, want %d; %v, want %q", strings.Join(tc.args, " "), exitStatus(err), tc.status, err, tc.msg)
			}
		}

		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "alert", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "a", "type": "app", "config": map[string]any{
				"installation": "'notifier'", "action": "'post_message'", "with": map[string]any{"channel": "C1", "text": "hi"}}}}})
		if out := c.must("installation", "delete", "notifier", "-p", "billing"); !strings.Contains(out, "deleted installation notifier") ||
			!strings.Contains(out, "warning: flows alert use it: their runs fail at its app blocks until an installation named notifier exists again") {
			t.Errorf("delete: %s", out)
		}
		if out := c.must("installation", "list", "-p", "billing", "-o", "json"); !strings.Contains(out, `"installations": []`) {
			t.Errorf("list after delete: %s", out)
		}
		apptest.AssertAbsent(t, "CLI output", c.all.String(), flowCanary)
	})
}

// TestMemberCommands drives member set, list and remove, and checks that
// the role takes effect on the API.
func TestMemberCommands(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		t.Setenv("HUSHFLOW_ADDR", s.URL)
		t.Setenv("HUSHFLOW_TOKEN", s.Token)
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
		user := s.Must(201, "POST", "/api/v1/users", map[string]any{"name": "ana"})["id"].(string)
		userToken := s.Must(201, "POST", "/api/v1/users/"+user+"/tokens", map[string]string{"name": "t"})["token"].(string)
		c := &flowCLI{t: t}

		if r := s.DoToken(userToken, "GET", "/api/v1/projects/billing/flows", nil); r.Status != 404 {
			t.Fatalf("before set: %d", r.Status)
		}
		if out := c.must("member", "set", user, "viewer", "-p", "billing"); !strings.Contains(out, "user "+user+" is a viewer of project billing") {
			t.Errorf("set: %s", out)
		}
		if r := s.DoToken(userToken, "GET", "/api/v1/projects/billing/flows", nil); r.Status != 200 {
			t.Errorf("a viewer reads flows: %d", r.Status)
		}
		c.must("member", "set", user, "editor", "-p", "billing")
		out := c.must("member", "list", "-p", "billing")
		if !regexp.MustCompile(`USER +NAME +ROLE +UPDATED\n` + user + ` +ana +editor `).MatchString(out) {
			t.Errorf("list: %s", out)
		}
		var list struct {
			Members []struct {
				UserID string `json:"user_id"`
				Role   string `json:"role"`
			} `json:"members"`
		}
		if err := json.Unmarshal([]byte(c.must("member", "list", "-p", "billing", "-o", "json")), &list); err != nil ||
			len(list.Members) != 1 || list.Members[0].UserID != user || list.Members[0].Role != "editor" {
			t.Errorf("list -o json: %+v %v", list, err)
		}
		for _, tc := range []struct {
			args   []string
			status int
			msg    string
		}{
			{[]string{"member", "set", user, "editr", "-p", "billing"}, exitUsage, `unknown role "editr"; did you mean "editor"?`},
			{[]string{"member", "set", user, "owner", "-p", "billing"}, exitUsage, `unknown role "owner": use viewer, editor or admin`},
			{[]string{"member", "set", "00000000-0000-0000-0000-000000000000", "viewer", "-p", "billing"}, exitNotFound, "(HTTP 404)"},
			{[]string{"member", "add", user, "viewer", "-p", "billing"}, exitUsage, `did you mean "set"?`},
			{[]string{"member", "list", "-p", "nope"}, exitNotFound, "(HTTP 404)"},
		} {
			_, err := c.run(tc.args...)
			if exitStatus(err) != tc.status || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("hushflow %s: exit %d, want %d; %v, want %q", strings.Join(tc.args, " "), exitStatus(err), tc.status, err, tc.msg)
			}
		}
		// The member, an editor and not a project admin, may not change roles.
		t.Setenv("HUSHFLOW_TOKEN", userToken)
		if _, err := c.run("member", "set", user, "admin", "-p", "billing"); exitStatus(err) != exitAuth {
			t.Errorf("an editor sets a role: %v (exit %d)", err, exitStatus(err))
		}
		t.Setenv("HUSHFLOW_TOKEN", s.Token)

		if out := c.must("member", "remove", user, "-p", "billing"); !strings.Contains(out, "no longer a member of project billing") {
			t.Errorf("remove: %s", out)
		}
		if r := s.DoToken(userToken, "GET", "/api/v1/projects/billing/flows", nil); r.Status != 404 {
			t.Errorf("after remove: %d", r.Status)
		}
	})
}

// TestFlowDeleteCommand deletes a flow; its runs stay.
func TestFlowDeleteCommand(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		t.Setenv("HUSHFLOW_ADDR", s.URL)
		t.Setenv("HUSHFLOW_TOKEN", s.Token)
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "hello", "trigger": map[string]string{"type": "manual"},
			"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]string{"message": "'hi'"}}}})
		run := s.Must(200, "POST", "/api/v1/projects/billing/flows/hello/runs?wait=30s", map[string]any{"environment": "development"})["id"].(string)
		c := &flowCLI{t: t}
		if out := c.must("flow", "delete", "hello", "-p", "billing"); !strings.Contains(out, "deleted flow hello and its versions (project billing); its runs stay") {
			t.Errorf("delete: %s", out)
		}
		if _, err := c.run("flow", "get", "hello", "-p", "billing"); exitStatus(err) != exitNotFound {
			t.Errorf("get after delete: %v", err)
		}
		if _, err := c.run("flow", "delete", "hello", "-p", "billing"); exitStatus(err) != exitNotFound {
			t.Errorf("delete again: %v", err)
		}
		if out := c.must("run", "get", run); !strings.Contains(out, "succeeded") {
			t.Errorf("the run after its flow's delete: %s", out)
		}
	})
}

// TestDidYouMeanInValidation: a mistyped secret name in a flow or an
// installation, and a mistyped field of a block, are answered with the
// nearest known name; the suggestions come from the project's own secret
// names and the block's spec only, never from another project.
func TestDidYouMeanInValidation(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		t.Setenv("HUSHFLOW_ADDR", s.URL)
		t.Setenv("HUSHFLOW_TOKEN", s.Token)
		for _, p := range []string{"billing", "shop"} {
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": p})
		}
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": flowCanary, "project": "billing"})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "SLACK_BOT_TOKEN", "value": flowCanary + "2", "project": "billing"})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "SHOP_TOKEN", "value": flowCanary + "3", "project": "shop"})
		c := &flowCLI{t: t}
		dir := t.TempDir()

		write := func(name, doc string) string {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}
		out := c.must("flow", "apply", "-p", "billing", "-f", write("typo.yaml", `name: typo
trigger: {type: manual}
blocks:
  - id: a
    type: log
    config:
      message: "secrets.APi_TOKEN + secrets.SHOP_TOKN"
`))
		if !strings.Contains(out, `warning: secret "APi_TOKEN" is not defined for project "billing" in any environment; did you mean "API_TOKEN"?`) {
			t.Errorf("flow apply with a mistyped secret: %s", out)
		}
		if !strings.Contains(out, `secret "SHOP_TOKN" is not defined for project "billing" in any environment`+"\n") {
			t.Errorf("a name of another project is suggested, or no warning: %s", out)
		}

		// At run time, the error names the nearest secret the run can read.
		ran, err := c.run("flow", "run", "typo", "-p", "billing", "-e", "production", "--follow")
		if err == nil || !regexp.MustCompile(`(?m)^error: .*secret "APi_TOKEN".*; did you mean "API_TOKEN"\?`).MatchString(ran) {
			t.Errorf("a run with a mistyped secret: %v\n%s", err, ran)
		}

		out = c.must("installation", "create", "notifier", "--app", "slack", "-p", "billing", "--config", "bot_token=secrets.SLACK_BOT_TOKN")
		if !strings.Contains(out, `warning: secret "SLACK_BOT_TOKN" is not defined for project billing in any environment; did you mean "SLACK_BOT_TOKEN"?`) {
			t.Errorf("installation with a mistyped secret: %s", out)
		}

		_, err = c.run("flow", "apply", "-p", "billing", "-f", write("field.yaml", `name: field
trigger: {type: manual}
blocks:
  - id: call
    type: http
    config:
      method: "'GET'"
      urll: "'https://example.com'"
`))
		if err == nil || !strings.Contains(c.all.String(), `block "call", urll`) || !strings.Contains(c.all.String(), `unknown field for block type "http"; did you mean "url"?`) {
			t.Errorf("a mistyped field: %v\n%s", err, c.all.String())
		}
		apptest.AssertAbsent(t, "CLI output", c.all.String(), flowCanary)
	})
}
