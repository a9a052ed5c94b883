package queue

import (
	"context"
	"log/slog"
	"time"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// sqlite is the driver of the embedded database. SQLite has one writer at
// a time and Hushflow's transactions take the write lock at their start
// (_txlock=immediate), which gives the exclusivity that row locks give on
// PostgreSQL: a claim, a hold and a rescue never interleave.
type sqlite struct{ common }

var _ Driver = sqlite{}

func (sqlite) Listen(context.Context, *gorm.DB, func(), *slog.Logger) {}

func (sqlite) Claim(db *gorm.DB, owner string, n int, now, leaseUntil time.Time) ([]model.Run, error) {
	var runs []model.Run
	err := db.Raw(claimSQL(""), model.StatusRunning, owner, leaseUntil, now, now, n).Scan(&runs).Error
	return runs, store.Translate(err)
}

// Ended reads the row: SQLite's writers take turns (BEGIN IMMEDIATE), so
// a run's suspension cannot commit while a transaction ending another
// run is open, and a plain read after it sees that end committed.
func (sqlite) Ended(db *gorm.DB, id string) (bool, error) {
	var status []string
	err := db.Raw(`SELECT status FROM runs WHERE id = ?`, id).Scan(&status).Error
	return len(status) == 1 && (&model.Run{Status: status[0]}).Finished(), store.Translate(err)
}

func (sqlite) Hold(tx *gorm.DB, holds []Hold) ([]bool, error) {
	ok := make([]bool, len(holds))
	var cps []model.Checkpoint
	for i, h := range holds {
		var n int64
		err := tx.Model(&model.Run{}).Where("id = ? AND status = ? AND lease_owner = ? AND attempt = ?",
			h.RunID, model.StatusRunning, h.Owner, h.Attempt).Count(&n).Error
		if err != nil {
			return nil, err
		}
		if ok[i] = n == 1; ok[i] {
			cps = append(cps, h.Checkpoints...)
		}
	}
	return ok, upsertCheckpoints(tx, cps)
}

func (sqlite) Finish(tx *gorm.DB, os []Outcome) ([]bool, error) {
	ok := make([]bool, len(os))
	var done []string
	for i, o := range os {
		res := tx.Model(&model.Run{}).Where("id = ? AND status = ? AND lease_owner = ? AND attempt = ?",
			o.RunID, model.StatusRunning, o.Owner, o.Attempt).
			Updates(map[string]any{"status": o.Status, "output": o.Output, "error": o.Error, "finished_at": o.Finished,
				"lease_expires_at": nil, "input": o.Input, "input_sealed": o.InputSealed})
		if res.Error != nil {
			return nil, res.Error
		}
		if ok[i] = res.RowsAffected == 1; ok[i] {
			done = append(done, o.RunID)
		}
	}
	if err := deleteCheckpoints(tx, done); err != nil {
		return nil, err
	}
	return ok, settleParents(tx, os, ok)
}

// claimSQL is the claim statement, with lock appended to its subquery.
// The status literals match the partial index runs_ready.
func claimSQL(lock string) string {
	return `UPDATE runs SET status = ?, lease_owner = ?, lease_expires_at = ?, started_at = COALESCE(started_at, ?),
  attempt = attempt + 1
WHERE id IN (SELECT id FROM runs WHERE status IN ('queued', 'waiting') AND available_at <= ?
  ORDER BY available_at LIMIT ?` + lock + `)
RETURNING *`
}
