package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
)

type note struct {
	ID   uint   `gorm:"primaryKey"`
	Text string `gorm:"uniqueIndex;size:64"`
}

type tally struct {
	ID    uint `gorm:"primaryKey"`
	Count int
}

var batchMigrations = []store.Migration{
	{ID: "0001_batch", Up: func(tx *gorm.DB) error { return tx.Migrator().CreateTable(&note{}, &tally{}) }},
}

// Concurrent writes of two models, with merged updates, all land; a write
// whose merged item does not apply drops only its own rows.
func TestBatcherConcurrentWrites(t *testing.T) {
	storetest.Each(t, batchMigrations, func(t *testing.T, db *store.DB) {
		if err := db.Create(&tally{ID: 1}).Error; err != nil {
			t.Fatal(err)
		}
		b := store.NewBatcher(db)
		defer b.Close()
		ctx := context.Background()
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				keep := i%10 != 0
				applied, err := b.Write(ctx, store.Write{
					Merge: &store.Merge{Key: "count", Item: keep, Apply: func(tx *gorm.DB, items []any) ([]bool, error) {
						ok := make([]bool, len(items))
						n := 0
						for i, it := range items {
							ok[i] = it.(bool)
							if ok[i] {
								n++
							}
						}
						return ok, tx.Model(&tally{}).Where("id = 1").Update("count", gorm.Expr("count + ?", n)).Error
					}},
					Rows:    []any{[]note{{Text: fmt.Sprintf("n%d-a", i)}, {Text: fmt.Sprintf("n%d-b", i)}}, []tally{{ID: uint(1000 + i)}}},
					Durable: i%2 == 0,
				})
				if err != nil {
					errs <- err
				} else if applied != keep {
					errs <- fmt.Errorf("write %d: applied %v, want %v", i, applied, keep)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		var notes, tallies int64
		db.Model(&note{}).Count(&notes)
		db.Model(&tally{}).Where("id >= 1000").Count(&tallies)
		var tl tally
		db.First(&tl, 1)
		if notes != 360 || tallies != 180 || tl.Count != 180 {
			t.Fatalf("notes %d (want 360), tallies %d (want 180), count %d (want 180)", notes, tallies, tl.Count)
		}
	})
}

// A write that fails (a duplicate key) fails alone: the writes batched
// with it are retried on their own and land.
func TestBatcherIsolatesAFailingWrite(t *testing.T) {
	storetest.Each(t, batchMigrations, func(t *testing.T, db *store.DB) {
		if err := db.Create(&note{Text: "taken"}).Error; err != nil {
			t.Fatal(err)
		}
		b := store.NewBatcher(db)
		defer b.Close()
		ctx := context.Background()
		var wg sync.WaitGroup
		var mu sync.Mutex
		failed := map[int]error{}
		for round := range 20 {
			for i := range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					text := fmt.Sprintf("r%d-%d", round, i)
					if i == 3 {
						text = "taken"
					}
					if _, err := b.Write(ctx, store.Write{Rows: []any{[]note{{Text: text}}}}); err != nil {
						mu.Lock()
						failed[round*10+i] = err
						mu.Unlock()
					}
				}()
			}
		}
		wg.Wait()
		if len(failed) != 20 {
			t.Fatalf("%d writes failed, want the 20 duplicates: %v", len(failed), failed)
		}
		for k, err := range failed {
			if k%10 != 3 || !errors.Is(err, store.ErrConflict) {
				t.Fatalf("write %d failed with %v", k, err)
			}
		}
		var n int64
		db.Model(&note{}).Count(&n)
		if n != 1+180 {
			t.Fatalf("%d notes, want 181", n)
		}
	})
}

// After Close, writes still land, each in its own transaction.
func TestBatcherWriteAfterClose(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteConfig(t), batchMigrations)
	b := store.NewBatcher(db)
	b.Close()
	b.Close()
	if _, err := b.Write(context.Background(), store.Write{Rows: []any{[]note{{Text: "late"}}}}); err != nil {
		t.Fatal(err)
	}
	var n int64
	db.Model(&note{}).Count(&n)
	if n != 1 {
		t.Fatalf("%d notes, want 1", n)
	}
	if _, err := b.Write(context.Background(), store.Write{Rows: []any{note{Text: "x"}}}); err == nil {
		t.Fatal("rows that are not a slice: want an error")
	}
}

// A durable write whose merge is one statement (Merge.Single) commits as
// that statement alone, outside a transaction; one with rows, one that
// is not durable, or one whose merge is not single runs in a transaction.
// Either way a failing statement leaves nothing behind.
func TestBatcherSingleStatement(t *testing.T) {
	storetest.Each(t, batchMigrations, func(t *testing.T, db *store.DB) {
		if err := db.Create(&tally{ID: 1}).Error; err != nil {
			t.Fatal(err)
		}
		b := store.NewBatcher(db)
		defer b.Close()
		var inTx bool
		bump := func(tx *gorm.DB, items []any) ([]bool, error) {
			_, inTx = tx.Statement.ConnPool.(*sql.Conn)
			ok := make([]bool, len(items))
			for i := range ok {
				ok[i] = true
			}
			return ok, tx.Model(&tally{}).Where("id = 1").Update("count", gorm.Expr("count + ?", len(items))).Error
		}
		single := func(items []any) bool { return items[0] != "several statements" }
		for _, c := range []struct {
			name   string
			item   any
			rows   []any
			dur    bool
			wantTx bool
		}{
			{"single and durable", "one statement", nil, true, false},
			{"not durable", "one statement", nil, false, true},
			{"with rows", "one statement", []any{[]note{{Text: "with rows"}}}, true, true},
			{"not single", "several statements", nil, true, true},
		} {
			inTx = !c.wantTx
			applied, err := b.Write(context.Background(), store.Write{
				Merge: &store.Merge{Key: "bump", Item: c.item, Apply: bump, Single: single}, Rows: c.rows, Durable: c.dur})
			if err != nil || !applied {
				t.Fatalf("%s: applied %v, %v", c.name, applied, err)
			}
			if inTx != c.wantTx {
				t.Errorf("%s: in a transaction %v, want %v", c.name, inTx, c.wantTx)
			}
		}
		var tl tally
		db.First(&tl, 1)
		if tl.Count != 4 {
			t.Fatalf("count %d, want 4", tl.Count)
		}
		// A single statement that fails fails its write.
		_, err := b.Write(context.Background(), store.Write{Durable: true, Merge: &store.Merge{Key: "bad", Item: 1, Single: single,
			Apply: func(tx *gorm.DB, items []any) ([]bool, error) {
				return []bool{true}, tx.Exec("UPDATE no_such_table SET x = 1").Error
			}}})
		if err == nil {
			t.Fatal("a failing single statement succeeded")
		}
	})
}

// errRefused is the error of a leadNotes whose condition does not hold.
var errRefused = errors.New("refused by the test")

// statementsApart counts the InsertRows calls of leadNotes and
// followNotes: the statements they insert with apart from each other.
var statementsApart atomic.Int64

// leadNotes is one note inserted unless refuse (a condition of its own
// that does not hold, as a run's flow that changed): a
// store.LeadInserter.
type leadNotes []leadNote

type leadNote struct {
	text   string
	refuse bool
}

func (ls leadNotes) OneStatement() bool { return len(ls) == 1 }

func (ls leadNotes) InsertRows(db *gorm.DB) error {
	statementsApart.Add(1)
	for _, l := range ls {
		if l.refuse {
			return errRefused
		}
		if err := db.Exec("INSERT INTO notes (text) VALUES (?)", l.text).Error; err != nil {
			return err
		}
	}
	return nil
}

func (ls leadNotes) LeadStatement() (string, []any, error) {
	return "INSERT INTO notes (text) SELECT ? WHERE ?", []any{ls[0].text, !ls[0].refuse}, errRefused
}

// followNotes are notes a store.FollowInserter inserts.
type followNotes []string

func (fs followNotes) OneStatement() bool { return true }

func (fs followNotes) InsertRows(db *gorm.DB) error {
	statementsApart.Add(1)
	for _, f := range fs {
		if err := db.Exec("INSERT INTO notes (text) VALUES (?)", f).Error; err != nil {
			return err
		}
	}
	return nil
}

func (fs followNotes) FollowStatement(cond string) (string, []any) {
	q := "INSERT INTO notes (text) SELECT * FROM (VALUES "
	args := make([]any, len(fs))
	for i, f := range fs {
		if i > 0 {
			q += ", "
		}
		q += "(?)"
		args[i] = f
	}
	return q + ") AS v WHERE " + cond, args
}

// On PostgreSQL a write whose rows are a lead insert and the rows that
// follow it is one statement (neither inserts itself apart), all or
// nothing: both inserted by one transaction (their xmin); a lead whose
// condition does not hold stores nothing and fails with its own error; a
// follower that fails leaves the lead unstored.
func TestLeadAndFollowersAreOneStatement(t *testing.T) {
	storetest.Each(t, batchMigrations, func(t *testing.T, db *store.DB) {
		if db.Dialect != store.Postgres {
			t.Skip("PostgreSQL only: SQLite commits them in one transaction")
		}
		b := store.NewBatcher(db)
		defer b.Close()
		ctx := context.Background()
		write := func(lead leadNote, follow ...string) error {
			_, err := b.Write(ctx, store.Write{Rows: []any{leadNotes{lead}, followNotes(follow)}, Durable: true})
			return err
		}
		count := func(texts ...string) (n int64) {
			db.Raw("SELECT COUNT(*) FROM notes WHERE text IN ?", texts).Scan(&n)
			return n
		}

		if err := write(leadNote{text: "run"}, "load", "read"); err != nil {
			t.Fatal(err)
		}
		var xmins int64
		db.Raw("SELECT COUNT(DISTINCT xmin::text) FROM notes WHERE text IN ?", []string{"run", "load", "read"}).Scan(&xmins)
		if n := count("run", "load", "read"); n != 3 || xmins != 1 {
			t.Errorf("%d of the 3 rows stored, by %d transactions; want 3 by 1", n, xmins)
		}

		if err := write(leadNote{text: "refused", refuse: true}, "load2"); !errors.Is(err, errRefused) {
			t.Errorf("a lead whose condition does not hold: %v, want its own error", err)
		}
		if n := count("refused", "load2"); n != 0 {
			t.Errorf("a lead whose condition does not hold: %d rows stored, want none", n)
		}

		if err := write(leadNote{text: "run3"}, "load3", "read"); err == nil {
			t.Error("a follower that failed (a duplicate): no error")
		}
		if n := count("run3", "load3"); n != 0 {
			t.Errorf("a follower that failed: %d rows stored, want none", n)
		}
		if n := statementsApart.Load(); n != 0 {
			t.Errorf("the rows were inserted by %d statements apart, want one statement each write", n)
		}
	})
}
