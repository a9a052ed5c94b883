package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/apptest"
)

// TestProjectDelete deletes a project with everything it holds, through
// the CLI against a real server: refused without --yes when stdin is not
// a terminal, refused while a run waits, refused to a project admin who is
// not an organization admin; then done, and a project created again under
// the same name starts empty (no flow, run, installation, secret or member
// of the old one shows), while the organization's secrets and other
// projects stay.
func TestProjectDelete(t *testing.T) {
	apptest.SkipShort(t)
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		t.Setenv("HUSHFLOW_ADDR", s.URL)
		t.Setenv("HUSHFLOW_TOKEN", s.Token)
		for _, p := range []string{"billing", "shop"} {
			s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": p})
			s.Must(201, "POST", "/api/v1/projects/"+p+"/flows", map[string]any{"name": "hello", "trigger": map[string]string{"type": "manual"},
				"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]string{"message": "'hi'"}}}})
			s.Must(200, "POST", "/api/v1/projects/"+p+"/flows/hello/runs?wait=30s", map[string]any{"environment": "development"})
		}
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{"name": "slow", "trigger": map[string]string{"type": "manual"},
			"blocks": []any{map[string]any{"id": "w", "type": "delay", "timeout": "2h", "config": map[string]string{"duration": "'1h'"}}}})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": flowCanary, "project": "billing"})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": flowCanary + "-prod", "project": "billing", "environment": "production"})
		s.Must(201, "POST", "/api/v1/secrets", map[string]any{"name": "ORG_TOKEN", "value": flowCanary + "-org"})
		s.Must(201, "POST", "/api/v1/projects/billing/installations", map[string]any{"app": "slack", "name": "notifier",
			"config": map[string]string{"bot_token": "secrets.API_TOKEN"}})
		user := s.Must(201, "POST", "/api/v1/users", map[string]any{"name": "ana"})["id"].(string)
		userToken := s.Must(201, "POST", "/api/v1/users/"+user+"/tokens", map[string]string{"name": "t"})["token"].(string)
		s.Must(200, "PUT", "/api/v1/projects/billing/members/"+user, map[string]string{"role": "admin"})
		c := &flowCLI{t: t}

		// Not on a terminal, without --yes: refused before anything is sent.
		_, err := c.run("project", "delete", "billing")
		if exitStatus(err) != exitUsage || !strings.Contains(err.Error(), "add --yes to confirm") {
			t.Fatalf("delete without --yes: %v (exit %d)", err, exitStatus(err))
		}
		// A project admin is not an organization admin.
		t.Setenv("HUSHFLOW_TOKEN", userToken)
		if _, err := c.run("project", "delete", "billing", "--yes"); exitStatus(err) != exitAuth {
			t.Fatalf("delete by a project admin: %v (exit %d)", err, exitStatus(err))
		}
		t.Setenv("HUSHFLOW_TOKEN", s.Token)
		// A waiting run: refused, nothing deleted.
		slow := s.Must(202, "POST", "/api/v1/projects/billing/flows/slow/runs", map[string]any{"environment": "development"})["id"].(string)
		apptest.Eventually(t, 30*time.Second, "the slow run to wait", func() error {
			if st := s.Must(200, "GET", "/api/v1/runs/"+slow, nil)["status"]; st != "waiting" {
				return fmt.Errorf("status %v", st)
			}
			return nil
		})
		_, err = c.run("project", "delete", "billing", "--yes")
		if exitStatus(err) != exitError || !strings.Contains(err.Error(), "project billing has 1 run(s) queued, running or waiting") {
			t.Fatalf("delete with a waiting run: %v (exit %d)", err, exitStatus(err))
		}
		if out := c.must("flow", "list", "-p", "billing"); !strings.Contains(out, "slow") {
			t.Fatalf("a refused delete deleted: %s", out)
		}
		c.must("run", "cancel", slow)
		apptest.Eventually(t, 30*time.Second, "the slow run to be canceled", func() error {
			if st := s.Must(200, "GET", "/api/v1/runs/"+slow, nil)["status"]; st != "canceled" {
				return fmt.Errorf("status %v", st)
			}
			return nil
		})

		out := c.must("project", "delete", "billing", "--yes")
		if !strings.Contains(out, "deleted project billing: 2 flows, 2 runs, 1 installation, 2 secrets (values wiped)") {
			t.Fatalf("delete: %s", out)
		}
		if _, err := c.run("project", "delete", "billing", "--yes"); exitStatus(err) != exitNotFound {
			t.Errorf("delete again: %v", err)
		}
		if out := c.must("project", "list"); strings.Contains(out, "billing") || !strings.Contains(out, "shop") {
			t.Errorf("project list after delete: %s", out)
		}
		c.must("environment", "protect", "production")
		if out := c.must("environment", "list"); !regexp.MustCompile(`NAME +CREATED +PROTECTED\n`).MatchString(out) ||
			!regexp.MustCompile(`\nproduction +\S+ +yes\n`).MatchString(out) || !regexp.MustCompile(`\ndevelopment +\S+ +no\n`).MatchString(out) {
			t.Errorf("environment list: %s", out)
		}
		if r := s.Do("GET", "/api/v1/runs/"+slow, nil); r.Status != 404 {
			t.Errorf("a deleted project's run: %d", r.Status)
		}

		// The same name again is a new, empty project.
		c.must("project", "create", "billing")
		for _, args := range [][]string{
			{"flow", "list", "-p", "billing", "-o", "json"},
			{"run", "list", "-p", "billing", "-o", "json"},
			{"installation", "list", "-p", "billing", "-o", "json"},
			{"member", "list", "-p", "billing", "-o", "json"},
			{"secret", "list", "-p", "billing", "-o", "json"},
			{"secret", "list", "-p", "billing", "-e", "production", "-o", "json"},
		} {
			if out := c.must(args...); !strings.Contains(out, "[]") {
				t.Errorf("hushflow %s on the new project: %s", strings.Join(args, " "), out)
			}
		}
		if out := c.must("secret", "list", "-p", "billing", "-e", "production", "--resolved"); !strings.Contains(out, "ORG_TOKEN") || strings.Contains(out, "API_TOKEN") {
			t.Errorf("resolved secrets of the new project: %s", out)
		}
		if out := c.must("flow", "list", "-p", "shop"); !strings.Contains(out, "hello") {
			t.Errorf("another project lost its flow: %s", out)
		}
		if out := c.must("run", "list", "-p", "shop", "-o", "json"); !strings.Contains(out, `"status": "succeeded"`) {
			t.Errorf("another project lost its run: %s", out)
		}
		// The deleted secrets' values are gone from the database; the
		// organization's stays (encrypted).
		dump := apptest.DumpTables(t, s.App.DB)
		if !strings.Contains(dump, "ORG_TOKEN") {
			t.Errorf("the organization's secret is gone")
		}
		apptest.AssertAbsent(t, "CLI output", c.all.String(), flowCanary)
		if out := c.must("secret", "audit", "API_TOKEN"); !strings.Contains(out, "delete") {
			t.Errorf("the deletions are not audited: %s", out)
		}
	})
}
