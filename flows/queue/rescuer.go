package queue

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hushflow/hushflow/internal/beat"
	"github.com/hushflow/hushflow/internal/startstop"
	"github.com/hushflow/hushflow/store"
)

// Rescuer is the background service that queues again the runs whose
// worker stopped renewing its lease (it died, or lost the database for
// longer than the lease). Every replica runs one; a rescued run resumes on
// whichever replica claims it.
type Rescuer struct {
	startstop.Base
	cfg RescuerConfig

	mu sync.Mutex // guards warned and skipped
	// warned is when a failed rescue was last logged; skipped counts
	// those left out since (one line per 10 s while the database is away).
	warned  time.Time
	skipped int
}

// RescuerConfig is what a Rescuer needs.
type RescuerConfig struct {
	DB     *store.DB
	Driver Driver
	// Every is the time between rescues.
	Every time.Duration
	// Now is the clock.
	Now    func() time.Time
	Logger *slog.Logger
	// OnRescued is called with the ids of the runs it queued again (to
	// wake this replica's claim loop).
	OnRescued func(ids []string)
}

// NewRescuer returns a Rescuer; Start runs it.
func NewRescuer(cfg RescuerConfig) *Rescuer { return &Rescuer{cfg: cfg} }

// Start rescues once, then every cfg.Every (on the process's beat:
// package beat), until Stop or ctx is done.
func (r *Rescuer) Start(ctx context.Context) {
	r.Base.Start(ctx, func(ctx context.Context) {
		t := beat.NewTicker(r.cfg.Every)
		defer t.Stop()
		for {
			r.Rescue(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				t.Next()
			}
		}
	})
}

// Rescue queues again, once, the runs whose lease expired.
func (r *Rescuer) Rescue(ctx context.Context) {
	ids, err := r.cfg.Driver.Rescue(r.cfg.DB.WithContext(ctx), r.cfg.Now().UTC())
	if err != nil {
		if ctx.Err() == nil {
			r.warn(err)
		}
		return
	}
	if len(ids) == 0 {
		return
	}
	r.cfg.Logger.Warn("queued again the runs of a worker that stopped renewing its leases", "runs", len(ids),
		"run_ids", strings.Join(ids[:min(len(ids), 10)], ","))
	if r.cfg.OnRescued != nil {
		r.cfg.OnRescued(ids)
	}
}

// warn logs a failed rescue, at most once per 10 s, with how many were
// left out since.
func (r *Rescuer) warn(err error) {
	now := r.cfg.Now()
	r.mu.Lock()
	if !r.warned.IsZero() && now.Sub(r.warned) < 10*time.Second {
		r.skipped++
		r.mu.Unlock()
		return
	}
	args := []any{"err", err}
	if r.skipped > 0 {
		args = append(args, "repeated", r.skipped)
	}
	r.warned, r.skipped = now, 0
	r.mu.Unlock()
	r.cfg.Logger.Warn("rescue runs", args...)
}
