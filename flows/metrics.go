package flows

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// QueueStats returns the number of runs due to run (queued, or waiting
// with their wait over) and the time since when the oldest of them has
// been (zero when none), in one query on the partial index runs_ready;
// the metrics collector calls it on every scrape.
func (s *Service) QueueStats(ctx context.Context) (depth int, oldest time.Time, err error) {
	var first any // SQLite returns MIN() of a time column as text
	row := s.db.WithContext(ctx).Raw(`SELECT COUNT(*), MIN(available_at) FROM runs
WHERE status IN ('queued', 'waiting') AND available_at <= ?`, s.now()).Row()
	if err := row.Scan(&depth, &first); err != nil {
		return 0, time.Time{}, err
	}
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

// workerHealth tracks this process's claim loop for readiness.
type workerHealth struct {
	started  atomic.Bool
	draining atomic.Bool
	stopped  atomic.Bool
	beat     atomic.Int64 // unix nanoseconds of the last loop iteration
}

func (h *workerHealth) mark() { h.beat.Store(time.Now().UnixNano()) }

// StallAfter is how long the claim loop may go without an iteration
// before Healthy reports it stalled.
const StallAfter = 30 * time.Second

// Healthy reports whether this process's workers are taking runs: nil when
// the claim loop ran within StallAfter, or when this process runs no
// workers (Start was never called: an API-only replica). Readiness
// (/readyz) uses it.
func (s *Service) Healthy() error {
	h := &s.health
	if !h.started.Load() {
		return nil
	}
	if h.stopped.Load() {
		return fmt.Errorf("the run workers have stopped")
	}
	if h.draining.Load() {
		return fmt.Errorf("the run workers are draining (the server is stopping)")
	}
	if d := time.Since(time.Unix(0, h.beat.Load())); d > StallAfter {
		return fmt.Errorf("the run workers' claim loop has not run for %s", d.Round(time.Second))
	}
	return nil
}

// countMasks returns the number of masks in stored text, for the
// redactions metric.
func countMasks(s string) int { return strings.Count(s, "[REDACTED") }

// redacted reports masks applied to the redactions hook.
func (s *Service) redacted(data string) {
	if s.cfg.OnRedacted != nil {
		if n := countMasks(data); n > 0 {
			s.cfg.OnRedacted(n)
		}
	}
}

type runIDKey struct{}

// RunID returns the id of the run whose block made ctx (a block's request
// context), or "". The composition root uses it to send a W3C traceparent
// header derived from the run id.
func RunID(ctx context.Context) string {
	id, _ := ctx.Value(runIDKey{}).(string)
	return id
}

func withRunID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, runIDKey{}, id)
}
