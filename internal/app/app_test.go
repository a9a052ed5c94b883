package app_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/secrets"
)

func TestMain(m *testing.M) { apptest.Main(m) }

// A lost key file of the embedded database is not silently replaced: the
// new key could not open the stored values.
func TestLostKeyFileIsNotRegenerated(t *testing.T) {
	dir := t.TempDir()
	cfg := app.Config{DataDir: dir, LogOutput: io.Discard, SandboxPath: os.Args[0], SandboxWorkers: 1}
	ctx := context.Background()
	a, err := app.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Secrets.Create(ctx, "test", secrets.CreateInput{Name: "K", Value: secrets.NewValue("a-long-value-9c8b7a")}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	// A restart with the key file in place opens the stored value.
	a, err = app.New(ctx, cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	v, _, err := a.Secrets.Resolve(ctx, secrets.Access{Name: "K"})
	if err != nil || v.Reveal() != "a-long-value-9c8b7a" {
		t.Fatalf("resolve after restart: %v", err)
	}
	a.Close()
	if err := os.Remove(filepath.Join(dir, "master.key")); err != nil {
		t.Fatal(err)
	}
	_, err = app.New(ctx, cfg)
	if err == nil || !errors.Is(err, secrets.ErrNoMasterKey) || !strings.Contains(err.Error(), "holds 1 encrypted secret versions and its master key file "+filepath.Join(dir, "master.key")+" is missing") ||
		!strings.Contains(err.Error(), "restore the file from your backup") || strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("start without the key file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "master.key")); err == nil {
		t.Fatal("a new key file was generated")
	}
}

// The server's log masks, by value, every secret value the process has
// encrypted or decrypted, whatever the log line that carries it.
func TestServerLogMasksValuesItHandled(t *testing.T) {
	var logs apptest.SyncBuffer
	cfg := app.Config{DataDir: t.TempDir(), LogOutput: &logs, LogFormat: "json", SandboxPath: os.Args[0], SandboxWorkers: 1}
	ctx := context.Background()
	a, err := app.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	created, read := "created-value-Zq81xP0w", "stored-before-Kp27wQ9e"
	if _, _, err := a.Secrets.Create(ctx, "test", secrets.CreateInput{Name: "NEW", Value: secrets.NewValue(created)}); err != nil {
		t.Fatal(err)
	}
	a.Log.Info("a careless line", "detail", "token="+created)
	if strings.Contains(logs.String(), created) || !strings.Contains(logs.String(), "[REDACTED:NEW]") {
		t.Fatalf("log after create: %s", logs.String())
	}
	if _, _, err := a.Secrets.Create(ctx, "test", secrets.CreateInput{Name: "OLD", Value: secrets.NewValue(read)}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	// A restarted process knows a value once it has decrypted it.
	b, err := app.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, _, err := b.Secrets.Resolve(ctx, secrets.Access{Name: "OLD"}); err != nil {
		t.Fatal(err)
	}
	b.Log.Warn("another careless line: " + read)
	if strings.Contains(logs.String(), read) {
		t.Fatalf("log after a read: %s", logs.String())
	}
}
