// Package queue is the database side of the run queue: claiming due runs,
// leases and their renewal, rescuing the runs of workers that stopped,
// checkpoints, and recording how a claim ended. A Driver implements it
// for one database; New picks the driver of a store.DB. Every driver passes
// the contract suite of package queuetest.
//
// A run is one row of the runs table, which is also its queue entry: it is
// claimable while queued or waiting and due (available_at <= now), leased
// to one worker's claim while running (lease_owner, lease_expires_at and
// attempt, which counts the claims), and ends in one of succeeded, failed
// or canceled. Every write of a claimed run applies only while the run is
// still leased to that claim (owner and attempt), so a worker that lost its
// run never writes to it again.
package queue

import (
	"context"
	"log/slog"
	"time"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Driver is the queue on one database. Every method takes the *gorm.DB to
// run on (the database with a context, or a transaction) and returns
// errors passed through store.Translate. Methods are safe for concurrent
// use.
type Driver interface {
	// Claim leases up to n runs that are due at now (queued, or waiting
	// with their wait over), those available longest first, to owner
	// until leaseUntil, and returns them with their attempt counted.
	// Concurrent claims, of this or another process, never return the
	// same run.
	Claim(db *gorm.DB, owner string, n int, now, leaseUntil time.Time) ([]model.Run, error)
	// ExtendLeases extends to until the leases that owner holds on runs
	// among ids, and returns the ids it still holds. It never waits for
	// a run's row that another transaction has locked (a batch writing
	// the run): that lease stays as it was, is counted as held, and
	// renewed is false, so that the caller tries again soon. (Waiting
	// for it could deadlock with a batch that locked one run's row and
	// goes on to write another's, which the extension locked first.)
	ExtendLeases(db *gorm.DB, owner string, ids []string, until time.Time) (held []string, renewed bool, err error)
	// CancelRequested returns the runs among ids whose cancel was asked,
	// with the reason of each (who asked).
	CancelRequested(db *gorm.DB, ids []string) (map[string]string, error)
	// Rescue queues again the running runs whose lease expired before
	// now (their worker stopped renewing it), counting an interruption,
	// and returns their ids. Like ExtendLeases it waits for no run's row
	// that a batch is writing: that run is left to the next pass.
	Rescue(db *gorm.DB, now time.Time) ([]string, error)
	// Cancel asks run id to stop: it marks the request, which a worker
	// sees whatever it does next, then cancels the run at once if no
	// worker has it (queued or waiting), deleting its checkpoints. done
	// says whether it canceled it.
	Cancel(db *gorm.DB, id, reason string, now time.Time) (done bool, err error)
	// Hold reports, for each hold, whether its run is still leased to
	// the hold's claim, and stores the checkpoints of those that are. It
	// runs inside a write's transaction and keeps the runs from being
	// rescued until that commits.
	Hold(tx *gorm.DB, holds []Hold) ([]bool, error)
	// Transit changes the status of runs still leased to the claim
	// (suspend: waiting; release: queued), releasing the lease and
	// storing their checkpoints. A run whose cancel was asked is queued
	// at once instead, to be canceled when claimed.
	Transit(tx *gorm.DB, ts []Transition) ([]bool, error)
	// Finish records the outcomes of runs still leased to the claim and
	// deletes their checkpoints.
	Finish(tx *gorm.DB, os []Outcome) ([]bool, error)
	// Single reports whether Hold, given items (all Holds), or Finish,
	// given items (all Outcomes), runs them as one statement: one that
	// commits atomically on its own, needing no transaction around it
	// (store.Merge.Single).
	Single(items []any) bool
	// Ended reports whether run id has ended. A transaction that is
	// ending it is waited for, never read around: a run whose suspension
	// to wait for run id just committed, and which finds id open here,
	// can count on the wake of id's end (Wake, in the transaction that
	// ends id, then finds it waiting). A plain read on PostgreSQL could
	// see id open while that transaction, whose Wake ran before the
	// suspension committed, commits: the waiting run would then sleep
	// until its wait timed out.
	Ended(db *gorm.DB, id string) (bool, error)
	// Checkpoints returns the checkpoints of run id.
	Checkpoints(db *gorm.DB, id string) ([]model.Checkpoint, error)
	// LastSeq returns the highest event number of run id (1, the
	// run_queued event that is the run row itself, when it has none).
	LastSeq(db *gorm.DB, id string) (int, error)
	// Stats returns the number of runs due at now that no worker has, and
	// since when the oldest of them has been due (zero when none).
	Stats(db *gorm.DB, now time.Time) (depth int, oldest time.Time, err error)
	// Listen calls wake whenever a run became queued, through any
	// process (on PostgreSQL a trigger announces it: migration 0015),
	// until ctx is done; also once it listens again after losing its
	// connection (it retries, backing off up to 30s; the claim loop's
	// poll finds runs meanwhile). It returns at once on SQLite, where one
	// process queues and claims every run.
	Listen(ctx context.Context, db *gorm.DB, wake func(), log *slog.Logger)
}

// Hold is one write of a claimed run: it applies only while the run is
// leased to the claim (owner, attempt); Checkpoints and Events are stored
// with it, and only when it applies.
type Hold struct {
	RunID       string
	Owner       string
	Attempt     int
	Checkpoints []model.Checkpoint
	Events      []model.Event
}

// RowCount is the number of rows h stores (for the Batcher's bound on a
// batch).
func (h Hold) RowCount() int { return len(h.Checkpoints) + len(h.Events) }

// Transition is a change of a claimed run's status by its worker: to
// waiting until AvailableAt (a durable wait), or to queued (released; a
// zero AvailableAt keeps its place in the queue). Resumed counts an
// interruption, with Reason; Planned counts it as a drain too (its
// worker shut down).
type Transition struct {
	Hold
	Status      string
	AvailableAt time.Time
	Reason      string
	Resumed     bool
	Planned     bool
}

// Outcome is how a claimed run ended, as recorded in its row. Input is the
// run's input as it is kept at rest (redacted); InputSealed, when the
// redaction changed it, the real input sealed for reruns (nil otherwise).
type Outcome struct {
	RunID, Owner, Status, Output, Error, Input string
	InputSealed                                []byte
	Attempt                                    int
	Finished                                   time.Time
	// Parent is the run whose flow block started this one (a sub-flow):
	// it is woken from its wait, and given ParentCheckpoint (the child's
	// output, sealed) while it is open.
	Parent           string
	ParentCheckpoint *model.Checkpoint
	// Events are the run's last events, stored with the outcome when it
	// applies.
	Events []model.Event
}

// RowCount is the number of rows o stores (for the Batcher's bound on a
// batch).
func (o Outcome) RowCount() int { return 1 + len(o.Events) }

// settleParents gives the parents of the applied outcomes their child's
// checkpoint (only to a parent that is still open: an ended run keeps no
// checkpoint) and wakes those waiting.
func settleParents(tx *gorm.DB, os []Outcome, ok []bool) error {
	for i, o := range os {
		if !ok[i] || o.Parent == "" {
			continue
		}
		if cp := o.ParentCheckpoint; cp != nil {
			err := tx.Exec(`INSERT INTO run_checkpoints (run_id, block, state, detail, output, created_at)
SELECT ?, ?, ?, '', ?, ? WHERE EXISTS (SELECT 1 FROM runs WHERE id = ? AND status IN ('queued', 'running', 'waiting'))`,
				cp.RunID, cp.Block, cp.State, cp.Output, cp.CreatedAt, o.Parent).Error
			if err != nil {
				return err
			}
		}
		if err := Wake(tx, o.Parent, o.Finished); err != nil {
			return err
		}
	}
	return nil
}

// Wake makes run id, when it is waiting, claimable at now (a wait ended
// early: the run it waited for ended). It runs in the transaction that
// ends the awaited run; a run not yet waiting (its suspension still in
// its worker's transaction) wakes itself when Driver.Ended, after that
// suspension, finds the awaited run ended.
func Wake(tx *gorm.DB, id string, now time.Time) error {
	return tx.Model(&model.Run{}).Where("id = ? AND status = ?", id, model.StatusWaiting).Update("available_at", now).Error
}

// New returns the driver of db's dialect.
func New(db *store.DB) Driver {
	if db.Dialect == store.Postgres {
		return postgres{}
	}
	return sqlite{}
}

// common holds what both drivers do alike.
type common struct{}

func (common) CancelRequested(db *gorm.DB, ids []string) (map[string]string, error) {
	var rows []struct{ ID, CancelReason string }
	err := db.Model(&model.Run{}).Select("id", "cancel_reason").Where("id IN ? AND cancel_req = ?", ids, true).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return nil, store.Translate(err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.ID] = r.CancelReason
	}
	return out, nil
}

// rescue queues again the runs that where (with its arguments after
// now) picks among the running runs whose lease expired before now.
func rescue(db *gorm.DB, now time.Time, where string) ([]string, error) {
	var ids []string
	err := db.Raw(`UPDATE runs SET status = ?, available_at = queued_at, resumes = resumes + 1,
  resume_reason = 'the lease of worker ' || COALESCE(lease_owner, '') || ' expired (it stopped, was killed or lost the database)',
  lease_owner = NULL, lease_expires_at = NULL
WHERE `+where+` RETURNING id`, model.StatusQueued, model.StatusRunning, now).Scan(&ids).Error
	return ids, store.Translate(err)
}

func (common) Cancel(db *gorm.DB, id, reason string, now time.Time) (bool, error) {
	// First the request, which a worker sees whatever it does next (a
	// running run that goes on to wait or to be released is queued at
	// once, and canceled when claimed); then the run itself if no worker
	// has it. In this order no status change between the two statements
	// loses the cancel.
	if err := db.Model(&model.Run{}).Where("id = ? AND status IN ?", id, model.OpenStatuses).
		Updates(map[string]any{"cancel_req": true, // the first ask's reason stays
			"cancel_reason": gorm.Expr("CASE WHEN cancel_req THEN cancel_reason ELSE ? END", reason)}).Error; err != nil {
		return false, store.Translate(err)
	}
	res := db.Model(&model.Run{}).Where("id = ? AND status IN ?", id, []string{model.StatusQueued, model.StatusWaiting}).
		Updates(map[string]any{"status": model.StatusCanceled, "finished_at": now, "error": gorm.Expr("cancel_reason")})
	if res.Error != nil || res.RowsAffected == 0 {
		return false, store.Translate(res.Error)
	}
	return true, store.Translate(deleteCheckpoints(db, []string{id}))
}

func (common) Transit(tx *gorm.DB, ts []Transition) ([]bool, error) {
	ok := make([]bool, len(ts))
	for i, t := range ts {
		set := map[string]any{"status": gorm.Expr("CASE WHEN cancel_req THEN ? ELSE ? END", model.StatusQueued, t.Status),
			"lease_owner": nil, "lease_expires_at": nil}
		if t.AvailableAt.IsZero() {
			set["available_at"] = gorm.Expr("queued_at")
		} else {
			set["available_at"] = gorm.Expr("CASE WHEN cancel_req THEN queued_at ELSE ? END", t.AvailableAt)
		}
		if t.Resumed {
			set["resumes"] = gorm.Expr("resumes + 1")
			set["resume_reason"] = t.Reason
			if t.Planned {
				set["drains"] = gorm.Expr("drains + 1")
			}
		}
		res := tx.Model(&model.Run{}).Where("id = ? AND status = ? AND lease_owner = ? AND attempt = ?",
			t.RunID, model.StatusRunning, t.Owner, t.Attempt).Updates(set)
		if res.Error != nil {
			return nil, res.Error
		}
		if ok[i] = res.RowsAffected == 1; ok[i] {
			if err := upsertCheckpoints(tx, t.Checkpoints); err != nil {
				return nil, err
			}
			if err := insertEvents(tx, t.Events); err != nil {
				return nil, err
			}
		}
	}
	return ok, nil
}

func (common) Checkpoints(db *gorm.DB, id string) ([]model.Checkpoint, error) {
	var cps []model.Checkpoint
	return cps, store.Translate(db.Where("run_id = ?", id).Find(&cps).Error)
}

func (common) LastSeq(db *gorm.DB, id string) (int, error) {
	var n *int
	if err := db.Model(&model.Event{}).Where("run_id = ?", id).Select("MAX(seq)").Scan(&n).Error; err != nil {
		return 0, store.Translate(err)
	}
	if n == nil || *n < 1 {
		return 1, nil // seq 1 is run_queued, the run row itself
	}
	return *n, nil
}

func (common) Stats(db *gorm.DB, now time.Time) (int, time.Time, error) {
	var depth int
	var first any // SQLite returns MIN() of a time column as text
	// The status literals match the partial index runs_ready.
	row := db.Raw(`SELECT COUNT(*), MIN(available_at) FROM runs
WHERE status IN ('queued', 'waiting') AND available_at <= ?`, now).Row()
	if err := row.Scan(&depth, &first); err != nil {
		return 0, time.Time{}, store.Translate(err)
	}
	var oldest time.Time
	switch v := first.(type) {
	case time.Time:
		oldest = v
	case string:
		oldest = parseTime(v)
	case []byte:
		oldest = parseTime(string(v))
	}
	return depth, oldest, nil
}

// parseTime reads a time as SQLite stores it.
func parseTime(s string) time.Time {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// upsertCheckpoints stores cps, replacing those of the same run and block.
func upsertCheckpoints(tx *gorm.DB, cps []model.Checkpoint) error {
	if len(cps) == 0 {
		return nil
	}
	_, err := store.Exec(tx, store.Values(`INSERT INTO run_checkpoints (run_id, block, state, detail, output, created_at) VALUES `, len(cps), 6,
		"\n"+checkpointConflict), checkpointArgs(tx, cps, 0)...)
	return err
}

// checkpointConflict makes an insert of checkpoints replace a block's
// earlier one.
const checkpointConflict = `ON CONFLICT (run_id, block) DO UPDATE SET state = excluded.state, detail = excluded.detail, output = excluded.output,
  created_at = excluded.created_at`

// checkpointArgs are the values of cps's rows in an insert of them,
// with room for extra values after them.
func checkpointArgs(tx *gorm.DB, cps []model.Checkpoint, extra int) []any {
	args := make([]any, 0, 6*len(cps)+extra)
	for _, cp := range cps {
		if cp.CreatedAt.IsZero() {
			cp.CreatedAt = tx.NowFunc()
		}
		args = append(args, cp.RunID, cp.Block, cp.State, cp.Detail, cp.Output, cp.CreatedAt)
	}
	return args
}

// column runs q and returns its one column. The hot statements read
// their few results this way, through store.Query, rather than with
// gorm's Raw and Scan: Scan builds the statement's text with every value
// written in for its trace, logged or not (3.6% of a run's CPU on
// PostgreSQL, whose checkpoint and outcome carry a run's events as
// values), and Raw builds the statement again value by value
// (docs/performance.md, "seventh round").
func column[T any](tx *gorm.DB, q string, args ...any) ([]T, error) {
	rows, err := store.Query(tx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// insertEvents stores events, 500 rows to an INSERT. The hot writes of
// the queue are statements written out, not built by gorm from the
// models: at a low rate a run's writes are each alone in their commit,
// and gorm's building of them cost as much as SQLite's execution.
func insertEvents(tx *gorm.DB, evs []model.Event) error {
	for start := 0; start < len(evs); start += 500 {
		chunk := evs[start:min(start+500, len(evs))]
		args := make([]any, 0, 6*len(chunk))
		for _, e := range chunk {
			args = append(args, e.RunID, e.Seq, e.At, e.Type, e.Block, e.Data)
		}
		if _, err := store.Exec(tx, store.Values(`INSERT INTO events (run_id, seq, at, type, block, data) VALUES `, len(chunk), 6, ""), args...); err != nil {
			return err
		}
	}
	return nil
}

// deleteCheckpoints forgets the checkpoints of runs that ended.
func deleteCheckpoints(tx *gorm.DB, runIDs []string) error {
	if len(runIDs) == 0 {
		return nil
	}
	args := make([]any, len(runIDs))
	for i, id := range runIDs {
		args[i] = id
	}
	_, err := store.Exec(tx, store.Values(`DELETE FROM run_checkpoints WHERE run_id IN `, 1, len(runIDs), ""), args...)
	return err
}
