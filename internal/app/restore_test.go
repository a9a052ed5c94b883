package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/hushflow/hushflow/blocks/all"
	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store/storetest"
)

// A backup is two things kept apart: a dump of the database and the
// keyring. Restoring the dump into a fresh database and starting a server
// with the same keyring resolves every secret; with another key the values
// stay sealed and the error says why (docs/operations.md, "Backups and
// restores").
func TestBackupRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("three servers, pg_dump and pg_restore: skipped in -short mode")
	}
	if os.Getenv(storetest.EnvURL) == "" {
		t.Skipf("%s not set: the restore test needs PostgreSQL (pg_dump, pg_restore)", storetest.EnvURL)
	}
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: it is installed with PostgreSQL's client (apt-get install postgresql-client)", tool)
		}
	}
	ctx := context.Background()
	src := storetest.PostgresConfig(t)
	s := apptest.Start(t, src)
	s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "billing"})
	type def struct {
		name, project, env, value string
	}
	defs := []def{
		{"ORG_KEY", "", "", "org-value-Zq8#x!" + strings.Repeat("o", 20)},
		{"ENV_KEY", "", "production", "env-value-\u00e9\u00e8-" + strings.Repeat("e", 10)},
		{"API_TOKEN", "billing", "", "tok_restore_5kP&q<r>\"s"},
		{"PEM", "billing", "production", "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcN\n-----END KEY-----"},
	}
	for _, d := range defs {
		body := map[string]any{"name": d.name, "value": "first-version-" + d.name}
		if d.project != "" {
			body["project"] = d.project
		}
		if d.env != "" {
			body["environment"] = d.env
		}
		created := s.Must(201, "POST", "/api/v1/secrets", body)
		// A second version: the restore must resolve the current one.
		s.Must(200, "PUT", "/api/v1/secrets/"+created["id"].(string), map[string]any{"value": d.value})
	}
	s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
		"name": "uses", "trigger": map[string]any{"type": "manual"},
		"blocks": []any{map[string]any{"id": "check", "type": "code", "config": map[string]any{
			"code": "return secrets.API_TOKEN === input.want && secrets.PEM.split('\\n').length === 3"}}},
	})

	// Back up: pg_dump of the database (the keyring is not in it).
	dump := filepath.Join(t.TempDir(), "hushflow.dump")
	runTool(t, "pg_dump", "--format=custom", "--no-owner", "--file", dump, src.DatabaseURL)
	if b, _ := os.ReadFile(dump); bytes.Contains(b, []byte("tok_restore_5kP")) {
		t.Fatal("the dump holds a secret value in plaintext")
	}

	// Restore into a fresh, empty database.
	dst := storetest.PostgresConfig(t)
	runTool(t, "pg_restore", "--no-owner", "--exit-on-error", "--dbname", dst.DatabaseURL, dump)

	// Same keyring: every secret resolves to its current value.
	r := apptest.Start(t, dst)
	for _, d := range defs {
		for _, env := range []string{"production", ""} {
			if d.env != "" && env != d.env {
				continue
			}
			v, meta, err := r.App.Secrets.Resolve(ctx, secrets.Access{Project: "billing", Environment: env, Name: d.name, Actor: "restore-test"})
			if err != nil {
				t.Fatalf("resolve %s after restore: %v", d.name, err)
			}
			if v.Reveal() != d.value || meta.Version != 2 {
				t.Errorf("%s after restore: version %d, value differs: %v", d.name, meta.Version, v.Reveal() != d.value)
			}
		}
	}
	// The restored server runs flows that read them.
	run := r.Must(200, "POST", "/api/v1/projects/billing/flows/uses/runs?wait=30s",
		map[string]any{"environment": "production", "input": map[string]any{"want": defs[2].value}})
	if run["status"] != "succeeded" || run["output"] != true {
		t.Errorf("run on the restored database: %v", run)
	}

	// Another keyring (the dump alone): nothing decrypts, and the error
	// says so without showing anything of the value.
	other := "k1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	w := apptest.Start(t, dst, func(c *app.Config) { c.MasterKey = other })
	for _, d := range defs {
		_, _, err := w.App.Secrets.Resolve(ctx, secrets.Access{Project: "billing", Environment: "production", Name: d.name, Actor: "restore-test"})
		var derr *secrets.DecryptError
		if !errors.As(err, &derr) || !errors.Is(err, secrets.ErrDecrypt) {
			t.Fatalf("%s with another master key: %v, want a *secrets.DecryptError", d.name, err)
		}
		if msg := err.Error(); !strings.Contains(msg, "cannot be decrypted") || !strings.Contains(msg, d.name) ||
			strings.Contains(msg, d.value) || strings.Contains(msg, "first-version") {
			t.Errorf("%s: unclear or leaking error: %s", d.name, msg)
		}
	}
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}
