package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"gorm.io/gorm"
)

// openTestSQLite opens a fresh SQLite store with one connection, so that
// every statement runs on the same one.
func openTestSQLite(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := db.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	t.Cleanup(func() { sqlDB.Close() })
	if err := db.Exec("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	return db
}

// onConn runs f on the test's one connection, its statements locked.
func onConn(t *testing.T, db *DB, f func(c *stmtConn)) {
	t.Helper()
	sqlDB, _ := db.DB.DB()
	conn, err := sqlDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Raw(func(dc any) error {
		c := dc.(*stmtConn)
		c.mu.Lock()
		defer c.mu.Unlock()
		f(c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// prepared is how many statements the connection prepared so far.
func prepared(t *testing.T, db *DB) (n int) {
	t.Helper()
	onConn(t, db, func(c *stmtConn) { n = c.prepared })
	return n
}

// kept reports whether the connection keeps a prepared statement of query.
func kept(t *testing.T, db *DB, query string) (ok bool) {
	t.Helper()
	onConn(t, db, func(c *stmtConn) { _, ok = c.byQuery[query] })
	return ok
}

// keptLike is how many statements the connection keeps whose text starts
// with prefix.
func keptLike(t *testing.T, db *DB, prefix string) (n int) {
	t.Helper()
	onConn(t, db, func(c *stmtConn) {
		for q := range c.byQuery {
			if strings.HasPrefix(q, prefix) {
				n++
			}
		}
	})
	return n
}

// A statement run in one transaction after another is prepared once: the
// connection keeps it (gorm's own cache prepared it again in every
// transaction).
func TestSQLiteKeepsStatementsAcrossTransactions(t *testing.T) {
	db := openTestSQLite(t)
	insert := func(i int) {
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("INSERT INTO items (id, name) VALUES (?, ?)", i, fmt.Sprint("n", i)).Error; err != nil {
				return err
			}
			var n int64
			return tx.Raw("SELECT COUNT(*) FROM items WHERE id <= ?", i).Scan(&n).Error
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	insert(1)
	before := prepared(t, db)
	for i := 2; i <= 20; i++ {
		insert(i)
	}
	if got := prepared(t, db) - before; got != 0 {
		t.Errorf("19 more transactions of the same two statements prepared %d statements, want 0", got)
	}
	var names []string
	if err := db.Raw("SELECT name FROM items WHERE id > ? ORDER BY id", 18).Scan(&names).Error; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(names) != "[n19 n20]" {
		t.Errorf("names = %v", names)
	}
}

// A statement without parameters is kept too (the transactions' BEGIN
// IMMEDIATE and COMMIT, a count read each second), but not a script of
// several statements (run once), which still runs whole, nor a savepoint
// (gorm names each one anew).
func TestSQLiteKeepsStatementsWithoutParameters(t *testing.T) {
	db := openTestSQLite(t)
	ctx := context.Background()
	round := func(i int) {
		err := db.Tx(ctx, func(tx *gorm.DB) error {
			return tx.Exec("INSERT INTO items (id, name) VALUES (?, ?)", i, "n").Error
		})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := db.Raw("SELECT COUNT(*) FROM items").Scan(&n).Error; err != nil || n != int64(i) {
			t.Fatalf("count = %d, %v; want %d", n, err, i)
		}
	}
	round(1)
	before := prepared(t, db)
	for i := 2; i <= 10; i++ {
		round(i)
	}
	if got := prepared(t, db) - before; got != 0 {
		t.Errorf("9 more rounds of a transaction and a count prepared %d statements, want 0", got)
	}
	for _, q := range []string{"BEGIN IMMEDIATE", "COMMIT", "SELECT COUNT(*) FROM items"} {
		if !kept(t, db, q) {
			t.Errorf("the connection does not keep %q", q)
		}
	}
	script := "INSERT INTO items (id, name) VALUES (100, 'a'); INSERT INTO items (id, name) VALUES (101, 'b')"
	if err := db.Exec(script).Error; err != nil {
		t.Fatal(err)
	}
	if kept(t, db, script) {
		t.Error("the connection keeps a script")
	}
	var names []string
	if err := db.Raw("SELECT name FROM items WHERE id >= 100 ORDER BY id").Scan(&names).Error; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(names) != "[a b]" {
		t.Errorf("a script of two inserts stored %v, want [a b]", names)
	}
	for i := 200; i < 205; i++ {
		err := db.Transaction(func(tx *gorm.DB) error {
			return tx.Transaction(func(tx *gorm.DB) error {
				return tx.Exec("INSERT INTO items (id, name) VALUES (?, 'nested')", i).Error
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := keptLike(t, db, "SAVEPOINT"); n != 0 {
		t.Errorf("the connection keeps %d savepoints", n)
	}
}

// A statement asked for again while rows of it are still being read (in
// one transaction) gets a statement of its own: the rows already open are
// read to their end, unchanged.
func TestSQLiteStatementAgainWhileItsRowsAreOpen(t *testing.T) {
	db := openTestSQLite(t)
	for i := 1; i <= 5; i++ {
		if err := db.Exec("INSERT INTO items (id, name) VALUES (?, ?)", i, fmt.Sprint("n", i)).Error; err != nil {
			t.Fatal(err)
		}
	}
	const q = "SELECT id FROM items WHERE id >= ? ORDER BY id"
	err := db.Transaction(func(tx *gorm.DB) error {
		rows, err := tx.Raw(q, 1).Rows()
		if err != nil {
			return err
		}
		defer rows.Close()
		var outer []int
		for rows.Next() {
			var id int
			if err := rows.Scan(&id); err != nil {
				return err
			}
			outer = append(outer, id)
			if id == 2 {
				var inner []int
				if err := tx.Raw(q, 4).Scan(&inner).Error; err != nil {
					return err
				}
				if fmt.Sprint(inner) != "[4 5]" {
					t.Errorf("inner = %v", inner)
				}
			}
		}
		if fmt.Sprint(outer) != "[1 2 3 4 5]" {
			t.Errorf("outer = %v", outer)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	// And the kept statement is used again once its rows are closed.
	before := prepared(t, db)
	var ids []int
	if err := db.Raw(q, 3).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids) != "[3 4 5]" || prepared(t, db) != before {
		t.Errorf("ids = %v, %d statements prepared (want none)", ids, prepared(t, db)-before)
	}
}

// The statements kept per connection are bounded; those dropped are
// prepared again when asked for.
func TestSQLiteStatementsKeptAreBounded(t *testing.T) {
	db := openTestSQLite(t)
	for i := 0; i < maxConnStmts+50; i++ {
		var n int64
		// A different statement text each time.
		if err := db.Raw(fmt.Sprintf("SELECT COUNT(*) + %d FROM items WHERE id > ?", i), 0).Scan(&n).Error; err != nil {
			t.Fatal(err)
		}
		if n != int64(i) {
			t.Fatalf("statement %d gave %d", i, n)
		}
	}
	sqlDB, _ := db.DB.DB()
	conn, err := sqlDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.Raw(func(dc any) error {
		c := dc.(*stmtConn)
		if c.lru.Len() > maxConnStmts || len(c.byQuery) != c.lru.Len() {
			t.Errorf("kept %d statements (%d indexed), bound %d", c.lru.Len(), len(c.byQuery), maxConnStmts)
		}
		return nil
	})
}

// The synchronous mode applies to every connection: normal by default,
// full when asked (each commit waits for the WAL's fsync); another value
// is refused.
func TestSQLiteSyncMode(t *testing.T) {
	for _, c := range []struct {
		mode string
		want int
	}{{"", 1}, {"normal", 1}, {"full", 2}} {
		db, err := Open(context.Background(), Config{DataDir: t.TempDir(), SQLiteSync: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		sqlDB, _ := db.DB.DB()
		// Every connection of the pool, not only the first.
		var conns []*sql.Conn
		for i := 0; i < 4; i++ {
			conn, err := sqlDB.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, conn)
			var got int
			if err := conn.QueryRowContext(context.Background(), "PRAGMA synchronous").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("mode %q, connection %d: synchronous = %d, want %d", c.mode, i, got, c.want)
			}
		}
		for _, conn := range conns {
			conn.Close()
		}
		sqlDB.Close()
	}
	if _, err := Open(context.Background(), Config{DataDir: t.TempDir(), SQLiteSync: "off"}); err == nil || !strings.Contains(err.Error(), `"off": want normal or full`) {
		t.Errorf("mode off: %v", err)
	}
}
