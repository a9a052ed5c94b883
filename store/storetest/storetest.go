// Package storetest gives tests real databases: a fresh SQLite file and,
// when HUSHFLOW_TEST_DATABASE_URL is set, a fresh PostgreSQL database,
// created for the test and dropped after it. There is no in-memory fake:
// code that keeps data is tested on the two databases users run.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/store"
	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding an administrative PostgreSQL URL; the
// test command (make test) sets it. Tests create and drop databases
// through it.
const EnvURL = "HUSHFLOW_TEST_DATABASE_URL"

// Backend is one database a test runs against.
type Backend struct {
	Name string // "sqlite" or "postgres"
	// Open returns a fresh, empty database config (URL or data dir) for
	// this test; the database is removed when the test ends.
	Config func(t testing.TB) store.Config
}

// Backends lists SQLite, and PostgreSQL when EnvURL is set. In CI
// (CI=true) a missing EnvURL fails the test instead of skipping
// PostgreSQL.
func Backends(t testing.TB) []Backend {
	bs := []Backend{{Name: "sqlite", Config: SQLiteConfig}}
	if os.Getenv(EnvURL) != "" {
		bs = append(bs, Backend{Name: "postgres", Config: PostgresConfig})
	} else if os.Getenv("CI") != "" {
		t.Fatalf("%s is not set: run the tests with `make test`", EnvURL)
	}
	return bs
}

// Each runs f as a subtest on every backend with a migrated, empty database.
func Each(t *testing.T, migrations []store.Migration, f func(t *testing.T, db *store.DB)) {
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			f(t, Open(t, b.Config(t), migrations))
		})
	}
}

// Open opens cfg, applies migrations and closes the database at cleanup.
func Open(t testing.TB, cfg store.Config, migrations []store.Migration) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx, migrations); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
}

// SQLiteConfig is a fresh data dir in t.TempDir().
func SQLiteConfig(t testing.TB) store.Config {
	return store.Config{DataDir: t.TempDir()}
}

// PostgresConfig creates a fresh database named hf_test_<random> and drops
// it when the test ends.
func PostgresConfig(t testing.TB) store.Config {
	t.Helper()
	admin := os.Getenv(EnvURL)
	if admin == "" {
		t.Skipf("%s not set", EnvURL)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "hf_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to %s: %v", store.DescribeURL(admin), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return store.Config{DatabaseURL: u.String(), DataDir: t.TempDir()}
}

// WALFrames is how many pages f writes to an SQLite database's
// write-ahead log: the pages its commits change, each written once per
// commit that changes it. The log is emptied first; f must write fewer
// than the automatic checkpoint's 1,000 frames, which would start the
// log over.
func WALFrames(t testing.TB, db *store.DB, f func()) int {
	t.Helper()
	if db.Dialect != store.SQLite {
		t.Fatalf("WALFrames: %s has no SQLite write-ahead log", db.Dialect)
	}
	checkpoint := func(mode string) (frames int) {
		t.Helper()
		var busy, log, done int
		if err := db.Raw("PRAGMA wal_checkpoint("+mode+")").Row().Scan(&busy, &log, &done); err != nil {
			t.Fatalf("wal_checkpoint(%s): %v", mode, err)
		}
		if busy != 0 {
			t.Fatalf("wal_checkpoint(%s): busy", mode)
		}
		return log
	}
	if n := checkpoint("TRUNCATE"); n != 0 {
		t.Fatalf("the write-ahead log still holds %d frames after a TRUNCATE checkpoint", n)
	}
	f()
	n := checkpoint("PASSIVE")
	if n >= 1000 {
		t.Fatalf("f wrote %d frames: the automatic checkpoint may have started the log over; write less", n)
	}
	return n
}

// WALCommits is how many transactions f commits to db, a SQLite database
// (its write-ahead log's commit frames). Nothing else may write to db
// meanwhile.
func WALCommits(t testing.TB, db *store.DB, f func()) int {
	t.Helper()
	commits := 0
	WALFrames(t, db, func() {
		f()
		data, err := os.ReadFile(db.Location + "-wal")
		if err != nil {
			t.Fatalf("WALCommits: %v", err)
		}
		if len(data) < 32 {
			return
		}
		// A 32-byte header, then frames: a 24-byte header (page number,
		// and the database size after the commit in a commit frame, 0 in
		// others; then the salts of this log) and a page.
		frame := 24 + int(binary.BigEndian.Uint32(data[8:12]))
		salt := data[16:24]
		for off := 32; off+frame <= len(data); off += frame {
			if !bytes.Equal(data[off+8:off+16], salt) {
				break // a frame of an earlier log, before the truncation
			}
			if binary.BigEndian.Uint32(data[off+4:off+8]) != 0 {
				commits++
			}
		}
	})
	return commits
}

// SQLitePlan is SQLite's plan for query with args (EXPLAIN QUERY PLAN),
// its steps joined with "; ": "SEARCH runs USING INDEX runs_lease
// (lease_expires_at<?)", for a test to look for the index it should read.
func SQLitePlan(t testing.TB, db *store.DB, query string, args ...any) string {
	t.Helper()
	var plan []struct {
		ID, Parent, Notused int
		Detail              string
	}
	if err := db.Raw("EXPLAIN QUERY PLAN "+query, args...).Scan(&plan).Error; err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", query, err)
	}
	steps := make([]string, len(plan))
	for i, p := range plan {
		steps[i] = p.Detail
	}
	return strings.Join(steps, "; ")
}
