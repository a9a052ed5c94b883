package queue

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// postgres is the driver of PostgreSQL, for any number of replicas:
// claims skip the rows other claims have locked, and the writes of many
// runs batched together are one statement each.
type postgres struct{ common }

var _ Driver = postgres{}

// notifyChannel is the channel on which the runs_due trigger (migration
// 0015) announces queued runs.
const notifyChannel = "hushflow_runs_due"

// Listen holds one connection of db's pool, LISTENing, for as long as it
// listens; the connection is then closed, never given back to the pool.
func (postgres) Listen(ctx context.Context, db *gorm.DB, wake func(), log *slog.Logger) {
	sqlDB, err := db.DB()
	if err != nil {
		log.Warn("listen for due runs", "err", err)
		return
	}
	backoff := time.Second
	for ctx.Err() == nil {
		started := time.Now()
		err := listen(ctx, sqlDB, wake)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		log.Warn("listen for due runs: lost the connection; the claim loop polls until it listens again",
			"err", err, "retry_in", backoff.String())
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func listen(ctx context.Context, sqlDB *sql.DB, wake func()) error {
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("listen: the connection is a %T, not pgx's", dc)
		}
		pc := sc.Conn()
		// The error always says the connection is bad: a LISTENing
		// connection is not given back to the pool.
		if _, err := pc.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
			return fmt.Errorf("%w: LISTEN: %v", driver.ErrBadConn, err)
		}
		// Runs queued before the LISTEN took effect.
		wake()
		for {
			if _, err := pc.WaitForNotification(ctx); err != nil {
				return fmt.Errorf("%w: %v", driver.ErrBadConn, err)
			}
			wake()
		}
	})
}

func (postgres) Claim(db *gorm.DB, owner string, n int, now, leaseUntil time.Time) ([]model.Run, error) {
	var runs []model.Run
	// Each project's picks go beyond n, for the claims of other replicas
	// that lock some of them at the same moment.
	err := db.Raw(claimSQL(postgresCTEs, postgresChoose), now, now, now, n+32, model.StatusRunning, owner, leaseUntil, now, now, n).Scan(&runs).Error
	return runs, store.Translate(err)
}

// postgresCTEs read each project's due runs with a LATERAL subquery
// over runs_ready_project (picks), and put them in the order of their
// turns, projects at random within a turn, once (order).
const postgresCTEs = `picks AS (
  SELECT y.id, ROW_NUMBER() OVER (PARTITION BY y.project_id ORDER BY y.available_at, y.id) AS turn
  FROM p CROSS JOIN LATERAL (SELECT id, project_id, available_at FROM runs WHERE project_id = p.project_id
    AND status IN ('queued', 'waiting') AND available_at <= ? ORDER BY available_at LIMIT ?) y),
o AS (SELECT ARRAY(SELECT id FROM picks ORDER BY turn, random()) AS ids)`

// postgresChoose locks the first picks in that order that no other
// claim holds (SKIP LOCKED), each read by its id; the conditions are
// checked again on a row another claim changed meanwhile. They are
// written so that no index matches them (runs_ready would, and with the
// statistics of before a burst the planner reads every due run through
// it): the runs are read by id.
const postgresChoose = `SELECT r.id FROM o, runs r WHERE r.id = ANY(o.ids)
  AND r.status NOT IN ('running', 'succeeded', 'failed', 'canceled') AND r.available_at <= ?
  ORDER BY array_position(o.ids, r.id) LIMIT ? FOR UPDATE OF r SKIP LOCKED`

// Ended reads the row FOR SHARE, which waits for a transaction that
// updated it (the one ending the run) to commit, and then reads the
// committed row.
func (postgres) Ended(db *gorm.DB, id string) (bool, error) {
	var status []string
	err := db.Raw(`SELECT status FROM runs WHERE id = ? FOR SHARE`, id).Scan(&status).Error
	return len(status) == 1 && (&model.Run{Status: status[0]}).Finished(), store.Translate(err)
}

// ExtendLeases locks the rows of the runs owner holds, skipping those
// another transaction has locked, and extends the leases of those it
// locked; the skipped ones it reads as they were last committed. The
// heartbeat's UPDATE used to wait for such a row: a batch that held one
// run's row (a checkpoint's FOR SHARE) and went on to finish another run,
// whose row the UPDATE had locked first, deadlocked with it, and
// PostgreSQL aborted one of the two ("extend run leases: deadlock
// detected"). A statement that waits for no row cannot be part of a
// deadlock.
func (postgres) ExtendLeases(db *gorm.DB, owner string, ids []string, until time.Time) ([]string, bool, error) {
	var rows []struct {
		ID       string
		Extended bool
	}
	err := db.Raw(`WITH mine AS (
  SELECT id FROM runs WHERE id IN ? AND status = ? AND lease_owner = ? FOR NO KEY UPDATE SKIP LOCKED
), extended AS (
  UPDATE runs SET lease_expires_at = ? FROM mine WHERE runs.id = mine.id RETURNING runs.id
)
SELECT id, true AS extended FROM extended
UNION ALL
SELECT id, false FROM runs WHERE id IN ? AND status = ? AND lease_owner = ? AND id NOT IN (SELECT id FROM mine)`,
		ids, model.StatusRunning, owner, until, ids, model.StatusRunning, owner).Scan(&rows).Error
	if err != nil {
		return nil, false, store.Translate(err)
	}
	held, renewed := make([]string, 0, len(rows)), true
	for _, r := range rows {
		held = append(held, r.ID)
		renewed = renewed && r.Extended
	}
	return held, renewed, nil
}

// Rescue skips the runs another transaction has locked, as ExtendLeases
// does: a batch writing such a run holds its row, and a rescue that
// waited for it while holding another run's row that the batch goes on to
// write deadlocked with it. A skipped run is rescued by the next pass if
// its lease is still expired then.
func (postgres) Rescue(db *gorm.DB, now time.Time) ([]string, error) {
	return rescue(db, now, "id IN (SELECT id FROM runs WHERE status = ? AND lease_expires_at < ? FOR NO KEY UPDATE SKIP LOCKED)")
}

// Hold checks the holds and stores the checkpoints of those that apply in
// one statement: the holds are joined to their leased runs, whose rows are
// locked FOR SHARE until the commit (so that the rescuer cannot take a run
// between the check and the write), and the checkpoints of the holds that
// matched are inserted. Leases are extended by the heartbeat, not here: an
// UPDATE per write would cost a row version and index entries.
func (postgres) Hold(tx *gorm.DB, holds []Hold) ([]bool, error) {
	var hv, cv strings.Builder
	var args, cargs []any
	for i, h := range holds {
		if i > 0 {
			hv.WriteString(", ")
		}
		hv.WriteString("(?::int, ?, ?, ?::bigint)")
		args = append(args, i, h.RunID, h.Owner, h.Attempt)
		for _, cp := range h.Checkpoints {
			if cv.Len() > 0 {
				cv.WriteString(", ")
			}
			cv.WriteString("(?::int, ?, ?, ?, ?, ?::bytea, ?::timestamptz)")
			cargs = append(cargs, i, cp.RunID, cp.Block, cp.State, cp.Detail, cp.Output, cp.CreatedAt)
		}
	}
	q := `WITH v(i, run_id, owner, attempt) AS (VALUES ` + hv.String() + `),
held AS (SELECT v.i FROM v JOIN runs r ON r.id = v.run_id AND r.status = ? AND r.lease_owner = v.owner AND r.attempt = v.attempt
  FOR SHARE OF r)`
	args = append(args, model.StatusRunning)
	if cv.Len() > 0 {
		q += `,
c(i, run_id, block, state, detail, output, created_at) AS (VALUES ` + cv.String() + `),
ins AS (INSERT INTO run_checkpoints (run_id, block, state, detail, output, created_at)
  SELECT c.run_id, c.block, c.state, c.detail, c.output, c.created_at FROM c JOIN held ON held.i = c.i
  ON CONFLICT (run_id, block) DO UPDATE SET state = excluded.state, detail = excluded.detail, output = excluded.output,
    created_at = excluded.created_at)`
		args = append(args, cargs...)
	}
	evs := make([][]model.Event, len(holds))
	for i, h := range holds {
		evs[i] = h.Events
	}
	ctes, args, inline := eventsCTEs(evs, "JOIN held ON held.i = e.k", args)
	q += ctes
	q += `
SELECT i FROM held`
	matched, err := column[int](tx, q, args...)
	if err != nil {
		return nil, err
	}
	ok := make([]bool, len(holds))
	for _, i := range matched {
		ok[i] = true
	}
	if !inline {
		if err := insertEvents(tx, applied(evs, ok)); err != nil {
			return nil, err
		}
	}
	return ok, nil
}

// pgInlineEvents is the most events a Hold or a Finish on PostgreSQL
// inserts in its own statement (7 parameters each); beyond it they are
// inserted by statements of their own after it, in the same transaction.
const pgInlineEvents = 1000

// eventsCTEs is the CTEs that insert events[k], the events of hold or
// outcome k, for those that applied (join: how e joins the CTE of those),
// with their arguments appended to args. When they are more than one
// statement takes (pgInlineEvents) it is empty and inline false: the
// caller inserts the events of those that applied after the statement.
func eventsCTEs(events [][]model.Event, join string, args []any) (ctes string, _ []any, inline bool) {
	n := 0
	for _, evs := range events {
		n += len(evs)
	}
	if n > pgInlineEvents {
		return "", args, false
	}
	if n == 0 {
		return "", args, true
	}
	var sb strings.Builder
	for k, evs := range events {
		for _, e := range evs {
			if sb.Len() > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?::int, ?::int, ?, ?::bigint, ?::timestamptz, ?, ?, ?)")
			args = append(args, k, len(args), e.RunID, e.Seq, e.At, e.Type, e.Block, e.Data)
		}
	}
	return `,
e(k, n, run_id, seq, at, type, block, data) AS (VALUES ` + sb.String() + `),
ev AS (INSERT INTO events (run_id, seq, at, type, block, data)
  SELECT e.run_id, e.seq, e.at, e.type, e.block, e.data FROM e ` + join + ` ORDER BY e.n)`, args, true
}

// applied is the events of the holds or outcomes that applied (ok).
func applied(events [][]model.Event, ok []bool) []model.Event {
	var out []model.Event
	for k, evs := range events {
		if ok[k] {
			out = append(out, evs...)
		}
	}
	return out
}

// Single: a Hold is one statement while its events are inlined; a Finish
// while its outcomes fit one statement (1,000, and their events inlined)
// and none has a parent to settle.
func (postgres) Single(items []any) bool {
	n := 0
	for _, it := range items {
		switch v := it.(type) {
		case Hold:
			n += len(v.Events)
		case Outcome:
			if v.Parent != "" {
				return false
			}
			n += len(v.Events)
		default:
			return false
		}
	}
	return n <= pgInlineEvents && len(items) <= 1000
}

// Finish is one statement per 1,000 outcomes: an UPDATE ... FROM
// (VALUES ...) of the runs still leased to the outcome's claim, and the
// DELETE of their checkpoints in the same statement (one round trip).
func (postgres) Finish(tx *gorm.DB, os []Outcome) ([]bool, error) {
	ok := make([]bool, len(os))
	at := map[string]int{}
	for start := 0; start < len(os); start += 1000 {
		chunk := os[start:min(start+1000, len(os))]
		var sb strings.Builder
		args := make([]any, 0, 9*len(chunk)+1)
		sb.WriteString(`WITH upd AS (UPDATE runs AS r SET status = v.status, output = v.output, error = v.error,
  finished_at = v.finished_at::timestamptz, lease_expires_at = NULL, input = v.input,
  input_sealed = v.input_sealed
FROM (VALUES `)
		for i, o := range chunk {
			at[o.RunID] = start + i
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?::bigint, ?, ?, ?, ?, ?, ?::bytea)")
			args = append(args, o.RunID, o.Owner, o.Attempt, o.Status, o.Output, o.Error, o.Finished.Format(time.RFC3339Nano), o.Input, o.InputSealed)
		}
		sb.WriteString(`) AS v(id, owner, attempt, status, output, error, finished_at, input, input_sealed)
WHERE r.id = v.id AND r.status = ? AND r.lease_owner = v.owner AND r.attempt = v.attempt
RETURNING r.id),
del AS (DELETE FROM run_checkpoints WHERE run_id IN (SELECT id FROM upd))`)
		args = append(args, model.StatusRunning)
		evs := make([][]model.Event, len(chunk))
		for i, o := range chunk {
			evs[i] = o.Events
		}
		ctes, args, inline := eventsCTEs(evs, "JOIN upd ON upd.id = e.run_id", args)
		sb.WriteString(ctes)
		sb.WriteString(`
SELECT id FROM upd`)
		ids, err := column[string](tx, sb.String(), args...)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			ok[at[id]] = true
		}
		if !inline {
			if err := insertEvents(tx, applied(evs, ok[start:start+len(chunk)])); err != nil {
				return nil, err
			}
		}
	}
	return ok, settleParents(tx, os, ok)
}
