package flows

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Start runs this process's workers until ctx is done: a claim loop that
// takes queued runs from the database (FOR UPDATE SKIP LOCKED on
// PostgreSQL, so several replicas share one queue), a heartbeat that
// extends the leases of this process's runs and notices cancel requests
// and lost leases, a rescuer that queues again the runs whose worker
// stopped renewing its lease, and the scheduler.
//
// When ctx is done Start drains: it claims nothing more, lets the runs in
// progress go on for Config.ShutdownGrace, then stops the rest, which
// release themselves (their finished blocks checkpointed) to be resumed by
// any replica. It returns when every run it started has returned.
func (s *Service) Start(ctx context.Context) {
	if s.cfg.Sealer == nil {
		panic("flows: Start needs Config.Sealer (checkpoints are sealed at rest)")
	}
	// Runs store their events, checkpoints and outcomes through w.
	w := s.cfg.Batcher
	if w == nil {
		w = store.NewBatcher(s.db)
		defer w.Close()
	}
	// The background services and the runs' writes outlive ctx: they stop
	// when the runs have drained (bg) or at the end of the grace (hard).
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	hard, stopHard := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHard()
	running := &runningSet{m: map[string]context.CancelCauseFunc{}}
	var services, runs sync.WaitGroup
	services.Add(3)
	go func() { defer services.Done(); s.heartbeat(bg, running) }()
	go func() { defer services.Done(); s.rescuer(ctx) }()
	go func() { defer services.Done(); s.scheduler(ctx) }()
	s.rescue(ctx) // runs left running by a previous life of this or another process
	s.health.mark()
	s.health.started.Store(true)
	s.startedOnce.Do(func() { close(s.started) })
	slots := make(chan struct{}, s.cfg.Workers)
	idle := func() {
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-time.After(s.cfg.Poll):
		}
	}
	for ctx.Err() == nil {
		s.health.mark()
		free := cap(slots) - len(slots)
		if free == 0 {
			idle()
			continue
		}
		claimed, err := s.claim(ctx, free)
		if err != nil {
			s.log.Warn("claim runs", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for i := range claimed {
			r := &claimed[i]
			slots <- struct{}{}
			rctx, cancel := context.WithCancelCause(withRunID(context.WithoutCancel(ctx), r.ID))
			running.add(r.ID, cancel)
			runs.Add(1)
			go func() {
				defer runs.Done()
				defer func() { <-slots; running.remove(r.ID); cancel(nil); s.poke() }()
				s.execute(rctx, hard, r, w)
			}()
		}
		if len(claimed) == 0 {
			idle()
		}
	}
	// Draining: no more claims. Runs in progress get the grace period,
	// then are stopped and release themselves.
	s.health.draining.Store(true)
	defer s.health.stopped.Store(true)
	n := len(running.ids())
	if n > 0 {
		s.log.Info("draining: waiting for the runs in progress", "runs", n, "grace", s.cfg.ShutdownGrace.String())
	}
	done := make(chan struct{})
	go func() { runs.Wait(); close(done) }()
	grace := time.NewTimer(s.cfg.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		if ids := running.ids(); len(ids) > 0 {
			s.log.Info("drain grace over: releasing the runs still in progress to other replicas", "runs", len(ids))
		}
		running.cancelAll(errShutdown)
		// Their last writes may retry for a while against a database that
		// does not answer; then they are left to the rescuer.
		last := time.NewTimer(10 * time.Second)
		defer last.Stop()
		select {
		case <-done:
		case <-last.C:
			stopHard()
			<-done
		}
	}
	stopBG()
	services.Wait()
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

// claim takes up to n runs that are due (queued, or waiting with their
// wait over), those available longest first, and leases them to this
// process. The statement runs to its end even when ctx is cancelled (a
// claim cancelled half-way could commit and lose the rows it returned).
func (s *Service) claim(ctx context.Context, n int) ([]Run, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := s.now()
	lock := ""
	if s.db.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	// SQLite serializes writers (immediate transactions), which gives the
	// same exclusivity without row locks. The status literals match the
	// partial index runs_ready.
	q := `UPDATE runs SET status = ?, lease_owner = ?, lease_expires_at = ?, started_at = COALESCE(started_at, ?),
  attempt = attempt + 1
WHERE id IN (SELECT id FROM runs WHERE status IN ('queued', 'waiting') AND available_at <= ?
  ORDER BY available_at LIMIT ?` + lock + `)
RETURNING *`
	var runs []Run
	err := s.db.WithContext(cctx).Raw(q, StatusRunning, s.owner, now.Add(s.cfg.Lease), now, now, n).Scan(&runs).Error
	return runs, store.Translate(err)
}

// heartbeat extends the leases of this process's runs, cancels those
// whose cancel was requested (by any replica's API) and stops those whose
// lease was lost (the rescuer of a replica gave them to another worker).
// After a failed renewal it tries again every second.
func (s *Service) heartbeat(ctx context.Context, running *runningSet) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last time.Time
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
		if time.Since(last) < s.cfg.Lease/3 {
			continue
		}
		var held []string
		err := db.Raw(`UPDATE runs SET lease_expires_at = ? WHERE id IN ? AND status = ? AND lease_owner = ? RETURNING id`,
			s.now().Add(s.cfg.Lease), ids, StatusRunning, s.owner).Scan(&held).Error
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("extend run leases", "err", err)
			}
			continue
		}
		last = time.Now()
		ok := make(map[string]bool, len(held))
		for _, id := range held {
			ok[id] = true
		}
		for _, id := range ids {
			if !ok[id] {
				// Ended meanwhile, or taken: either way this worker is done
				// with it.
				running.cancel(id, errLeaseLost)
			}
		}
	}
}

// rescueEvery is how often the rescuer looks for runs whose lease expired:
// a quarter of the lease, between 1 and 5 seconds.
func (s *Service) rescueEvery() time.Duration {
	return min(max(s.cfg.Lease/4, time.Second), 5*time.Second)
}

// rescuer queues again, every rescueEvery, the runs whose worker stopped
// renewing its lease.
func (s *Service) rescuer(ctx context.Context) {
	t := time.NewTicker(s.rescueEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.rescue(ctx)
		}
	}
}

// rescue queues again the runs whose lease expired: their worker died
// (killed, crashed) or lost the database for longer than the lease. They
// resume on any replica from their first unfinished block (a run that
// has been resumed too often fails when it is claimed). A worker that
// comes back after losing its lease can no longer write to the run.
func (s *Service) rescue(ctx context.Context) {
	now := s.now()
	var ids []string
	err := s.db.WithContext(ctx).Raw(`UPDATE runs SET status = ?, available_at = queued_at, resumes = resumes + 1,
  resume_reason = 'the lease of worker ' || COALESCE(lease_owner, '') || ' expired (it stopped, was killed or lost the database)',
  lease_owner = NULL, lease_expires_at = NULL
WHERE status = ? AND lease_expires_at < ? RETURNING id`, StatusQueued, StatusRunning, now).Scan(&ids).Error
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("rescue runs", "err", err)
		}
		return
	}
	if len(ids) > 0 {
		s.log.Warn("queued again the runs of a worker that stopped renewing its leases", "runs", len(ids),
			"run_ids", strings.Join(ids[:min(len(ids), 10)], ","))
		s.poke()
	}
}

// client returns the run's HTTP client: the egress client of the
// composition root, calling effect before every request.
func (s *Service) client(pins map[string][]string, x *execution) *http.Client {
	var c *http.Client
	if s.cfg.NewHTTPClient == nil {
		c = &http.Client{Transport: noNetwork{}}
	} else {
		c = s.cfg.NewHTTPClient(pins, x.red.Matches, func(secret, host string) {
			x.emit(pendingEvent{Type: "egress_refused", Data: map[string]any{"secret": secret, "host": host}})
			if s.cfg.OnPinRefused != nil {
				s.cfg.OnPinRefused(x.run, secret, host)
			}
		})
	}
	cc := *c
	next := cc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	cc.Transport = effectTransport{next: next, x: x}
	return &cc
}

// effectTransport calls the running block's effect hook before each
// request leaves.
type effectTransport struct {
	next http.RoundTripper
	x    *execution
}

func (t effectTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.x.effect(req.Context()); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	return t.next.RoundTrip(req)
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
	if s.cfg.OnRunFinished != nil {
		s.cfg.OnRunFinished(r, status, d)
	}
}

// holdLeases is the Apply of the merged "flows.hold" writes: it reports
// which runs are still leased to their worker's claim (running, same
// owner and attempt) and stores their checkpoints. The Batcher drops the
// events of the others: a worker that lost its run never writes to it
// again. The runs' rows are locked FOR SHARE until the commit on
// PostgreSQL, so that the rescuer cannot take a run between the check and
// the write (on SQLite the transaction holds the one write lock). Leases
// are extended by the heartbeat, not here: an UPDATE per write would cost
// a row version and index entries.
func (s *Service) holdLeases(tx *gorm.DB, items []any) ([]bool, error) {
	holds := make([]hold, len(items))
	for i, it := range items {
		holds[i] = it.(hold)
	}
	if s.db.Dialect == store.Postgres {
		return s.holdLeasesPostgres(tx, holds)
	}
	ok := make([]bool, len(items))
	var cps []Checkpoint
	for i, h := range holds {
		var n int64
		err := tx.Model(&Run{}).Where("id = ? AND status = ? AND lease_owner = ? AND attempt = ?", h.id, StatusRunning, h.owner, h.attempt).
			Count(&n).Error
		if err != nil {
			return nil, err
		}
		if ok[i] = n == 1; ok[i] {
			cps = append(cps, h.checkpoints...)
		}
	}
	return ok, upsertCheckpoints(tx, cps)
}

// holdLeasesPostgres checks the holds and stores their checkpoints in one
// statement for those that carry checkpoints (an INSERT of the
// checkpoints joined to their leased runs) and one SELECT for the others.
func (s *Service) holdLeasesPostgres(tx *gorm.DB, holds []hold) ([]bool, error) {
	ok := make([]bool, len(holds))
	held := map[string]bool{}
	var with, without strings.Builder
	var wargs, oargs []any
	for _, h := range holds {
		if len(h.checkpoints) == 0 {
			if without.Len() > 0 {
				without.WriteString(", ")
			}
			without.WriteString("(?, ?, ?::bigint)")
			oargs = append(oargs, h.id, h.owner, h.attempt)
			continue
		}
		for _, cp := range h.checkpoints {
			if with.Len() > 0 {
				with.WriteString(", ")
			}
			with.WriteString("(?, ?, ?, ?, ?::bytea, ?::timestamptz, ?, ?::bigint)")
			wargs = append(wargs, cp.RunID, cp.Block, cp.State, cp.Detail, cp.Output, cp.CreatedAt, h.owner, h.attempt)
		}
	}
	var ids []string
	if with.Len() > 0 {
		q := `INSERT INTO run_checkpoints (run_id, block, state, detail, output, created_at)
SELECT v.run_id, v.block, v.state, v.detail, v.output, v.created_at
FROM (VALUES ` + with.String() + `) AS v(run_id, block, state, detail, output, created_at, owner, attempt)
JOIN runs r ON r.id = v.run_id AND r.status = ? AND r.lease_owner = v.owner AND r.attempt = v.attempt
FOR SHARE OF r
ON CONFLICT (run_id, block) DO UPDATE SET state = excluded.state, detail = excluded.detail, output = excluded.output,
  created_at = excluded.created_at
RETURNING run_id`
		if err := tx.Raw(q, append(wargs, StatusRunning)...).Scan(&ids).Error; err != nil {
			return nil, err
		}
	}
	if without.Len() > 0 {
		var more []string
		q := `SELECT r.id FROM runs r JOIN (VALUES ` + without.String() + `) AS v(id, owner, attempt)
  ON r.id = v.id AND r.status = ? AND r.lease_owner = v.owner AND r.attempt = v.attempt
FOR SHARE OF r`
		if err := tx.Raw(q, append(oargs, StatusRunning)...).Scan(&more).Error; err != nil {
			return nil, err
		}
		ids = append(ids, more...)
	}
	for _, id := range ids {
		held[id] = true
	}
	for i, h := range holds {
		ok[i] = held[h.id]
	}
	return ok, nil
}

// hold is one write of a running run: it applies only while the run is
// leased to the worker's claim (id, owner, attempt); checkpoints are
// stored with it.
type hold struct {
	id, owner   string
	attempt     int
	checkpoints []Checkpoint
}

var errLeaseLost = errors.New("the run's lease was lost (its worker stopped renewing it, and another worker or the rescuer took the run)")

// errShutdown stops the runs of a server that is stopping after its drain
// grace; they are released to be resumed elsewhere.
var errShutdown = errors.New("the server shut down")

// errCanceled ends a run canceled through the API.
var errCanceled = errors.New("run canceled")

// releaseReason says why a stopped worker released a run.
func (s *Service) releaseReason() string {
	return fmt.Sprintf("worker %s shut down before the run ended (after its drain grace of %s)", s.owner, s.cfg.ShutdownGrace)
}
