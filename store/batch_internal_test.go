package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"gorm.io/gorm"
)

type inlineRow struct {
	ID   int `gorm:"primaryKey"`
	Name string
}

func (inlineRow) TableName() string { return "items" }

// A write to an idle Batcher is committed by its caller: it lands even
// though no loop runs (at a low rate the hand-off to a loop cost two
// goroutine switches per write).
func TestBatcherIdleWriteCommitsInline(t *testing.T) {
	db := openTestSQLite(t)
	b := &Batcher{db: db, reqs: make(chan *batchReq, 512), slots: make(chan struct{}, batchLoops)} // no loop started
	done := make(chan error, 1)
	go func() {
		_, err := b.Write(context.Background(), Write{Rows: []any{[]inlineRow{{ID: 1, Name: "inline"}}}, Durable: true})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the write waited for a loop")
	}
	var n int64
	db.Table("items").Where("name = ?", "inline").Count(&n)
	if n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
}

// condInserts are rows that insert themselves one statement each, as
// several runs' inserts do; an item marked refuse fails (a flow changed
// since the run was read).
type condInserts []condItem

type condItem struct {
	id     int
	refuse bool
}

func (cs condInserts) InsertRows(db *gorm.DB) error {
	for _, c := range cs {
		if c.refuse {
			return errors.New("refused by the test")
		}
		if err := db.Exec("INSERT INTO items (id, name) VALUES (?, 'run')", c.id).Error; err != nil {
			return err
		}
	}
	return nil
}

// A batch of rows that insert themselves in several statements is one
// transaction: when one of them fails, none is stored, and each write
// retried alone gets its own answer. Without the transaction the first
// write's row was committed, its retry then failed on its own row, and
// its caller was told it failed while it was stored (the helper that
// probed the run's deferred insert found it).
func TestBatchOfSeveralStatementsIsOneTransaction(t *testing.T) {
	db := openTestSQLite(t)
	b := &Batcher{db: db, reqs: make(chan *batchReq, 512), slots: make(chan struct{}, batchLoops)}
	ok := &batchReq{w: Write{Rows: []any{condInserts{{id: 1}}}, Durable: true}, done: make(chan result, 1)}
	refused := &batchReq{w: Write{Rows: []any{condInserts{{id: 2, refuse: true}}}, Durable: true}, done: make(chan result, 1)}
	res := b.apply(context.Background(), []*batchReq{ok, refused})
	var n int64
	db.Table("items").Where("id = 1").Count(&n)
	if res[0].err != nil || !res[0].applied || n != 1 {
		t.Errorf("the good write: %v (applied %v), %d rows; want it stored, without error", res[0].err, res[0].applied, n)
	}
	if res[1].err == nil {
		t.Error("the refused write was not told")
	}
}
