package flows

import (
	"context"

	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// eventWriter stores the events of many runs in shared transactions: a
// flush waits while an earlier one is being written, and then all the
// flushes that queued up meanwhile go to the database together. Under load
// this turns one commit per block into one commit per batch, without
// adding latency when the server is idle.
type eventWriter struct {
	db   *store.DB
	reqs chan writeReq
}

type writeReq struct {
	rows []Event
	done chan error
}

// maxBatchRows bounds one shared insert.
const maxBatchRows = 2000

func newEventWriter(db *store.DB) *eventWriter {
	return &eventWriter{db: db, reqs: make(chan writeReq, 256)}
}

// run writes batches until ctx is done and no request is pending.
func (w *eventWriter) run(ctx context.Context) {
	for {
		var first writeReq
		select {
		case first = <-w.reqs:
		case <-ctx.Done():
			return
		}
		batch := []writeReq{first}
		n := len(first.rows)
	drain:
		for n < maxBatchRows {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
				n += len(r.rows)
			default:
				break drain
			}
		}
		rows := make([]Event, 0, n)
		for _, r := range batch {
			rows = append(rows, r.rows...)
		}
		err := w.insert(context.WithoutCancel(ctx), rows)
		for _, r := range batch {
			r.done <- err
		}
	}
}

// write stores rows; it returns when they are committed.
func (w *eventWriter) write(ctx context.Context, rows []Event) error {
	r := writeReq{rows: rows, done: make(chan error, 1)}
	select {
	case w.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-r.done
}

// insert stores rows in one transaction. On PostgreSQL it does not wait
// for the commit to reach the disk (synchronous_commit off, for this
// transaction only): a crash of the database server may lose the last
// fraction of a second of events, never make them inconsistent; a crash of
// Hushflow loses nothing that was written.
func (w *eventWriter) insert(ctx context.Context, rows []Event) error {
	return w.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if w.db.Dialect == store.Postgres {
			if err := tx.Exec("SET LOCAL synchronous_commit = off").Error; err != nil {
				return err
			}
		}
		return tx.CreateInBatches(rows, 500).Error
	})
}
