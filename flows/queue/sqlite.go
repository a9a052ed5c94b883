package queue

import (
	"context"
	"database/sql"
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

func (sqlite) Rescue(db *gorm.DB, now time.Time) ([]string, error) {
	return rescue(db, now, "status = ? AND lease_expires_at < ?")
}

// ExtendLeases is one UPDATE: with one writer at a time there are no row
// locks to wait for, only the write lock, which it waits for as every
// write does.
func (sqlite) ExtendLeases(db *gorm.DB, owner string, ids []string, until time.Time) ([]string, bool, error) {
	var held []string
	err := db.Raw(`UPDATE runs SET lease_expires_at = ? WHERE id IN ? AND status = ? AND lease_owner = ? RETURNING id`,
		until, ids, model.StatusRunning, owner).Scan(&held).Error
	return held, err == nil, store.Translate(err)
}

func (sqlite) Claim(db *gorm.DB, owner string, n int, now, leaseUntil time.Time) ([]model.Run, error) {
	var runs []model.Run
	// With the runs due of one project only (most of the time), there are
	// no turns to take: its oldest due runs, without the picks.
	var lo, hi sql.NullString
	if err := db.Raw(`SELECT (SELECT MIN(project_id) FROM runs WHERE status IN ('queued', 'waiting') AND available_at <= ?),
  (SELECT MAX(project_id) FROM runs WHERE status IN ('queued', 'waiting') AND available_at <= ?)`, now, now).Row().Scan(&lo, &hi); err != nil {
		return nil, store.Translate(err)
	}
	if !lo.Valid {
		return nil, nil // nothing due
	}
	var err error
	if lo.String == hi.String {
		err = db.Raw(oneProjectClaim, model.StatusRunning, owner, leaseUntil, now, now, n).Scan(&runs).Error
	} else {
		err = db.Raw(claimSQL("picks AS ("+sqlitePicks+")", sqliteChoose), now, now, now, n, model.StatusRunning, owner, leaseUntil, now, now, n).Scan(&runs).Error
	}
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
	if len(holds) == 1 && len(holds[0].Checkpoints) > 0 {
		// One hold with checkpoints (a block that ended, at a low rate):
		// their upsert checks the lease itself, one statement less.
		h := holds[0]
		applied, err := upsertCheckpointsIfHeld(tx, h)
		if err != nil || !applied {
			return []bool{false}, err
		}
		return []bool{true}, insertEvents(tx, h.Events)
	}
	ok := make([]bool, len(holds))
	var cps []model.Checkpoint
	var evs []model.Event
	for i, h := range holds {
		n, err := column[int](tx, `SELECT 1 FROM runs WHERE id = ? AND status = ? AND lease_owner = ? AND attempt = ?`,
			h.RunID, model.StatusRunning, h.Owner, h.Attempt)
		if err != nil {
			return nil, err
		}
		if ok[i] = len(n) == 1; ok[i] {
			cps = append(cps, h.Checkpoints...)
			evs = append(evs, h.Events...)
		}
	}
	if err := upsertCheckpoints(tx, cps); err != nil {
		return nil, err
	}
	return ok, insertEvents(tx, evs)
}

// upsertCheckpointsIfHeld stores h's checkpoints while h's run is still
// leased to its claim, in one statement, and reports whether it was.
func upsertCheckpointsIfHeld(tx *gorm.DB, h Hold) (bool, error) {
	args := append(checkpointArgs(tx, h.Checkpoints, 4), h.RunID, model.StatusRunning, h.Owner, h.Attempt)
	res, err := store.Exec(tx, store.Values(`INSERT INTO run_checkpoints (run_id, block, state, detail, output, created_at)
SELECT * FROM (VALUES `, len(h.Checkpoints), 6, `)
WHERE EXISTS (SELECT 1 FROM runs WHERE id = ? AND status = ? AND lease_owner = ? AND attempt = ?)
`+checkpointConflict), args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Single is false: SQLite's Hold and Finish take several statements.
func (sqlite) Single([]any) bool { return false }

func (sqlite) Finish(tx *gorm.DB, os []Outcome) ([]bool, error) {
	ok := make([]bool, len(os))
	var done []string
	var evs []model.Event
	for i, o := range os {
		res, err := store.Exec(tx, `UPDATE runs SET status = ?, output = ?, error = ?, finished_at = ?, lease_expires_at = NULL, input = ?,
  input_sealed = ?
WHERE id = ? AND status = ? AND lease_owner = ? AND attempt = ?`,
			o.Status, o.Output, o.Error, o.Finished, o.Input, o.InputSealed, o.RunID, model.StatusRunning, o.Owner, o.Attempt)
		if err != nil {
			return nil, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, err
		}
		if ok[i] = n == 1; ok[i] {
			done = append(done, o.RunID)
			evs = append(evs, o.Events...)
		}
	}
	if err := deleteCheckpoints(tx, done); err != nil {
		return nil, err
	}
	if err := insertEvents(tx, evs); err != nil {
		return nil, err
	}
	return ok, settleParents(tx, os, ok)
}

// Projects take turns at the claim. The projects with runs due are
// found in the index runs_ready_project, one index probe each, which
// passes over the entries of runs not due yet (readyProjects: a project
// whose runs all sleep until tomorrow costs a claim one index entry per
// run, not a probe); each one's n longest due runs are read from the
// same index and numbered 1, 2, 3... in their project (its turns). The
// claim takes the lowest turns, projects in a random order at each turn:
// within a project the longest due run goes first, and a project that
// queued 10,000 runs at once does not make another's run wait for them
// (each freed slot goes to one of the projects with due runs, alike).
// The status literals match the partial indexes runs_ready_project and
// runs_ready.
const readyProjects = `WITH RECURSIVE p(project_id) AS (
  SELECT (SELECT MIN(project_id) FROM runs WHERE status IN ('queued', 'waiting') AND available_at <= ?)
  UNION ALL
  SELECT (SELECT MIN(x.project_id) FROM runs x WHERE x.status IN ('queued', 'waiting') AND x.available_at <= ?
    AND x.project_id > p.project_id)
  FROM p WHERE p.project_id IS NOT NULL)`

// claimSQL is the claim statement: ctes name each project's due runs
// with their turns (picks), choose selects the runs to claim from them.
func claimSQL(ctes, choose string) string {
	return readyProjects + `,
` + ctes + `
UPDATE runs SET status = ?, lease_owner = ?, lease_expires_at = ?, started_at = COALESCE(started_at, ?),
  attempt = attempt + 1
WHERE id IN (` + choose + `)
RETURNING *`
}

// oneProjectClaim is the claim when one project has runs queued or
// waiting: its longest due.
const oneProjectClaim = `UPDATE runs SET status = ?, lease_owner = ?, lease_expires_at = ?, started_at = COALESCE(started_at, ?),
  attempt = attempt + 1
WHERE id IN (SELECT id FROM runs WHERE status IN ('queued', 'waiting') AND available_at <= ?
  ORDER BY available_at LIMIT ?)
RETURNING *`

// sqlitePicks reads each project's due runs with a correlated IN list,
// which SQLite evaluates once per project through runs_ready_project.
const sqlitePicks = `SELECT r.id, ROW_NUMBER() OVER (PARTITION BY r.project_id ORDER BY r.available_at, r.id) AS turn
  FROM p JOIN runs r ON r.id IN (SELECT y.id FROM runs y WHERE y.project_id = p.project_id
    AND y.status IN ('queued', 'waiting') AND y.available_at <= ? ORDER BY y.available_at LIMIT ?)
  WHERE p.project_id IS NOT NULL`

// sqliteChoose takes the lowest turns; CROSS JOIN makes SQLite read the
// picks first and each run by its id (it would otherwise read every due
// run through runs_ready and match them to the picks).
const sqliteChoose = `SELECT r.id FROM picks f CROSS JOIN runs r ON r.id = f.id
  WHERE r.status IN ('queued', 'waiting') AND r.available_at <= ?
  ORDER BY f.turn, random() LIMIT ?`
