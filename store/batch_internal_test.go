package store

import (
	"context"
	"testing"
	"time"
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
