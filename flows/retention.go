package flows

import (
	"context"
	"fmt"
	"time"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/internal/beat"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Run retention: runs that ended longer ago than Config.Retention are
// deleted with their events, and the schedule ticks of that age, so that
// the database holds a bounded window of history; the audit records of
// secret reads older than Config.AuditRetention go too (docs/operations.md,
// "Run retention").

// PruneBatch is how many runs one transaction of a prune deletes: short
// enough that runs committing beside it wait a few milliseconds at most
// for SQLite's one write lock.
const PruneBatch = 200

// pruneEvery is the time between two prunes of a replica.
const pruneEvery = time.Hour

// PruneRuns deletes, PruneBatch at a time, the runs that ended before
// before, with their events and checkpoints, and returns how many it
// deleted. It keeps every open run (queued, running, waiting), a child
// run whose parent is open, and a run with an open child: a parent is
// woken by its child's end and reads it. Several replicas may prune at
// once: a run deleted by one is not found by the other.
func (s *Service) PruneRuns(ctx context.Context, before time.Time) (int, error) {
	before = before.UTC()
	// Run ids are UUIDv7: their text sorts by the time the run was
	// queued, so a run that ended before `before` (it was queued before
	// it ended) has an id below the first id of the millisecond after
	// before's. The range keeps the search on the primary key, without
	// an index on finished_at that every run's outcome would write.
	ms := before.UnixMilli() + 1
	below := fmt.Sprintf("%08x-%04x-0000-0000-000000000000", uint64(ms)>>16, uint64(ms)&0xffff)
	total := 0
	for {
		var ids []string
		err := s.db.WithContext(ctx).Raw(`SELECT id FROM runs
WHERE id < ? AND finished_at < ? AND NOT (`+model.OpenSQL+`)
AND NOT EXISTS (SELECT 1 FROM runs p WHERE p.id = runs.parent_run_id AND p.`+model.OpenSQL+`)
AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.parent_run_id = runs.id AND c.parent_run_id <> '' AND c.`+model.OpenSQL+`)
ORDER BY id LIMIT ?`, below, before, PruneBatch).Scan(&ids).Error
		if err != nil {
			return total, err
		}
		if len(ids) == 0 {
			return total, nil
		}
		if total > 0 {
			// Runs committing beside the prune get the write lock
			// between two batches (SQLite's waiting writers retry on a
			// backoff, and a prune of a long backlog would otherwise
			// keep taking it first).
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case <-time.After(store.BatchRest):
			}
		}
		n := 0
		err = s.db.Tx(ctx, func(tx *gorm.DB) error {
			if err := tx.Exec("DELETE FROM events WHERE run_id IN ?", ids).Error; err != nil {
				return err
			}
			if err := tx.Exec("DELETE FROM run_checkpoints WHERE run_id IN ?", ids).Error; err != nil {
				return err
			}
			res := tx.Exec("DELETE FROM runs WHERE id IN ? AND NOT ("+model.OpenSQL+")", ids)
			n = int(res.RowsAffected)
			return res.Error
		})
		if err != nil {
			return total, err
		}
		total += n
		if len(ids) < PruneBatch {
			return total, nil
		}
	}
}

// PruneTicks deletes, PruneBatch at a time, the schedule ticks fired
// before before, and returns how many it deleted. A tick's row only keeps
// two replicas from firing it twice, within the minute the scheduler
// looks back; it is kept as long as the runs it queued.
func (s *Service) PruneTicks(ctx context.Context, before time.Time) (int, error) {
	return store.DeleteInBatches(ctx, s.db.DB, PruneBatch, `DELETE FROM schedule_ticks WHERE (flow_id, tick) IN
  (SELECT flow_id, tick FROM schedule_ticks WHERE tick < ? LIMIT ?)`, before.UTC())
}

// prune deletes, every pruneEvery (the first time at once), the runs and
// schedule ticks older than the run retention and the audit records of
// reads older than the audit retention, until ctx is done.
func (s *Service) prune(ctx context.Context) {
	t := beat.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		if s.cfg.Retention > 0 {
			s.pruneRuns(ctx)
		}
		if s.cfg.AuditRetention > 0 && s.cfg.PruneAudit != nil {
			s.pruneAudit(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Next()
		}
	}
}

// pruneRuns is one pass of the run retention.
func (s *Service) pruneRuns(ctx context.Context) {
	start := time.Now()
	before := s.now().Add(-s.cfg.Retention)
	n, err := s.PruneRuns(ctx, before)
	ticks := 0
	if err == nil {
		ticks, err = s.PruneTicks(ctx, before)
	}
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("delete the runs past their retention; trying again in an hour", "retention", retentionString(s.cfg.Retention),
			"deleted", n, "err", err)
	case n > 0 || ticks > 0:
		s.log.Info("deleted the runs past their retention", "retention", retentionString(s.cfg.Retention), "runs", n,
			"schedule_ticks", ticks, "duration_ms", time.Since(start).Milliseconds())
	}
	if s.cfg.OnPruned != nil && n > 0 {
		s.cfg.OnPruned(n)
	}
}

// pruneAudit is one pass of the audit retention.
func (s *Service) pruneAudit(ctx context.Context) {
	start := time.Now()
	n, err := s.cfg.PruneAudit(ctx, s.now().Add(-s.cfg.AuditRetention))
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("delete the audit records of reads past their retention; trying again in an hour",
			"retention", retentionString(s.cfg.AuditRetention), "deleted", n, "err", err)
	case n > 0:
		s.log.Info("deleted the audit records of reads past their retention", "retention", retentionString(s.cfg.AuditRetention),
			"records", n, "duration_ms", time.Since(start).Milliseconds())
	}
}

// retentionString says a retention as HUSHFLOW_RUN_RETENTION takes it:
// in days when it is whole days (30d), in hours when whole hours (36h),
// as a duration otherwise (1h30m0s), and "off" for none.
func retentionString(d time.Duration) string {
	switch {
	case d <= 0:
		return "off"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}
