package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/auth"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/server"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

// cliEnv is a real API over a real database, with HUSHFLOW_ADDR and
// HUSHFLOW_TOKEN pointing the CLI at it.
type cliEnv struct {
	t      *testing.T
	store  *secrets.Store
	output bytes.Buffer // everything the CLI printed, for the leak check
}

func newCLIEnv(t *testing.T, db *store.DB, keyring string) *cliEnv {
	t.Helper()
	kr, err := secrets.ParseKeyring(keyring)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	st := secrets.New(secrets.Config{DB: db, Keyring: kr, Logger: log})
	authSvc := auth.New(auth.Config{DB: db})
	token, err := authSvc.Bootstrap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(server.Deps{DB: db, Auth: authSvc, Projects: projects.NewService(db), Secrets: st, Logger: log}))
	t.Cleanup(ts.Close)
	t.Setenv("HUSHFLOW_ADDR", ts.URL)
	if token != "" { // "": a restart over the same database keeps the first token
		t.Setenv("HUSHFLOW_TOKEN", token)
	}
	return &cliEnv{t: t, store: st}
}

// run runs the CLI in-process with stdin.
func (e *cliEnv) run(stdin string, args ...string) (string, error) {
	e.t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	e.output.WriteString(out.String() + errOut.String())
	if err != nil {
		e.output.WriteString(err.Error())
	}
	return out.String() + errOut.String(), err
}

func (e *cliEnv) must(stdin string, args ...string) string {
	e.t.Helper()
	out, err := e.run(stdin, args...)
	if err != nil {
		e.t.Fatalf("hushflow %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e *cliEnv) resolve(project, env, name string) (string, string) {
	e.t.Helper()
	v, m, err := e.store.Resolve(context.Background(), secrets.Access{Project: project, Environment: env, Name: name})
	if err != nil {
		e.t.Fatalf("resolve %s: %v", name, err)
	}
	return v.Reveal(), m.Scope.Label()
}

func TestSecretCLIRoundTrip(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		e := newCLIEnv(t, db, "k1:"+secrets.NewKey())
		e.must("", "project", "create", "billing")
		e.must("", "project", "create", "shop")

		org := "cli-org-" + secrets.NewKey()
		env := "cli-env-" + secrets.NewKey()
		proj := "cli-proj-" + secrets.NewKey()
		file := []byte("-----BEGIN KEY-----\ncli-file-" + secrets.NewKey() + "\n-----END KEY-----\n\x00\xff")
		path := filepath.Join(t.TempDir(), "key.pem")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		values := []string{org, env, proj, string(file)}

		// Four scopes, four ways to give the value.
		if out := e.must("", "secret", "create", "API_TOKEN", org, "--description", "org token"); !strings.Contains(out, "in the organization (version 1)") {
			t.Errorf("create org: %s", out)
		}
		e.must(env+"\n", "secret", "create", "API_TOKEN", "--environment", "production") // stdin, piped
		e.must("", "secret", "create", "API_TOKEN", proj, "-p", "billing", "--allowed-host", "api.example.com")
		if out := e.must("", "secret", "create", "API_TOKEN", "--project", "billing", "--environment", "production", "--from-file", path); !strings.Contains(out, "created file secret") {
			t.Errorf("create from file: %s", out)
		}

		for _, c := range []struct{ project, env, want, from string }{
			{"billing", "production", string(file), "project+environment"},
			{"billing", "staging", proj, "project"},
			{"shop", "production", env, "environment"},
			{"shop", "staging", org, "organization"},
		} {
			if v, from := e.resolve(c.project, c.env, "API_TOKEN"); v != c.want || from != c.from {
				t.Errorf("%s/%s resolves from %s (value ok: %v), want %s", c.project, c.env, from, v == c.want, c.from)
			}
			args := []string{"secret", "get", "--resolved", "--environment", c.env}
			if c.project != "" {
				args = append(args, "--project", c.project)
			}
			out := e.must("", args...)
			if !strings.Contains(out, "FROM") || !strings.Contains(out, c.from) {
				t.Errorf("get --resolved %s/%s: %s", c.project, c.env, out)
			}
		}
		out := e.must("", "secret", "list", "--project", "billing")
		if !strings.Contains(out, "NAME") || !strings.Contains(out, "API_TOKEN") || !strings.Contains(out, "project=billing") {
			t.Errorf("list: %s", out)
		}
		// get, the verb before list, and ls are the same command.
		for _, verb := range []string{"get", "ls"} {
			if got := e.must("", "secret", verb, "--project", "billing"); got != out {
				t.Errorf("secret %s differs from secret list:\n%s\n---\n%s", verb, got, out)
			}
		}

		// Update through stdin: a new version; a file secret stays a file.
		upd := "cli-upd-" + secrets.NewKey()
		values = append(values, upd)
		if out := e.must(upd, "secret", "update", "API_TOKEN", "--project", "billing"); !strings.Contains(out, "version 2") {
			t.Errorf("update: %s", out)
		}
		if v, _ := e.resolve("billing", "staging", "API_TOKEN"); v != upd {
			t.Error("update did not take")
		}
		// --keep-value: the description changes, not the value nor its
		// version; audited as an update naming the field. Where the value
		// may go (allowed hosts, readable_from) changes only with a new one.
		if out := e.must("", "secret", "update", "API_TOKEN", "--project", "billing", "--keep-value", "--description", "the billing API"); !strings.Contains(out, "its value unchanged: version 2") {
			t.Errorf("update --keep-value: %s", out)
		}
		if _, err := e.run("", "secret", "update", "API_TOKEN", "--project", "billing", "--keep-value", "--description", "x", "--allowed-host", "evil.example"); exitStatus(err) != exitUsage {
			t.Errorf("update --keep-value --allowed-host: %v", err)
		}
		if v, _ := e.resolve("billing", "staging", "API_TOKEN"); v != upd {
			t.Error("update --keep-value changed the value")
		}
		if out := e.must("", "secret", "list", "API_TOKEN", "--project", "billing", "-o", "json"); !strings.Contains(out, `"the billing API"`) ||
			!strings.Contains(out, `"version": 2`) {
			t.Errorf("after update --keep-value: %s", out)
		}
		if out := e.must("", "secret", "audit", "API_TOKEN"); !strings.Contains(out, "changed description; the value is unchanged") {
			t.Errorf("audit of update --keep-value: %s", out)
		}
		if _, err := e.run("", "secret", "update", "API_TOKEN", "--project", "billing", "--keep-value"); exitStatus(err) != exitUsage {
			t.Errorf("update --keep-value with nothing to change: %v", err)
		}
		file2 := string(file) + "v2"
		values = append(values, file2)
		e.must(file2, "secret", "update", "API_TOKEN", "--project", "billing", "--environment", "production")
		if v, _ := e.resolve("billing", "production", "API_TOKEN"); v != file2 {
			t.Error("file update from stdin is not byte-exact")
		}
		if out := e.must("", "secret", "versions", "API_TOKEN", "--project", "billing"); !strings.Contains(out, "VERSION") {
			t.Errorf("versions: %s", out)
		}

		// Delete: the next scope takes over.
		e.must("", "secret", "delete", "API_TOKEN", "--project", "billing", "--environment", "production")
		if _, from := e.resolve("billing", "production", "API_TOKEN"); from != "project" {
			t.Errorf("after delete from %s", from)
		}

		// The audit trail lists the writes and the reads.
		if out := e.must("", "secret", "audit", "API_TOKEN"); !strings.Contains(out, "ACTION") || !strings.Contains(out, "create") ||
			!strings.Contains(out, "delete") || !strings.Contains(out, "resolve") {
			t.Errorf("audit: %s", out)
		}
		// Flag values out of range are refused before anything is sent
		// (exit status 2), not silently replaced by the default.
		for _, args := range [][]string{{"secret", "audit", "--limit", "0"}, {"secret", "audit", "--limit", "5000"},
			{"keys", "rotate", "--batch-size", "0"}, {"keys", "rotate", "--max-batches", "-1"}} {
			if _, err := e.run("", args...); exitStatus(err) != exitUsage {
				t.Errorf("%v: %v (exit %d), want exit %d", args, err, exitStatus(err), exitUsage)
			}
		}

		// Errors say what to fix.
		for _, c := range []struct {
			stdin string
			args  []string
			want  string
		}{
			{"", []string{"secret", "create", "1BAD", "v"}, "JavaScript identifier"},
			{"", []string{"secret", "create", "API_TOKEN", "other-value-123456"}, `secret "API_TOKEN" already exists in organization`},
			{"", []string{"secret", "create", "X", "v", "--environment", "prod"}, `unknown environment "prod"`},
			{"", []string{"secret", "create", "X", "v", "--project", "nope"}, `project "nope" not found`},
			{"", []string{"secret", "create", "EMPTY"}, "the value is empty"},
			{"", []string{"secret", "create", "X", "v", "--from-file", path}, "not both"},
			{strings.Repeat("a", 64<<10+1), []string{"secret", "create", "BIG"}, "64 KiB"},
			{"", []string{"secret", "delete", "MISSING"}, `secret "MISSING" is not defined in the organization`},
			{"", []string{"keys", "generate", "--id", "bad id"}, "key id must be"},
		} {
			out, err := e.run(c.stdin, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("hushflow %s: got %v (%s), want %q", strings.Join(c.args, " "), err, out, c.want)
			}
		}

		// Weak values are accepted with a warning.
		if out := e.must("", "secret", "create", "PIN", "1234"); !strings.Contains(out, "warning:") {
			t.Errorf("weak: %s", out)
		}

		// No output ever holds a value or its base64.
		all := e.output.String()
		for _, v := range values {
			for _, f := range []string{v, base64.StdEncoding.EncodeToString([]byte(v))} {
				if strings.Contains(all, f) {
					t.Fatalf("CLI output leaks a value")
				}
			}
		}
	})
}

func TestKeysCLIRotate(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		old, fresh := secrets.NewKey(), secrets.NewKey()
		e := newCLIEnv(t, db, "k1:"+old)
		e.must("", "secret", "create", "ROT", "rotate-cli-value-123456")
		// The server restarts with a new primary key first.
		e = newCLIEnv(t, db, "k2:"+fresh+",k1:"+old)
		out := e.must("", "keys", "rotate", "--batch-size", "10")
		if !strings.Contains(out, "rewrapped 1 data keys under key k2") || !strings.Contains(out, "0 remaining") {
			t.Fatalf("rotate: %s", out)
		}
		if out := e.must("", "keys", "status"); !strings.Contains(out, "k2 wraps 1") {
			t.Errorf("status: %s", out)
		}
		// And again without the old key.
		e = newCLIEnv(t, db, "k2:"+fresh)
		if v, _ := e.resolve("", "", "ROT"); v != "rotate-cli-value-123456" {
			t.Fatal("wrong value after rotation")
		}
		k := e.must("", "keys", "generate", "--id", "k3")
		if _, err := secrets.ParseKeyring(strings.TrimSpace(k)); err != nil || !strings.HasPrefix(k, "k3:") {
			t.Fatalf("generate: %q %v", k, err)
		}
	})
}

// Exposure alerts (issue 20 item 2): `secret get` shows a secret a run
// found exposed (the EXPOSED column and a warning with the time, the run,
// the block, the sink and the rotate command) until `secret update`
// gives it a new value.
func TestSecretCLIShowsExposure(t *testing.T) {
	storetest.Each(t, schema.All(), func(t *testing.T, db *store.DB) {
		e := newCLIEnv(t, db, "k1:"+secrets.NewKey())
		e.must("", "project", "create", "billing")
		v := "cli-exposed-" + secrets.NewKey()
		e.must("", "secret", "create", "API_TOKEN", v, "-p", "billing")
		e.must("", "secret", "create", "OTHER", "cli-other-"+secrets.NewKey(), "-p", "billing")
		if out := e.must("", "secret", "get", "API_TOKEN", "-p", "billing"); !strings.Contains(out, "EXPOSED") || strings.Contains(out, "possibly exposed") {
			t.Fatalf("before any exposure: %s", out)
		}
		ok, err := e.store.RecordExposure(context.Background(), secrets.Exposure{Project: "billing", Environment: "development",
			Name: "API_TOKEN", RunID: "run-42", RunProject: "billing", RunEnvironment: "development", BlockID: "call", Sink: "http_response"})
		if err != nil || !ok {
			t.Fatalf("record: %v %v", ok, err)
		}
		out := e.must("", "secret", "get", "API_TOKEN", "-p", "billing")
		for _, want := range []string{"possibly exposed", "run run-42", "block call", "http_response", "hushflow secret update API_TOKEN --project billing"} {
			if !strings.Contains(out, want) {
				t.Errorf("secret get does not say %q:\n%s", want, out)
			}
		}
		if out := e.must("", "secret", "list", "-p", "billing"); strings.Count(out, "possibly exposed") != 1 {
			t.Errorf("list: %s", out)
		}
		e.must("", "secret", "update", "API_TOKEN", "cli-rotated-"+secrets.NewKey(), "-p", "billing")
		if out := e.must("", "secret", "get", "API_TOKEN", "-p", "billing"); strings.Contains(out, "possibly exposed") {
			t.Errorf("after update: %s", out)
		}
		apptest.AssertAbsent(t, "CLI output", e.output.String(), v)
	})
}
