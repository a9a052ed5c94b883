package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// BatchRest is the pause between two batches of DeleteInBatches: writes
// committing beside a long delete get SQLite's one write lock between
// its batches (waiting writers retry on a backoff, and the delete would
// otherwise keep taking it first).
const BatchRest = 50 * time.Millisecond

// DeleteInBatches runs the DELETE q, whose last parameter is the LIMIT
// of the rows it picks, with args and then batch, until a run deletes
// fewer than batch rows, pausing BatchRest between two runs; it returns
// how many rows it deleted. Each run is a transaction of its own, short
// enough that writes beside it wait a few milliseconds at most.
func DeleteInBatches(ctx context.Context, db *gorm.DB, batch int, q string, args ...any) (int, error) {
	total := 0
	for {
		if total > 0 {
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case <-time.After(BatchRest):
			}
		}
		res := db.WithContext(ctx).Exec(q, append(args, batch)...)
		if res.Error != nil {
			return total, Translate(res.Error)
		}
		total += int(res.RowsAffected)
		if res.RowsAffected < int64(batch) {
			return total, nil
		}
	}
}
