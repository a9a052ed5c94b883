package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hushflow/hushflow/redact"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// How a claimed run ends on its worker (execute):
//
//  1. finish: it ended (succeeded, failed, canceled). The outcome, the last
//     events and the deletion of its checkpoints are one transaction.
//  2. suspend: a block asked for a durable wait. The run becomes waiting
//     until the wait's end, with its sleeping checkpoint.
//  3. release: the worker is stopping (drain grace over). The run is
//     queued again, to resume from its first unfinished block.
//  4. give up: the lease was lost, or the database stayed away for longer
//     than the lease; the rescuer of any replica queues the run again.
//
// Every write of a run applies only while the run is leased to the
// worker's claim (owner and attempt), so a worker that lost its run never
// writes to it again. Writes that fail because the database did not
// answer are retried until hard is done.

// seal encrypts a block's output for its checkpoint.
func (x *execution) seal(block string, out any) ([]byte, error) {
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("block %q: its output is not JSON: %w", block, err)
	}
	ct, err := x.s.cfg.Sealer.SealBlob(checkpointAAD(x.run.ID, block), b)
	if err != nil {
		return nil, fmt.Errorf("block %q: seal its checkpoint: %w", block, err)
	}
	return ct, nil
}

// open decrypts a checkpointed output.
func (x *execution) open(block string, sealed []byte) (any, error) {
	b, err := x.s.cfg.Sealer.OpenBlob(checkpointAAD(x.run.ID, block), sealed)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// checkpointAAD binds a sealed output to its run and block.
func checkpointAAD(runID, block string) []byte {
	return []byte("hushflow/checkpoint/v1\x00" + runID + "\x00" + block)
}

// upsertCheckpoints stores cps, replacing those of the same run and block.
func upsertCheckpoints(tx *gorm.DB, cps []Checkpoint) error {
	if len(cps) == 0 {
		return nil
	}
	return tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "run_id"}, {Name: "block"}},
		DoUpdates: clause.AssignmentColumns([]string{"state", "detail", "output", "created_at"}),
	}).Create(&cps).Error
}

// suspend records a durable wait: the sleeping checkpoint, and the run
// waiting until the wait ends, its worker released.
func (x *execution) suspend(sl *sleeping) {
	s, r := x.s, x.run
	detail, _ := json.Marshal(sl.sleep)
	cp := Checkpoint{RunID: r.ID, Block: sl.block, State: cpSleeping, Detail: string(detail), CreatedAt: s.now()}
	item := transition{hold: hold{id: r.ID, owner: s.owner, attempt: r.Attempt, checkpoints: []Checkpoint{cp}},
		status: StatusWaiting, availableAt: sl.sleep.Until}
	if x.transit(item, "flows.suspend") {
		s.log.Info("run waiting", "run_id", r.ID, "block", sl.block, "until", sl.sleep.Until)
	}
}

// release queues the run again for any replica to resume, with reason.
func (x *execution) release(reason string) {
	s, r := x.s, x.run
	x.emit(pendingEvent{Type: "run_released", Data: map[string]any{"reason": reason, "worker": s.owner}})
	item := transition{hold: hold{id: r.ID, owner: s.owner, attempt: r.Attempt},
		status: StatusQueued, reason: reason, resumed: true}
	if x.transit(item, "flows.release") {
		s.log.Info("run released to resume elsewhere", "run_id", r.ID, "reason", reason)
	}
}

// transition is a change of a running run's status by its worker (suspend
// or release), with its checkpoints.
type transition struct {
	hold
	status      string
	availableAt time.Time // zero: the run's queue time (it keeps its place)
	reason      string
	resumed     bool // counts as an interruption
}

// transit applies item with the buffered events, retrying while the
// database does not answer (until x.hard is done). It reports whether it
// applied.
func (x *execution) transit(item transition, key string) bool {
	s := x.s
	x.flushMu.Lock()
	defer x.flushMu.Unlock()
	rows := x.takeRowsLocked()
	var w retryWait
	for {
		ctx, cancel := context.WithTimeout(x.hard, 30*time.Second)
		applied, err := x.w.Write(ctx, store.Write{Merge: &store.Merge{Key: key, Item: item, Apply: s.applyTransitions},
			Rows: []any{rows}, Durable: true})
		cancel()
		if err == nil {
			s.broker.notify(x.run.ID)
			if !applied {
				s.log.Warn("run taken from this worker before it could be released", "run_id", x.run.ID)
			}
			return applied
		}
		s.log.Warn("record run status", "run_id", x.run.ID, "status", item.status, "err", x.red.Error(err))
		if !store.IsUnavailable(err) || !w.next(x.hard, time.Hour) {
			return false // the rescuer queues it again once its lease expires
		}
	}
}

// applyTransitions is the Apply of suspend and release writes.
func (s *Service) applyTransitions(tx *gorm.DB, items []any) ([]bool, error) {
	ok := make([]bool, len(items))
	for i, it := range items {
		t := it.(transition)
		// A run whose cancel was asked meanwhile is queued to be claimed
		// at once, and canceled then, rather than wait.
		set := map[string]any{"status": gorm.Expr("CASE WHEN cancel_req THEN ? ELSE ? END", StatusQueued, t.status),
			"lease_owner": nil, "lease_expires_at": nil}
		if t.availableAt.IsZero() {
			set["available_at"] = gorm.Expr("queued_at")
		} else {
			set["available_at"] = gorm.Expr("CASE WHEN cancel_req THEN queued_at ELSE ? END", t.availableAt)
		}
		if t.resumed {
			set["resumes"] = gorm.Expr("resumes + 1")
			set["resume_reason"] = t.reason
		}
		res := tx.Model(&Run{}).Where("id = ? AND status = ? AND lease_owner = ? AND attempt = ?", t.id, StatusRunning, t.owner, t.attempt).
			Updates(set)
		if res.Error != nil {
			return nil, res.Error
		}
		ok[i] = res.RowsAffected == 1
		if ok[i] {
			if err := upsertCheckpoints(tx, t.checkpoints); err != nil {
				return nil, err
			}
		}
	}
	return ok, nil
}

// finish records the outcome of the run with its last events in one
// transaction, and forgets its checkpoints, unless the run was taken from
// this worker meanwhile. A database that does not answer is waited for
// (until x.hard is done); then the run is left to the rescuer.
func (x *execution) finish(out any, runErr error) {
	s, r := x.s, x.run
	status, errText := StatusSucceeded, ""
	switch {
	case errors.Is(runErr, errCanceled):
		status, errText = StatusCanceled, "canceled"
	case runErr != nil:
		status, errText = StatusFailed, x.red.String(runErr.Error())
	}
	var outJSON string
	if runErr == nil && out != nil {
		outJSON = s.boundedOutput(x.red.Value(out))
		s.redacted(outJSON)
	}
	data := map[string]any{"status": status}
	if errText != "" {
		data["error"] = errText
	}
	x.emit(pendingEvent{Type: "run_finished", Data: data})
	x.flushMu.Lock()
	defer x.flushMu.Unlock()
	rows := x.takeRowsLocked()
	now := s.now()
	// The input is needed only while the run runs: at rest it keeps no
	// secret value a caller passed in (SECURITY.md case 10).
	o := outcome{id: r.ID, owner: s.owner, attempt: r.Attempt, status: status, output: outJSON, err: errText, finished: now,
		input: x.red.String(r.Input)}
	var w retryWait
	for {
		ctx, cancel := context.WithTimeout(x.hard, 30*time.Second)
		// With the outcomes and events of other runs: one commit, and one
		// UPDATE on PostgreSQL, for many.
		applied, err := x.w.Write(ctx, store.Write{Merge: &store.Merge{Key: "flows.outcome", Item: o, Apply: s.recordOutcomes},
			Rows: []any{rows}, Durable: true})
		cancel()
		if err == nil && !applied {
			s.log.Warn("run taken from this worker before its outcome was recorded; it resumes elsewhere", "run_id", r.ID)
			return
		}
		if err == nil {
			break
		}
		s.log.Warn("record run outcome", "run_id", r.ID, "err", x.red.Error(err))
		if !store.IsUnavailable(err) && len(rows) > 0 {
			// Something of the events is refused (never seen; a bug):
			// record the outcome without them rather than leave the run
			// open, and say so.
			s.log.Error("run events refused; recording the outcome without them", "run_id", r.ID, "err", x.red.Error(err))
			rows = nil
			o.err = strings.TrimSpace(o.err + " (the run's last events could not be stored: " + x.red.String(err.Error()) + ")")
			continue
		}
		if !store.IsUnavailable(err) || !w.next(x.hard, time.Hour) {
			s.log.Error("run outcome not recorded; the run will be resumed when its lease expires", "run_id", r.ID, "err", x.red.Error(err))
			return
		}
	}
	s.broker.notify(r.ID)
	s.observe(r, status, now)
}

// outcome is how a run ended, as recorded in its row.
type outcome struct {
	id, owner, status, output, err, input string
	attempt                               int
	finished                              time.Time
}

// recordOutcomes records the outcomes of runs still leased to their
// worker's claim (running, same owner and attempt), deletes their
// checkpoints and reports which were. On PostgreSQL it is one UPDATE and
// one DELETE for all of them.
func (s *Service) recordOutcomes(tx *gorm.DB, items []any) ([]bool, error) {
	ok := make([]bool, len(items))
	var done []string
	if s.db.Dialect != store.Postgres {
		for i, it := range items {
			o := it.(outcome)
			res := tx.Model(&Run{}).Where("id = ? AND status = ? AND lease_owner = ? AND attempt = ?", o.id, StatusRunning, o.owner, o.attempt).
				Updates(map[string]any{"status": o.status, "output": o.output, "error": o.err, "finished_at": o.finished,
					"lease_expires_at": nil, "input": o.input})
			if res.Error != nil {
				return nil, res.Error
			}
			if ok[i] = res.RowsAffected == 1; ok[i] {
				done = append(done, o.id)
			}
		}
		return ok, deleteCheckpoints(tx, done)
	}
	at := map[string]int{}
	for start := 0; start < len(items); start += 1000 {
		chunk := items[start:min(start+1000, len(items))]
		var sb strings.Builder
		args := make([]any, 0, 8*len(chunk)+1)
		sb.WriteString(`UPDATE runs AS r SET status = v.status, output = v.output, error = v.error,
  finished_at = v.finished_at::timestamptz, lease_expires_at = NULL, input = v.input
FROM (VALUES `)
		for i, it := range chunk {
			o := it.(outcome)
			at[o.id] = start + i
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?::bigint, ?, ?, ?, ?, ?)")
			args = append(args, o.id, o.owner, o.attempt, o.status, o.output, o.err, o.finished.Format(time.RFC3339Nano), o.input)
		}
		sb.WriteString(`) AS v(id, owner, attempt, status, output, error, finished_at, input)
WHERE r.id = v.id AND r.status = ? AND r.lease_owner = v.owner AND r.attempt = v.attempt
RETURNING r.id`)
		args = append(args, StatusRunning)
		var ids []string
		if err := tx.Raw(sb.String(), args...).Scan(&ids).Error; err != nil {
			return nil, err
		}
		for _, id := range ids {
			ok[at[id]] = true
		}
		done = append(done, ids...)
	}
	return ok, deleteCheckpoints(tx, done)
}

// deleteCheckpoints forgets the checkpoints of runs that ended.
func deleteCheckpoints(tx *gorm.DB, runIDs []string) error {
	if len(runIDs) == 0 {
		return nil
	}
	return tx.Where("run_id IN ?", runIDs).Delete(&Checkpoint{}).Error
}

// boundedOutput encodes a run's output, truncated like events.
func (s *Service) boundedOutput(v any) string {
	return s.boundedJSON(v)
}

// lastSeq returns the highest event number of a run.
func lastSeq(db *gorm.DB, runID string) (int, error) {
	var n *int
	err := db.Model(&Event{}).Where("run_id = ?", runID).Select("MAX(seq)").Scan(&n).Error
	if err != nil {
		return 0, store.Translate(err)
	}
	if n == nil || *n < 1 {
		return 1, nil // seq 1 is run_queued, the run row itself
	}
	return *n, nil
}

// appendEventsTx stores events of a run not executing anywhere (the cancel
// of a queued or waiting run) in tx.
func (s *Service) appendEventsTx(tx *gorm.DB, runID string, evs []pendingEvent, red *redact.Redactor) error {
	for i := range evs {
		if evs[i].At.IsZero() {
			evs[i].At = s.now()
		}
	}
	seq, err := lastSeq(tx, runID)
	if err != nil {
		return err
	}
	stored := 0
	rows := s.redactEvents(runID, &seq, &stored, red, evs)
	return tx.CreateInBatches(rows, 100).Error
}
