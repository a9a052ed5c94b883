package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store/storetest"
)

// closedAddr is an address nothing listens on.
func closedAddr(t *testing.T) string { return "http://" + freeAddr(t) }

// TestExitStatuses runs the CLI against a real server and checks the exit
// status of each kind of failure (docs/cli.md, "Exit status"). The
// statuses do not depend on the database, so one SQLite server serves.
func TestExitStatuses(t *testing.T) {
	apptest.SkipShort(t)
	s := apptest.Start(t, storetest.SQLiteConfig(t))
	t.Setenv("HUSHFLOW_ADDR", s.URL)
	t.Setenv("HUSHFLOW_TOKEN", s.Token)
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
	user := s.Must(201, "POST", "/api/v1/users", map[string]any{"name": "viewer"})
	userToken := s.Must(201, "POST", "/api/v1/users/"+user["id"].(string)+"/tokens", map[string]string{"name": "t"})["token"].(string)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"name":"bad","trigger":{"type":"manual"},"blocks":[{"id":"a","type":"nope"}]}`), 0o600)
	c := &flowCLI{t: t}

	cases := []struct {
		name   string
		env    map[string]string
		args   []string
		status int
		msg    string // in the error
	}{
		{"mistyped verb", nil, []string{"fow"}, exitUsage, `unknown command "fow" for "hushflow"; did you mean "flow"?`},
		{"mistyped subverb", nil, []string{"project", "lst"}, exitUsage, `unknown command "lst" for "hushflow project"; did you mean "list"?`},
		{"mistyped subverb with flags", nil, []string{"flow", "lst", "-p", "billing"}, exitUsage, `unknown command "lst" for "hushflow flow"; did you mean "get" or "list"?`},
		{"verb of another tool", nil, []string{"token", "rm", "x"}, exitUsage, `unknown command "rm" for "hushflow token"; did you mean "revoke"?`},
		{"verb of another tool for apply", nil, []string{"flow", "create", "-f", "x"}, exitUsage, `did you mean "apply"?`},
		{"mistyped help topic", nil, []string{"help", "fow"}, exitUsage, `unknown command "fow" for "hushflow"; did you mean "flow"?`},
		{"mistyped help subtopic", nil, []string{"help", "project", "lst"}, exitUsage, `unknown command "lst" for "hushflow project"; did you mean "list"?`},
		{"unknown flag", nil, []string{"flow", "list", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{"missing argument", nil, []string{"flow", "get", "-p", "billing"}, exitUsage, "accepts 1 arg(s), received 0"},
		{"extra argument", nil, []string{"project", "list", "extra"}, exitUsage, `unknown command "extra" for "hushflow project list"`},
		{"missing --project", nil, []string{"flow", "list"}, exitUsage, "--project is required"},
		{"bad --limit", nil, []string{"run", "list", "-p", "billing", "--limit", "0"}, exitUsage, "--limit must be at least 1"},
		{"bad --input", nil, []string{"flow", "run", "x", "-p", "billing", "-e", "development", "--input", "{"}, exitUsage, "--input is not JSON"},
		{"missing --name", nil, []string{"token", "create"}, exitUsage, "--name is required"},
		{"no token", map[string]string{"HUSHFLOW_TOKEN": ""}, []string{"project", "list"}, exitAuth, "HUSHFLOW_TOKEN is not set"},
		{"wrong token", map[string]string{"HUSHFLOW_TOKEN": "hf_wrong"}, []string{"project", "list"}, exitAuth, "the server refused the token in HUSHFLOW_TOKEN: it is unknown, revoked or expired"},
		{"forbidden", map[string]string{"HUSHFLOW_TOKEN": userToken}, []string{"environment", "create", "qa"}, exitAuth, "(HTTP 403)"},
		{"unknown flow", nil, []string{"flow", "get", "nope", "-p", "billing"}, exitNotFound, "(HTTP 404)"},
		{"unknown run", nil, []string{"run", "get", "00000000-0000-0000-0000-000000000000"}, exitNotFound, "(HTTP 404)"},
		{"unknown project", nil, []string{"flow", "list", "-p", "nope"}, exitNotFound, "(HTTP 404)"},
		{"unknown secret", nil, []string{"secret", "delete", "NOPE", "-p", "billing"}, exitNotFound, `secret "NOPE" is not defined in project billing`},
		{"secret not listed", nil, []string{"secret", "list", "NOPE", "-p", "billing"}, exitNotFound, `secret "NOPE" is not defined in project billing`},
		{"closed port", map[string]string{"HUSHFLOW_ADDR": closedAddr(t)}, []string{"project", "list"}, exitUnavailable, "cannot reach the Hushflow server at http://127.0.0.1:"},
		{"invalid definition", nil, []string{"flow", "apply", "-f", bad, "-p", "billing"}, exitError, `flow "bad" is invalid`},
		{"conflict", nil, []string{"project", "create", "billing"}, exitError, "(HTTP 409)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c.t = t
			out, err := c.run(tc.args...)
			if got := exitStatus(err); got != tc.status || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("hushflow %s: exit status %d, want %d; error %v, want it to say %q\n%s",
					strings.Join(tc.args, " "), got, tc.status, err, tc.msg, out)
			}
		})
	}

	// A server that answers 5xx: its database is gone.
	t.Run("server error", func(t *testing.T) {
		if err := s.App.DB.Close(); err != nil {
			t.Fatal(err)
		}
		c.t = t
		out, err := c.run("project", "list")
		var ae *apiError
		if got := exitStatus(err); got != exitUnavailable || !errors.As(err, &ae) || ae.Status < 500 {
			t.Fatalf("project list with the database closed: exit status %d, want %d: %v\n%s", got, exitUnavailable, err, out)
		}
	})
}

// TestRateLimitedExitStatus: a 429 is neither a server error nor a
// generic failure, but exit status 6, so that a script can wait and retry.
func TestRateLimitedExitStatus(t *testing.T) {
	apptest.SkipShort(t)
	// A rate so low that after the burst of one request the next is
	// days away.
	s := apptest.Start(t, storetest.SQLiteConfig(t), func(cfg *app.Config) { cfg.RateLimit = 1e-6 })
	t.Setenv("HUSHFLOW_ADDR", s.URL)
	t.Setenv("HUSHFLOW_TOKEN", s.Token)
	c := &flowCLI{t: t}
	c.must("project", "list")
	_, err := c.run("project", "list")
	if got := exitStatus(err); got != exitRateLimited || err == nil || !strings.Contains(err.Error(), "retry after a second (HTTP 429)") {
		t.Fatalf("project list over the rate limit: exit status %d, want %d: %v", got, exitRateLimited, err)
	}
}

// TestExitStatusOfTheBinary checks that main exits with the status of
// the error, and prints it on one line.
func TestExitStatusOfTheBinary(t *testing.T) {
	apptest.SkipShort(t)
	s := apptest.Start(t, storetest.SQLiteConfig(t))
	for _, tc := range []struct {
		env    []string
		args   []string
		status int
		stderr string
	}{
		{nil, []string{"secret", "lst"}, exitUsage, `hushflow: unknown command "lst" for "hushflow secret"; did you mean "list"?`},
		{[]string{"HUSHFLOW_TOKEN=hf_wrong"}, []string{"project", "list"}, exitAuth, "hushflow: "},
		{nil, []string{"flow", "get", "nope", "-p", "nope"}, exitNotFound, "hushflow: "},
		{[]string{"HUSHFLOW_ADDR=" + closedAddr(t)}, []string{"project", "list"}, exitUnavailable, "hushflow: cannot reach the Hushflow server"},
		{nil, []string{"help", "fow"}, exitUsage, `hushflow: unknown command "fow" for "hushflow"; did you mean "flow"?`},
		{nil, []string{"help", "flow"}, exitOK, ""},
		{nil, []string{"project", "list"}, exitOK, ""},
	} {
		cmd := exec.Command(binary(t), tc.args...)
		cmd.Env = append(os.Environ(), append([]string{"HUSHFLOW_ADDR=" + s.URL, "HUSHFLOW_TOKEN=" + s.Token}, tc.env...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		status := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			status = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if status != tc.status || !strings.HasPrefix(stderr.String(), tc.stderr) || strings.Count(stderr.String(), "\n") > 1 {
			t.Errorf("hushflow %s: exit status %d, want %d; stderr %q", strings.Join(tc.args, " "), status, tc.status, stderr.String())
		}
	}
}
