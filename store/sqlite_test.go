package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
)

// sqliteTimeLayout is how the SQLite driver has always written a time
// parameter (UTC, trailing zeros of the fraction cut): times are text in
// SQLite, so the queue's `available_at <= ?` and `lease_expires_at < ?`,
// schedule_ticks' primary key and every other comparison compare strings.
// A driver that wrote another layout would compare wrongly against the
// times already in users' databases.
const sqliteTimeLayout = "2006-01-02 15:04:05.999999999-07:00"

// Issue 17: what the code relies on from the SQLite driver, checked on the
// driver itself so that a change of driver or version shows here first:
// the text layout of times written and read, RETURNING, partial indexes,
// ON CONFLICT ... DO UPDATE, and the errors that Translate, IsUnavailable
// and IsRetryable classify.
func TestSQLiteDriver(t *testing.T) {
	ctx := context.Background()
	cfg := storetest.SQLiteConfig(t)
	db := storetest.Open(t, cfg, nil)
	for _, q := range []string{
		"CREATE TABLE parent (id text PRIMARY KEY)",
		"CREATE TABLE item (id text PRIMARY KEY, parent text REFERENCES parent(id), state text NOT NULL, at datetime NOT NULL, n integer NOT NULL DEFAULT 0)",
		"CREATE INDEX item_ready ON item (at) WHERE state IN ('queued', 'waiting')",
		"INSERT INTO parent (id) VALUES ('p')",
	} {
		if err := db.Exec(q).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	t.Run("time layout", func(t *testing.T) {
		at := time.Date(2026, 12, 1, 10, 0, 0, 500_000_000, time.UTC)
		if err := db.Exec("INSERT INTO item (id, state, at) VALUES ('a', 'queued', ?)", at).Error; err != nil {
			t.Fatal(err)
		}
		var typ, text string // at || '': the stored text, not the driver's reading of it
		if err := db.Raw("SELECT typeof(at), at || '' FROM item WHERE id = 'a'").Row().Scan(&typ, &text); err != nil {
			t.Fatal(err)
		}
		if want := at.Format(sqliteTimeLayout); typ != "text" || text != want {
			t.Errorf("a time parameter is stored as %s %q, want text %q", typ, text, want)
		}
		// A row as an older release wrote it, with a whole second, compares
		// with parameters in time order and reads back as a time.
		if err := db.Exec("INSERT INTO item (id, state, at) VALUES ('old', 'queued', '2026-12-01 10:00:00+00:00')").Error; err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			now  time.Time
			want []string
		}{
			{time.Date(2026, 12, 1, 9, 59, 59, 999_999_999, time.UTC), nil},
			{time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), []string{"old"}},
			{time.Date(2026, 12, 1, 10, 0, 0, 1, time.UTC), []string{"old"}},
			{time.Date(2026, 12, 1, 10, 0, 0, 500_000_000, time.UTC), []string{"old", "a"}},
		} {
			var ids []string
			if err := db.Raw("SELECT id FROM item WHERE state IN ('queued', 'waiting') AND at <= ? ORDER BY at", c.now).Scan(&ids).Error; err != nil {
				t.Fatal(err)
			}
			if strings.Join(ids, ",") != strings.Join(c.want, ",") {
				t.Errorf("at <= %s: %v, want %v", c.now.Format(time.RFC3339Nano), ids, c.want)
			}
		}
		var got struct{ At time.Time }
		if err := db.Raw("SELECT at FROM item WHERE id = 'old'").Scan(&got).Error; err != nil {
			t.Fatal(err)
		}
		if !got.At.Equal(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("an older row reads back as %v", got.At)
		}
	})

	t.Run("partial index", func(t *testing.T) {
		var plan []struct{ Detail string }
		if err := db.Raw("EXPLAIN QUERY PLAN SELECT id FROM item WHERE state IN ('queued', 'waiting') AND at <= ? ORDER BY at",
			time.Now().UTC()).Scan(&plan).Error; err != nil {
			t.Fatal(err)
		}
		if len(plan) == 0 || !strings.Contains(plan[0].Detail, "item_ready") {
			t.Errorf("the claim query does not use the partial index: %+v", plan)
		}
	})

	t.Run("returning and upsert", func(t *testing.T) {
		var ids []string
		if err := db.Raw("UPDATE item SET n = n + 1 WHERE state = 'queued' RETURNING id").Scan(&ids).Error; err != nil || len(ids) != 2 {
			t.Fatalf("UPDATE ... RETURNING: %v %v", ids, err)
		}
		for range 2 {
			if err := db.Exec("INSERT INTO item (id, state, at) VALUES ('a', 'waiting', ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, n = item.n + 1",
				time.Now().UTC()).Error; err != nil {
				t.Fatal(err)
			}
		}
		var n int
		if err := db.Raw("SELECT n FROM item WHERE id = 'a' AND state = 'waiting'").Scan(&n).Error; err != nil || n != 3 {
			t.Errorf("ON CONFLICT DO UPDATE: n = %d, %v; want 3", n, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		dup := db.Exec("INSERT INTO item (id, state, at) VALUES ('a', 'queued', ?)", time.Now().UTC()).Error
		t.Logf("duplicate key: %v", dup)
		if err := store.Translate(dup); !errors.Is(err, store.ErrConflict) || store.IsUnavailable(dup) ||
			!strings.Contains(err.Error(), "item.id") {
			t.Errorf("duplicate key: %v -> %v", dup, err)
		}
		// Statements the database refused are not outages: not retried, not 503.
		for _, q := range []string{
			"INSERT INTO item (id, parent, state, at) VALUES ('orphan', 'nope', 'queued', '')", // foreign key
			"INSERT INTO item (id, at) VALUES ('x', '')",                                       // NOT NULL
			"SELEC 1",
		} {
			err := db.Exec(q).Error
			t.Logf("%s: %v", q, err)
			if err == nil || store.IsUnavailable(err) || store.IsRetryable(err) || errors.Is(store.Translate(err), store.ErrConflict) {
				t.Errorf("%s: %v (unavailable %v, retryable %v)", q, err, store.IsUnavailable(err), store.IsRetryable(err))
			}
		}

		// A writer that waits past its busy timeout: unavailable and retryable.
		other, err := store.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		tx := db.Begin() // _txlock=immediate: BEGIN takes the write lock
		if tx.Error != nil {
			t.Fatal(tx.Error)
		}
		defer tx.Rollback()
		sqlDB, err := other.DB.DB()
		if err != nil {
			t.Fatal(err)
		}
		conn, err := sqlDB.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 50"); err != nil {
			t.Fatal(err)
		}
		_, busy := conn.ExecContext(ctx, "INSERT INTO parent (id) VALUES ('q')")
		t.Logf("busy: %v", busy)
		if busy == nil || !store.IsUnavailable(busy) || !store.IsRetryable(busy) || !errors.Is(store.Translate(busy), store.ErrUnavailable) {
			t.Errorf("a write past the busy timeout: %v (unavailable %v, retryable %v)", busy, store.IsUnavailable(busy), store.IsRetryable(busy))
		}
		tx.Rollback()

		// A full disk (here: the file may not grow past its size): the
		// write is refused whole and goes through once there is room, so
		// it is an outage (503, runs wait and resume), not a failure.
		if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 5000"); err != nil {
			t.Fatal(err)
		}
		var pages int
		if err := conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
			t.Fatal(err)
		}
		_, full := conn.ExecContext(ctx, "INSERT INTO parent (id) SELECT hex(randomblob(2000)) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 200) SELECT x FROM c)")
		t.Logf("full: %v", full)
		if full == nil || !store.IsUnavailable(full) || !errors.Is(store.Translate(full), store.ErrUnavailable) {
			t.Errorf("a write to a full database: %v (unavailable %v)", full, store.IsUnavailable(full))
		}
	})
}
