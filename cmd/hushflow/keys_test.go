package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store/storetest"
)

func TestMain(m *testing.M) { apptest.Main(m) }

func TestServeRefusesPostgresWithoutKey(t *testing.T) {
	if os.Getenv(storetest.EnvURL) == "" {
		t.Skipf("%s not set", storetest.EnvURL)
	}
	dbc := storetest.PostgresConfig(t)
	_, err := app.New(context.Background(), app.Config{DatabaseURL: dbc.DatabaseURL, DataDir: dbc.DataDir, LogOutput: &apptest.SyncBuffer{},
		SandboxPath: os.Args[0], SandboxWorkers: 1})
	if !errors.Is(err, secrets.ErrNoMasterKey) || !strings.HasPrefix(err.Error(), "HUSHFLOW_MASTER_KEY is required with PostgreSQL: ") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dbc.DataDir, secrets.KeyFileName)); err == nil {
		t.Fatal("a key file was generated for PostgreSQL")
	}
}

func TestServeGeneratesKeyFileForSQLite(t *testing.T) {
	apptest.SkipShort(t)
	dbc := storetest.SQLiteConfig(t)
	s := apptest.Start(t, dbc)
	st, err := os.Stat(filepath.Join(dbc.DataDir, secrets.KeyFileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
	if !strings.Contains(s.Logs.String(), "generated a master key file") {
		t.Errorf("generation not logged: %s", s.Logs.String())
	}
}

// A wrong master key does not stop the server: the start logs a warning
// and the first use fails with an error naming the secret and the key id.
func TestServeStartsWithWrongKeyAndFailsAtFirstUse(t *testing.T) {
	apptest.SkipShort(t)
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			dbc := b.Config(t)
			withKey := func(k string) func(*app.Config) { return func(c *app.Config) { c.MasterKey = k } }
			s := apptest.Start(t, dbc, withKey("k1:"+secrets.NewKey()))
			s.Do("POST", "/api/v1/projects", map[string]string{"name": "billing"})
			if r := s.Do("POST", "/api/v1/secrets", map[string]any{"name": "API_TOKEN", "value": "wrong-key-value-123456",
				"project": "billing", "environment": "production"}); r.Status != 201 {
				t.Fatalf("create: %d %s", r.Status, r.Body)
			}
			wrong := apptest.Start(t, dbc, withKey("k1:"+secrets.NewKey()))
			if r := wrong.Do("GET", "/readyz", nil); r.Status != 200 {
				t.Fatalf("server with a wrong key is not ready: %d", r.Status)
			}
			if !strings.Contains(wrong.Logs.String(), "does not open the stored data keys") {
				t.Errorf("no warning at start: %s", wrong.Logs.String())
			}
			// Listing still works: metadata needs no key.
			if r := wrong.Do("GET", "/api/v1/secrets?project=billing&environment=production", nil); r.Status != 200 {
				t.Errorf("list: %d", r.Status)
			}
			_, _, err := wrong.App.Secrets.Resolve(context.Background(), secrets.Access{Project: "billing", Environment: "production", Name: "API_TOKEN"})
			want := `secret "API_TOKEN" (project billing, environment production) version 1 cannot be decrypted: wrong master key or tampered data (key id k1)`
			if err == nil || err.Error() != want {
				t.Fatalf("first use: %v\nwant %s", err, want)
			}
			if strings.Contains(wrong.Logs.String(), "wrong-key-value") {
				t.Fatal("log leaks the value")
			}
		})
	}
}
