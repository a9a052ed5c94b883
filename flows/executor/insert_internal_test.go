package executor

import (
	"context"
	"errors"
	"testing"

	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
)

// notes are rows a test's pendingInsert stores (a store.RowsInserter).
type notes []string

func (ns notes) InsertRows(db *gorm.DB) error {
	for _, n := range ns {
		if n == "refuse" {
			return errors.New("refused by the test")
		}
		if err := db.Exec("INSERT INTO notes (v) VALUES (?)", n).Error; err != nil {
			return err
		}
	}
	return nil
}

// Whoever queued a run does not wait on for a first commit that does not
// come (a first block that evaluates for long, a run that never gets
// there): after insertWait it has the row stored alone, and hears how
// that went; the run's own flush then finds it stored.
func TestWaiterStoresTheRunItself(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteConfig(t), nil)
	if err := db.Exec("CREATE TABLE notes (v TEXT NOT NULL)").Error; err != nil {
		t.Fatal(err)
	}
	b := store.NewBatcher(db)
	defer b.Close()

	stored := false
	p := newPendingInsert(notes{"run 1"}, b)
	p.stored = func() { stored = true }
	if err := p.wait(); err != nil { // no run commits: the waiter does
		t.Fatal(err)
	}
	var n int64
	db.Raw("SELECT COUNT(*) FROM notes WHERE v = 'run 1'").Scan(&n)
	if n != 1 || !stored {
		t.Fatalf("after the wait: %d rows, stored %v; want the row, stored", n, stored)
	}
	x := &execution{insert: p}
	if err := x.flushInsert(context.Background()); err != nil || x.notStored() {
		t.Fatalf("the run's own flush after the waiter's: %v, not stored %v", err, x.notStored())
	}
	db.Raw("SELECT COUNT(*) FROM notes WHERE v = 'run 1'").Scan(&n)
	if n != 1 {
		t.Fatalf("%d rows after both flushes, want 1", n)
	}

	// An insert that fails is final: the waiter has the error, the run
	// is not stored, and its writes match errNotStored.
	p = newPendingInsert(notes{"refuse"}, b)
	if err := p.wait(); err == nil {
		t.Fatal("the waiter did not hear of the failed insert")
	}
	x = &execution{insert: p}
	if err := x.flushInsert(context.Background()); !errors.Is(err, errNotStored) || !x.notStored() {
		t.Fatalf("the run's flush after a failed insert: %v, not stored %v; want errNotStored", err, x.notStored())
	}
}
