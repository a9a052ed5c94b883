package store_test

import (
	"context"
	"errors"
	"runtime/metrics"
	"testing"

	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
)

// Tx commits what fn wrote; a failure or a panic of fn rolls it back, and
// the connection goes back to the pool out of any transaction (the next
// statements on every pooled connection commit on their own).
func TestTxCommitsAndRollsBack(t *testing.T) {
	storetest.Each(t, batchMigrations, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Tx(ctx, func(tx *gorm.DB) error {
			if err := tx.Create(&note{Text: "kept"}).Error; err != nil {
				return err
			}
			// The statements of fn see each other's writes.
			var n int64
			if err := tx.Model(&note{}).Where("text = ?", "kept").Count(&n).Error; err != nil || n != 1 {
				t.Errorf("inside the transaction: %d notes (%v), want 1", n, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		if err := db.Tx(ctx, func(tx *gorm.DB) error {
			if err := tx.Create(&note{Text: "failed"}).Error; err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatalf("Tx returned %v, want fn's error", err)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Error("fn's panic did not go through Tx")
				}
			}()
			_ = db.Tx(ctx, func(tx *gorm.DB) error {
				tx.Create(&note{Text: "panicked"})
				panic("fn")
			})
		}()
		// A duplicate fails the statement (on PostgreSQL it aborts the
		// transaction): rolled back as well.
		if err := db.Tx(ctx, func(tx *gorm.DB) error {
			if err := tx.Create(&note{Text: "partial"}).Error; err != nil {
				return err
			}
			return tx.Create(&note{Text: "kept"}).Error
		}); err == nil {
			t.Fatal("a duplicate inside Tx did not fail it")
		}
		// Every pooled connection is out of a transaction: writes through
		// each of them (held at once) are visible to a fresh read.
		sqlDB, _ := db.DB.DB()
		var conns []func()
		for i := range 4 {
			c, err := sqlDB.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, func() { c.Close() })
			if _, err := c.ExecContext(ctx, "INSERT INTO notes (text) VALUES ('after"+string(rune('0'+i))+"')"); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
		}
		for _, c := range conns {
			c()
		}
		var texts []string
		if err := db.Model(&note{}).Order("text").Pluck("text", &texts).Error; err != nil {
			t.Fatal(err)
		}
		want := []string{"after0", "after1", "after2", "after3", "kept"}
		if len(texts) != len(want) {
			t.Fatalf("notes %v, want %v", texts, want)
		}
		for i := range want {
			if texts[i] != want[i] {
				t.Fatalf("notes %v, want %v", texts, want)
			}
		}
	})
}

// Batcher commits go through Tx, which starts no goroutine: a database/sql
// Tx starts one per transaction, and one per query inside it, each a
// thread woken on an idle server (issue 21). Short does the same for
// SQLite reads under a cancellable context.
func TestTxStartsNoGoroutines(t *testing.T) {
	storetest.Each(t, batchMigrations, func(t *testing.T, db *store.DB) {
		if err := db.Create(&tally{ID: 1}).Error; err != nil {
			t.Fatal(err)
		}
		b := store.NewBatcher(db)
		defer b.Close()
		ctx := context.Background()
		bump := &store.Merge{Key: "count", Apply: func(tx *gorm.DB, items []any) ([]bool, error) {
			var n int64
			if err := tx.Model(&tally{}).Where("id = ?", 1).Count(&n).Error; err != nil {
				return nil, err
			}
			res := tx.Model(&tally{}).Where("id = ?", 1).Update("count", gorm.Expr("count + ?", len(items)))
			ok := make([]bool, len(items))
			for i := range ok {
				ok[i] = res.RowsAffected == 1 && n == 1
			}
			return ok, res.Error
		}}
		write := func(i int) {
			if _, err := b.Write(ctx, store.Write{Merge: bump, Rows: []any{[]note{{Text: "n" + string(rune('a'+i%26)) + string(rune('a'+i/26))}}}}); err != nil {
				t.Fatal(err)
			}
		}
		write(0) // the pool's connection is open
		const n = 50
		before := created()
		for i := 1; i <= n; i++ {
			write(i)
		}
		if got := created() - before; got >= n/5 {
			t.Errorf("%d goroutines started by %d batcher commits, want (about) none", got, n)
		}
		if db.Dialect != store.SQLite {
			return
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		before = created()
		for range n {
			var c tally
			if err := db.WithContext(db.Short(cctx)).Where("id = ?", 1).First(&c).Error; err != nil {
				t.Fatal(err)
			}
		}
		if got := created() - before; got >= n/5 {
			t.Errorf("%d goroutines started by %d short reads, want (about) none", got, n)
		}
	})
}

// created is how many goroutines this process has started.
func created() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// A batch that is one INSERT (durable rows of one model, no merge) is
// committed without a transaction around it, and is still all or
// nothing: a duplicate among its rows inserts none of them, and the
// write is retried alone as before.
func TestBatcherSingleInsertIsAtomic(t *testing.T) {
	storetest.Each(t, batchMigrations, func(t *testing.T, db *store.DB) {
		b := store.NewBatcher(db)
		defer b.Close()
		ctx := context.Background()
		if _, err := b.Write(ctx, store.Write{Rows: []any{[]note{{Text: "one"}, {Text: "two"}}}, Durable: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Write(ctx, store.Write{Rows: []any{[]note{{Text: "three"}, {Text: "one"}, {Text: "four"}}}, Durable: true}); err == nil {
			t.Fatal("a duplicate row did not fail its write")
		}
		var texts []string
		if err := db.Model(&note{}).Order("text").Pluck("text", &texts).Error; err != nil {
			t.Fatal(err)
		}
		if len(texts) != 2 || texts[0] != "one" || texts[1] != "two" {
			t.Fatalf("notes %v, want [one two]: the failed INSERT left rows behind", texts)
		}
	})
}

// On PostgreSQL a statement that fails aborts the transaction, and the
// server answers COMMIT with ROLLBACK: when fn swallows the statement's
// error, Tx still fails rather than report a commit that kept nothing.
func TestTxReportsACommitRolledBack(t *testing.T) {
	storetest.Each(t, batchMigrations, func(t *testing.T, db *store.DB) {
		if db.Dialect != store.Postgres {
			t.Skip("PostgreSQL only: on SQLite a failed statement does not abort its transaction")
		}
		ctx := context.Background()
		if err := db.Create(&note{Text: "taken"}).Error; err != nil {
			t.Fatal(err)
		}
		err := db.Tx(ctx, func(tx *gorm.DB) error {
			if err := tx.Create(&note{Text: "lost"}).Error; err != nil {
				return err
			}
			_ = tx.Create(&note{Text: "taken"}).Error // fails; swallowed
			return nil
		})
		if !errors.Is(err, store.ErrRolledBack) {
			t.Fatalf("Tx returned %v, want ErrRolledBack", err)
		}
		var n int64
		db.Model(&note{}).Where("text = ?", "lost").Count(&n)
		if n != 0 {
			t.Errorf("the rolled-back transaction's row is there")
		}
		// The connection went back to the pool out of any transaction.
		if err := db.Tx(ctx, func(tx *gorm.DB) error { return tx.Create(&note{Text: "after"}).Error }); err != nil {
			t.Fatal(err)
		}
	})
}
