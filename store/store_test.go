package store_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
)

type widget struct {
	ID   uint   `gorm:"primaryKey"`
	Name string `gorm:"uniqueIndex;size:64"`
}

var widgetMigrations = []store.Migration{
	{ID: "0001_widgets", Up: func(tx *gorm.DB) error { return tx.Migrator().CreateTable(&widget{}) }},
}

func TestMigrateIsIdempotentAndTranslatesErrors(t *testing.T) {
	storetest.Each(t, widgetMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, widgetMigrations); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		var n int64
		db.Table("schema_migrations").Count(&n)
		if n != 1 {
			t.Fatalf("schema_migrations rows = %d, want 1", n)
		}
		if err := db.Create(&widget{Name: "a"}).Error; err != nil {
			t.Fatal(err)
		}
		err := store.Translate(db.Create(&widget{Name: "a"}).Error)
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate insert: got %v, want ErrConflict", err)
		}
		var w widget
		err = store.Translate(db.Where("name = ?", "missing").First(&w).Error)
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing row: got %v, want ErrNotFound", err)
		}
		if err := db.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
	})
}

func TestMigrateRejectsDuplicateIDs(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteConfig(t), nil)
	err := db.Migrate(context.Background(), append(widgetMigrations, widgetMigrations...))
	if err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("got %v, want duplicate id error", err)
	}
}

func TestUnreachablePostgresNamesHostNotPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := store.Open(ctx, store.Config{DatabaseURL: "postgres://alice:s3cretPassw0rd@127.0.0.1:1/billing?sslmode=disable&connect_timeout=2"})
	if err == nil {
		t.Fatal("open succeeded on a closed port")
	}
	msg := err.Error()
	if !strings.Contains(msg, "127.0.0.1:1/billing") {
		t.Errorf("error %q does not name the host", msg)
	}
	if strings.Contains(msg, "s3cretPassw0rd") || strings.Contains(msg, "alice") {
		t.Errorf("error %q leaks credentials", msg)
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error %q is not one line", msg)
	}
}

func TestDescribeURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:p@db.example:5432/hf":             "db.example:5432/hf",
		"host=db port=5433 dbname=hf user=u password=p": "db:5433/hf",
	} {
		if got := store.DescribeURL(in); got != want {
			t.Errorf("DescribeURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSQLiteFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(context.Background(), store.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fi, err := os.Stat(filepath.Join(dir, "hushflow.db"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database file: %v %v", fi.Mode(), err)
	}
}

func TestConflictAndNotFoundWording(t *testing.T) {
	err := store.Conflict("flow", "billing-sync", `project "billing"`, "PUT it to save a new version")
	if !errors.Is(err, store.ErrConflict) || err.Error() != `flow "billing-sync" already exists in project "billing"; PUT it to save a new version` {
		t.Fatalf("conflict: %v", err)
	}
	if err := store.Conflict("project", "shop", "", ""); err.Error() != `project "shop" already exists` {
		t.Fatalf("conflict: %v", err)
	}
	if err := store.NotFound("run", "r1"); !errors.Is(err, store.ErrNotFound) || err.Error() != `run "r1" not found` {
		t.Fatalf("not found: %v", err)
	}
}

// An upgrade logs each migration it applies; a binary older than the
// database's schema (a rollback, an old replica restarted during an
// upgrade) starts, with a warning naming the migrations it does not know.
func TestMigrateLogsUpgradesAndNewerSchemas(t *testing.T) {
	var buf bytes.Buffer
	cfg := storetest.SQLiteConfig(t)
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	db := storetest.Open(t, cfg, widgetMigrations) // a new database: nothing logged
	newer := append(widgetMigrations, store.Migration{ID: "0002_gadgets", Up: func(tx *gorm.DB) error { return tx.Exec("CREATE TABLE gadgets (id TEXT)").Error }})
	if err := db.Migrate(context.Background(), newer); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(context.Background(), widgetMigrations); err != nil {
		t.Fatalf("an older list of migrations: %v", err)
	}
	logs := buf.String()
	if strings.Count(logs, "applied migration") != 1 || !strings.Contains(logs, "id=0002_gadgets") ||
		!strings.Contains(logs, "migrated by a newer Hushflow") || !strings.Contains(logs, "unknown_migrations=0002_gadgets") {
		t.Fatalf("log:\n%s", logs)
	}
}
