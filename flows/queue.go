package flows

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Start runs this process's workers until ctx is done: a claim loop that
// takes queued runs from the database (FOR UPDATE SKIP LOCKED on
// PostgreSQL, so several replicas share one queue), a heartbeat that
// extends the leases of this process's runs and notices cancel requests,
// a reaper that fails runs whose worker died, and the scheduler. Start
// returns when every run it started has finished.
func (s *Service) Start(ctx context.Context) {
	var wg sync.WaitGroup
	// Runs store their events and outcomes through w.
	w := s.cfg.Batcher
	if w == nil {
		w = store.NewBatcher(s.db)
		defer w.Close()
	}
	running := &runningSet{m: map[string]context.CancelCauseFunc{}}
	slots := make(chan struct{}, s.cfg.Workers)
	wg.Add(3)
	go func() { defer wg.Done(); s.heartbeat(ctx, running) }()
	go func() { defer wg.Done(); s.reaper(ctx) }()
	go func() { defer wg.Done(); s.scheduler(ctx) }()
	s.reap(ctx) // runs left running by a previous life of this or another process
	s.health.mark()
	s.health.started.Store(true)
	defer s.health.stopped.Store(true)
	for ctx.Err() == nil {
		s.health.mark()
		free := cap(slots) - len(slots)
		if free == 0 {
			select {
			case <-ctx.Done():
			case <-s.wake:
			case <-time.After(s.cfg.Poll):
			}
			continue
		}
		runs, err := s.claim(ctx, free)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("claim runs", "err", err)
				time.Sleep(time.Second)
			}
			continue
		}
		for i := range runs {
			r := &runs[i]
			slots <- struct{}{}
			rctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
			running.add(r.ID, cancel)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots; running.remove(r.ID); cancel(nil); s.poke() }()
				s.execute(rctx, r, w)
			}()
		}
		if len(runs) == 0 {
			select {
			case <-ctx.Done():
			case <-s.wake:
			case <-time.After(s.cfg.Poll):
			}
		}
	}
	// Shutting down: ask running runs to stop; their outcome is recorded.
	running.cancelAll(errShutdown)
	wg.Wait()
}

type runningSet struct {
	mu sync.Mutex // guards m
	m  map[string]context.CancelCauseFunc
}

func (r *runningSet) add(id string, c context.CancelCauseFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[id] = c
}

func (r *runningSet) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, id)
}

func (r *runningSet) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.m))
	for id := range r.m {
		out = append(out, id)
	}
	return out
}

func (r *runningSet) cancel(id string, cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.m[id]; c != nil {
		c(cause)
	}
}

func (r *runningSet) cancelAll(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.m {
		c(cause)
	}
}

// claim takes up to n queued runs, oldest first, and leases them to this
// process.
func (s *Service) claim(ctx context.Context, n int) ([]Run, error) {
	now := time.Now().UTC()
	lease := now.Add(s.cfg.Lease)
	var runs []Run
	lock := ""
	if s.db.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	// SQLite serializes writers (immediate transactions), which gives the
	// same exclusivity without row locks.
	q := `UPDATE runs SET status = ?, lease_owner = ?, lease_expires_at = ?, started_at = ?
WHERE id IN (SELECT id FROM runs WHERE status = ? ORDER BY queued_at LIMIT ?` + lock + `)
RETURNING *`
	err := s.db.WithContext(ctx).Raw(q, StatusRunning, s.owner, lease, now, StatusQueued, n).Scan(&runs).Error
	return runs, store.Translate(err)
}

// heartbeat extends the leases of this process's runs and cancels those
// whose cancel was requested (by any replica's API).
func (s *Service) heartbeat(ctx context.Context, running *runningSet) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids := running.ids()
		if len(ids) == 0 {
			continue
		}
		db := s.db.WithContext(ctx)
		var cancel []string
		if err := db.Model(&Run{}).Where("id IN ? AND cancel_req = ?", ids, true).Pluck("id", &cancel).Error; err == nil {
			for _, id := range cancel {
				running.cancel(id, errCanceled)
			}
		}
		if time.Since(last) >= s.cfg.Lease/3 {
			last = time.Now()
			err := db.Model(&Run{}).Where("id IN ? AND status = ? AND lease_owner = ?", ids, StatusRunning, s.owner).
				Update("lease_expires_at", time.Now().UTC().Add(s.cfg.Lease)).Error
			if err != nil && ctx.Err() == nil {
				s.log.Warn("extend run leases", "err", err)
			}
		}
	}
}

func (s *Service) reaper(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.reap(ctx)
		}
	}
}

// reap fails runs whose lease expired: their worker died (killed,
// crashed, lost its database connection) while running them. They are not
// run again, because their blocks may already have had effects (an HTTP
// call, a message sent); the error says so.
func (s *Service) reap(ctx context.Context) {
	now := time.Now().UTC()
	var ids []string
	db := s.db.WithContext(ctx)
	if err := db.Model(&Run{}).Where("status = ? AND lease_expires_at < ?", StatusRunning, now).Pluck("id", &ids).Error; err != nil {
		return
	}
	for _, id := range ids {
		msg := fmt.Sprintf("the worker running this run stopped (lease expired at %s); the run was not retried because its blocks may already have had effects: start it again if that is safe", now.Format(time.RFC3339))
		var done bool
		err := db.Transaction(func(tx *gorm.DB) error {
			res := tx.Model(&Run{}).Where("id = ? AND status = ? AND lease_expires_at < ?", id, StatusRunning, now).
				Updates(map[string]any{"status": StatusFailed, "error": msg, "finished_at": now, "lease_expires_at": nil})
			done = res.RowsAffected == 1
			return res.Error
		})
		if err == nil && done {
			s.log.Warn("failed a run whose worker stopped", "run_id", id)
			s.appendEvents(ctx, id, []pendingEvent{{Type: "run_finished", Data: map[string]any{"status": StatusFailed, "error": msg}}}, nil)
		}
	}
}

// client returns the run's HTTP client.
func (s *Service) client(pins map[string][]string, x *execution) *http.Client {
	if s.NewHTTPClient == nil {
		return &http.Client{Transport: noNetwork{}}
	}
	return s.NewHTTPClient(pins, x.red.Matches, func(secret, host string) {
		x.emit(pendingEvent{Type: "egress_refused", Data: map[string]any{"secret": secret, "host": host}})
		if s.OnPinRefused != nil {
			s.OnPinRefused(x.run, secret, host)
		}
	})
}

type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("this server gives blocks no network access")
}

// observe logs a finished run and reports it to the metrics hook.
func (s *Service) observe(r *Run, status string, at time.Time) {
	var d time.Duration
	if r.StartedAt != nil {
		d = at.Sub(*r.StartedAt)
	}
	s.log.Info("run finished", "run_id", r.ID, "project", r.Project, "flow", r.Flow, "environment", r.Environment,
		"status", status, "duration_ms", d.Milliseconds())
	if s.OnRunFinished != nil {
		s.OnRunFinished(r, status, d)
	}
}
