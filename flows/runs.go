package flows

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hushflow/hushflow/flows/executor"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/queue"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Enqueue validates and queues a run; workers of any process pick it up.
func (s *Service) Enqueue(ctx context.Context, req RunRequest) (*Run, error) {
	f, _, err := s.Get(ctx, req.Project, req.Flow)
	if err != nil {
		return nil, err
	}
	return s.enqueue(ctx, s.db.DB, f, req)
}

// enqueue queues the run of req in tx: the database, or a transaction of
// the caller's (a schedule's tick).
func (s *Service) enqueue(ctx context.Context, tx *gorm.DB, f *Flow, req RunRequest) (*Run, error) {
	return s.enqueueRun(ctx, tx, f, req, nil)
}

// enqueueRun inserts the run of req. edit, when set, completes the row
// before it is inserted (a child run's parent and version) and returns
// rows inserted with it, in one transaction.
//
// A run without edit, inserted outside any transaction of the caller's
// (tx is the database itself), goes straight to a free slot of this
// process's worker when it has one and no queued run waits for one (Reserve): it is
// inserted already claimed and starts at once, which spares the claim
// loop's wake-up and its claim (the two were a fifth of the server's CPU
// per run at 30 runs/s). Otherwise the run is queued and this process's
// claim loop woken; on PostgreSQL the database announces it to every
// replica's (migration 0015, queue.Driver.Listen).
func (s *Service) enqueueRun(ctx context.Context, tx *gorm.DB, f *Flow, req RunRequest, edit func(r *Run) (rows []any, err error)) (*Run, error) {
	if f.PausedAt != nil {
		return nil, model.PausedError(f)
	}
	if req.Environment == "" {
		return nil, apperr.Invalidf("invalid_environment", "environment is required (for example development, staging or production)")
	}
	if err := s.knownEnvironment(ctx, req.Environment); err != nil {
		return nil, err
	}
	input, err := json.Marshal(req.Input)
	if err != nil {
		return nil, apperr.Invalidf("invalid_input", "input is not a JSON value")
	}
	if len(input) > s.cfg.MaxInput {
		return nil, tooLarge("run input", len(input), s.cfg.MaxInput)
	}
	if req.Trigger == "" {
		req.Trigger = "manual"
	}
	own := s.ownLimit(ctx, tx, f)
	if own > 0 {
		// A flow's own max_concurrent_runs holds only if runs asked for
		// at once count each other: each is counted and stored in a
		// transaction that holds the flow's row on PostgreSQL (SQLite's
		// transactions hold its one write lock). Counted apart, eight at
		// once against a limit of one stored up to six on PostgreSQL,
		// two on SQLite.
		if tx == s.db.DB {
			var r *Run
			err := tx.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				var err error
				r, err = s.enqueueRun(ctx, tx, f, req, edit)
				return err
			})
			return r, store.Translate(err)
		}
		if s.db.Dialect == store.Postgres {
			if err := tx.WithContext(ctx).Exec("SELECT id FROM flows WHERE id = ? FOR UPDATE", f.ID).Error; err != nil {
				return nil, store.Translate(err)
			}
		}
	}
	limited, err := s.checkConcurrency(ctx, tx, f, own)
	if err != nil {
		return nil, err
	}
	now := s.now()
	r := &Run{
		ID: uuid.Must(uuid.NewV7()).String(), ProjectID: f.ProjectID, Project: f.Project, FlowID: f.ID, Flow: f.Name,
		FlowVersion: f.Version, Environment: req.Environment, Trigger: req.Trigger, Status: StatusQueued,
		Input: string(input), QueuedAt: now, AvailableAt: now, CreatedBy: req.Actor, RerunOf: req.RerunOf,
	}
	if edit == nil {
		var slot *executor.Reservation
		if tx == s.db.DB {
			slot = s.worker.Reserve()
		}
		if slot != nil {
			slot.Claim(r)
		}
		// One insert: the run_queued event (seq 1) is the run row itself,
		// shown by Events; stored events start at seq 2. It is a short
		// statement (store.DB.Short: on SQLite it runs without the
		// request's cancellation, which cost a goroutine per run); a
		// caller already gone queues nothing.
		err := ctx.Err()
		if err == nil && slot != nil && !limited {
			// The run starts at once and its first commit stores it,
			// before any block acts: with the audit record of its
			// secrets' load and, when a block's configuration reads a
			// secret first, of that read (one commit a run fewer; on
			// PostgreSQL one statement, the insert its WITH clause). This
			// returns once that commit is over (or, after 100 ms, once
			// the row is stored alone), as it would after an insert of
			// its own. A flow with its own max_concurrent_runs stores its
			// runs first, so that its count sees them at once.
			own := *r
			if err := slot.StartInserting(&own, runInserts{{run: r, ifCurrent: req.IfCurrent}}); err != nil {
				return nil, store.Translate(s.notStoredError(ctx, tx, f, now, err))
			}
			return r, nil
		}
		if err == nil {
			err = runInsert{run: r, ifCurrent: req.IfCurrent}.insert(tx.WithContext(s.db.Short(ctx)))
		}
		if err != nil {
			if slot != nil {
				slot.Cancel()
			}
			return nil, store.Translate(s.notStoredError(ctx, tx, f, now, err))
		}
		if slot != nil {
			own := *r
			slot.Start(&own)
			return r, nil
		}
	} else if err := tx.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		rows, err := edit(r)
		if err != nil {
			return err
		}
		if err := (runInsert{run: r}).insert(tx); err != nil {
			return err
		}
		for _, row := range rows {
			if err := tx.Create(row).Error; err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, s.notStoredError(ctx, tx, f, now, err)
	}
	s.worker.Poke()
	return r, nil
}

// runColumns are the columns insertIfCurrent writes: all of runs'.
const runColumns = `"id", "project_id", "project", "flow_id", "flow", "flow_version", "environment", "trigger", "status",
"input", "output", "error", "cancel_req", "cancel_reason", "lease_owner", "lease_expires_at", "queued_at", "started_at",
"finished_at", "created_by", "available_at", "attempt", "resumes", "drains", "resume_reason", "rerun_of", "input_sealed",
"parent_run_id", "parent_block", "parent_attempt", "depth"`

// insertRunSQL inserts a run, with runArgs.
const insertRunSQL = `INSERT INTO runs (` + runColumns + `)
SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?`

// insertLiveSQL inserts a run if its flow still exists and is not
// paused, with runArgs and then the flow's id: in one statement, so that
// a deletion of the flow (which locks runs: Service.lockRuns) either
// counts the run or is seen by the insert, never neither (a run of a
// deleted flow, answered 202, would fail for want of its version), and a
// pause committed before the statement is seen by it.
const insertLiveSQL = insertRunSQL + `
WHERE EXISTS (SELECT 1 FROM flows WHERE id = ? AND paused_at IS NULL)`

// insertSQL inserts a run if its flow is current and not paused, with
// runArgs and then the flow's id, version, project and name.
const insertSQL = insertRunSQL + `
WHERE EXISTS (SELECT 1 FROM flows WHERE id = ? AND version = ? AND project = ? AND name = ? AND paused_at IS NULL)`

// runArgs are the values of runColumns for r.
func runArgs(r *Run) []any {
	return []any{r.ID, r.ProjectID, r.Project, r.FlowID, r.Flow, r.FlowVersion, r.Environment, r.Trigger, r.Status,
		r.Input, r.Output, r.Error, r.CancelReq, r.CancelReason, r.LeaseOwner, r.LeaseExpiresAt, r.QueuedAt, r.StartedAt,
		r.FinishedAt, r.CreatedBy, r.AvailableAt, r.Attempt, r.Resumes, r.Drains, r.ResumeReason, r.RerunOf, r.InputSealed,
		r.ParentRunID, r.ParentBlock, r.ParentAttempt, r.Depth}
}

// runInserts are runs a store.Batcher inserts (a store.RowsInserter),
// with the condition on their flow for those that ask it.
type runInserts []runInsert

type runInsert struct {
	run       *Run
	ifCurrent bool
}

// OneStatement: one run is one statement; several are not, and the
// Batcher puts them in a transaction.
func (rs runInserts) OneStatement() bool { return len(rs) == 1 }

// LeadStatement inserts the one run, as the WITH clause of the statement
// that stores its first audit records on PostgreSQL (store.LeadInserter).
func (rs runInserts) LeadStatement() (string, []any, error) { return rs[0].statement() }

// statement is r's insert, its values, and the error of an insert that
// stored no row: on the condition that its flow is still the version it
// was read at, when it asks it (a webhook that took the flow from its
// cache reads nothing first; model.ErrFlowChanged), otherwise that its
// flow still exists (errNoRunRow).
func (r runInsert) statement() (string, []any, error) {
	if r.ifCurrent {
		return insertSQL, append(runArgs(r.run), r.run.FlowID, r.run.FlowVersion, r.run.Project, r.run.Flow), model.ErrFlowChanged
	}
	return insertLiveSQL, append(runArgs(r.run), r.run.FlowID), errNoRunRow
}

// insert runs r's statement in db, and fails with its error when that
// stored no row.
func (r runInsert) insert(db *gorm.DB) error {
	q, args, none := r.statement()
	res, err := store.Exec(db, q, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return cmp.Or(err, none)
	}
	return nil
}

// errNoRunRow is the error of a run's insert that stored no row and
// reported no error: its flow was deleted or paused meanwhile (enqueueRun
// then says so), or a trigger of the database's skipped it. The run is
// not queued, and its caller is told.
var errNoRunRow = errors.New("the database stored no row for the run")

// notStoredError is err, the error of a run of f that was not stored
// (asked for at since), or, when its flow was deleted meanwhile
// (errNoRunRow), that flow's NotFound, or when it was paused,
// model.PausedError; when it was resumed since (a pause and a resume in a
// moment, the insert between them), model.ErrPausedMeanwhile.
//
// It reads the flow in db, the caller's transaction when there is one: on
// SQLite a transaction holds the one write lock, and a read on another
// connection could wait for a connection of the pool that writers waiting
// for that lock hold.
func (s *Service) notStoredError(ctx context.Context, db *gorm.DB, f *Flow, since time.Time, err error) error {
	if !errors.Is(err, errNoRunRow) {
		return err
	}
	var now []Flow
	if db.WithContext(context.WithoutCancel(ctx)).Select("id", "name", "paused_at", "paused_by", "resumed_at").
		Where("id = ?", f.ID).Limit(1).Find(&now).Error == nil {
		switch {
		case len(now) == 0:
			return store.NotFound("flow", f.Name)
		case now[0].PausedAt != nil:
			return model.PausedError(&now[0])
		case now[0].ResumedAt != nil && !now[0].ResumedAt.Before(since.Add(-time.Second)):
			// (a second's margin for the clocks of two replicas)
			return model.ErrPausedMeanwhile
		}
	}
	return err
}

func (rs runInserts) InsertRows(db *gorm.DB) error {
	for _, r := range rs {
		if err := r.insert(db); err != nil {
			return err
		}
	}
	return nil
}

// GetRun returns a run of project (store.ErrNotFound for another
// project's run, so that ids of other projects reveal nothing).
func (s *Service) GetRun(ctx context.Context, id string) (*Run, error) {
	var r Run
	if err := s.db.WithContext(ctx).Where("id = ?", id).First(&r).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, store.NotFound("run", id)
		}
		return nil, store.Translate(err)
	}
	return &r, nil
}

// RunFilter selects runs of a project.
type RunFilter struct {
	Project, Flow, Status, Environment string
	// Parent selects the runs that run's flow blocks started.
	Parent string
	// Cursor is the id of the last run of the previous page.
	Cursor string
	// Limit is the page size: 50 when zero, at most 200.
	Limit int
}

// ListRuns returns a page of runs, newest first, and the next cursor.
func (s *Service) ListRuns(ctx context.Context, f RunFilter) ([]Run, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 200)
	q := s.db.WithContext(ctx).Where("project = ?", f.Project)
	if f.Flow != "" {
		q = q.Where("flow = ?", f.Flow)
	}
	if f.Status != "" {
		if !slices.Contains(model.Statuses, f.Status) {
			return nil, "", apperr.Invalidf("invalid_status", "unknown run status %s; use one of: %s",
				apperr.Echo(f.Status), strings.Join(model.Statuses, ", "))
		}
		q = q.Where("status = ?", f.Status)
	}
	if f.Environment != "" {
		q = q.Where("environment = ?", f.Environment)
	}
	if f.Parent != "" {
		q = q.Where("parent_run_id = ?", f.Parent)
	}
	if f.Cursor != "" {
		q = q.Where("id < ?", f.Cursor) // UUIDv7 ids sort by creation time
	}
	var rs []Run
	if err := q.Order("id DESC").Limit(f.Limit + 1).Find(&rs).Error; err != nil {
		return nil, "", store.Translate(err)
	}
	next := ""
	if len(rs) > f.Limit {
		rs = rs[:f.Limit]
		next = rs[len(rs)-1].ID
	}
	return rs, next, nil
}

// Cancel asks a run to stop, and the runs of sub-flows it started. A
// queued or waiting run is canceled at once; a running one at its next
// check (within about a second), on whichever replica runs it.
func (s *Service) Cancel(ctx context.Context, id, actor string) (*Run, error) {
	r, err := s.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	// A queued or waiting run ends here, without the worker that would
	// redact its input at rest: its redacted input is made first (the
	// load of its secrets commits an audit record, so not inside the
	// transaction) and stored with the cancel. A running one too: the
	// worker may release it to the queue before the cancel lands.
	var input string
	var sealed []byte
	if !r.Finished() {
		if input, sealed, err = s.worker.InputAtRest(ctx, r); err != nil {
			return nil, err
		}
	}
	now := s.now()
	var done bool
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// A run waiting in its on_error handler had failed before the
		// cancel: it ends failed, as when its worker sees the cancel.
		failure, err := executor.HandlerFailure(tx, id)
		if err != nil {
			return err
		}
		if done, err = s.driver.Cancel(tx, id, "canceled by "+actor, now); err != nil || !done {
			return err
		}
		end := []executor.PendingEvent{{Type: "run_finished", Data: map[string]any{"status": StatusCanceled}}}
		if failure != "" {
			if err := tx.Model(&Run{}).Where("id = ?", id).Updates(map[string]any{"status": StatusFailed, "error": executor.HandlerCanceled(failure)}).Error; err != nil {
				return err
			}
			end = []executor.PendingEvent{
				{Type: "on_error_finished", Data: map[string]any{"status": StatusCanceled}},
				{Type: "run_finished", Data: map[string]any{"status": StatusFailed, "error": executor.HandlerCanceled(failure)}},
			}
		}
		if !r.Finished() && (input != r.Input || sealed != nil) {
			if err := tx.Model(&Run{}).Where("id = ?", id).Updates(map[string]any{"input": input, "input_sealed": sealed}).Error; err != nil {
				return err
			}
		}
		if r.ParentRunID != "" {
			// Its parent waits for it: woken, its flow block sees the
			// child canceled, as after a child's own end.
			if err := queue.Wake(tx, r.ParentRunID, now); err != nil {
				return err
			}
		}
		seq, err := s.driver.LastSeq(tx, id)
		if err != nil {
			return err
		}
		rows := s.worker.EventRows(id, &seq, nil, end)
		return tx.CreateInBatches(rows, 100).Error
	})
	if err != nil {
		return nil, store.Translate(err)
	}
	if done {
		s.broker.notify(id)
		if r.ParentRunID != "" {
			s.worker.Poke()
		}
	}
	// The runs its flow blocks started stop with it.
	if err := s.cancelChildren(ctx, id, actor); err != nil {
		return nil, err
	}
	return s.GetRun(ctx, id)
}

// Wait blocks until run id ends or ctx is done, and returns it.
func (s *Service) Wait(ctx context.Context, id string) (*Run, error) {
	ch, cancel := s.broker.subscribe(id)
	defer cancel()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		// ctx bounds the wait, not the reads: a wait over while the run
		// is read (or before, when the ticker and the deadline fire
		// together) still returns the run as it is.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
		r, err := s.GetRun(rctx, id)
		cancel()
		if err != nil || r.Finished() || ctx.Err() != nil {
			return r, err
		}
		select {
		case <-ctx.Done():
			return r, nil
		case <-ch:
		case <-t.C:
		}
	}
}

// readTimeout bounds a read of Wait, whose context may be over.
const readTimeout = 10 * time.Second

// EventView is an event as the API shows it.
type EventView struct {
	Seq   int       `json:"seq"`
	At    time.Time `json:"at"`
	Type  string    `json:"type"`
	Block string    `json:"block,omitempty"`
	Data  any       `json:"data,omitempty"`
}

// Events returns the run's events after seq. The first, run_queued, is
// the run row itself.
func (s *Service) Events(ctx context.Context, r *Run, after int) ([]EventView, error) {
	es, _, err := s.EventsPage(ctx, r, after)
	return es, err
}

// EventsPageSize is how many stored events a page of Events holds (the
// first page also has run_queued, made from the run's row).
const EventsPageSize = 1000

// EventsPage is Events with whether more events follow the page (ask for
// them with after set to the page's last seq).
func (s *Service) EventsPage(ctx context.Context, r *Run, after int) ([]EventView, bool, error) {
	runID := r.ID
	var first []EventView
	if after < 1 {
		first = append(first, queuedEvent(r))
	}
	var es []Event
	err := s.db.WithContext(ctx).Where("run_id = ? AND seq > ?", runID, after).Order("seq").Limit(EventsPageSize + 1).Find(&es).Error
	if err != nil {
		return nil, false, store.Translate(err)
	}
	more := len(es) > EventsPageSize
	if more {
		es = es[:EventsPageSize]
	}
	out := make([]EventView, len(es), len(es)+len(first))
	for i, e := range es {
		out[i] = EventView{Seq: e.Seq, At: e.At, Type: e.Type, Block: e.Block}
		if e.Data != "" {
			var d any
			if json.Unmarshal([]byte(e.Data), &d) == nil {
				out[i].Data = d
			} else {
				out[i].Data = e.Data
			}
		}
	}
	return append(first, out...), more, nil
}

// queuedEvent is the run's first event, made from its row.
func queuedEvent(r *Run) EventView {
	return EventView{Seq: 1, At: r.QueuedAt, Type: "run_queued", Data: map[string]any{
		"flow": r.Flow, "version": r.FlowVersion, "environment": r.Environment, "trigger": r.Trigger}}
}

// Follow calls emit for each event of runID as it is stored, from after
// on, until the run has ended and all its events are delivered, or ctx is
// done.
func (s *Service) Follow(ctx context.Context, runID string, after int, emit func(EventView) error) error {
	ch, cancel := s.broker.subscribe(runID)
	defer cancel()
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		r, err := s.GetRun(ctx, runID)
		if err != nil {
			return err
		}
		for {
			es, err := s.Events(ctx, r, after)
			if err != nil {
				return err
			}
			for _, e := range es {
				if err := emit(e); err != nil {
					return err
				}
				after = e.Seq
			}
			if len(es) < 1000 {
				break
			}
		}
		if r.Finished() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-t.C:
		}
	}
}

// RunView is a run as the API shows it (model.RunView).
type RunView = model.RunView

// ownLimit is f's own max_concurrent_runs, 0 when it has none (its plan
// read in tx on a miss of the cache: see plan.Cache.GetIn).
func (s *Service) ownLimit(ctx context.Context, tx *gorm.DB, f *Flow) int {
	if p, err := s.plans.GetIn(ctx, tx, f.ID, f.Version); err == nil {
		return p.Def.MaxConcurrentRuns
	}
	return 0
}

// checkConcurrency refuses a new run when the flow already has its limit
// of runs queued or running: ownLimit (ownLimit's answer) when the flow
// has one, the server-wide default otherwise. limited reports whether the
// flow has a limit of its own (max_concurrent_runs).
func (s *Service) checkConcurrency(ctx context.Context, tx *gorm.DB, f *Flow, ownLimit int) (limited bool, err error) {
	limit, own := s.cfg.MaxConcurrentRuns, false
	if ownLimit > 0 {
		limit, own = ownLimit, true
	}
	// A flow's own limit is counted on every enqueue. The server-wide
	// default is a safety bound: while a flow is under half of it, it is
	// counted at most once a second by each process.
	var c *concurrencyCount
	if !own {
		c = s.countOf(f.ID)
		if c.skip(limit) {
			return false, nil
		}
	}
	var n int64
	err = tx.WithContext(ctx).Model(&Run{}).Where("flow_id = ? AND "+model.OpenSQL, f.ID).
		Count(&n).Error
	if err != nil {
		return own, store.Translate(err)
	}
	if c != nil {
		c.counted(n)
	}
	if n >= int64(limit) {
		return own, apperr.New(apperr.RateLimited, "too_many_runs",
			"flow %q already has %d runs queued, running or waiting, its limit (max_concurrent_runs); retry when some have finished", f.Name, limit)
	}
	return own, nil
}

// concurrencyCount is the last count of a flow's open runs and the runs
// this process queued since.
type concurrencyCount struct {
	mu    sync.Mutex // guards the fields
	at    time.Time
	n     int64
	since int64
}

// skip reports whether the count may be skipped for one more run: the
// last count is under a second old and, with the runs queued since, under
// half of limit.
func (c *concurrencyCount) skip(limit int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < time.Second && 2*(c.n+c.since+1) <= int64(limit) {
		c.since++
		return true
	}
	return false
}

func (c *concurrencyCount) counted(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at, c.n, c.since = time.Now(), n, 0
}

// knownEnvironment checks that an environment exists. Environments are
// never deleted, so a name once found is remembered.
func (s *Service) knownEnvironment(ctx context.Context, name string) error {
	if _, ok := s.envs.Get(name); ok {
		return nil
	}
	if _, err := s.cfg.Projects.GetEnvironment(ctx, name); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			var names []string
			if es, err := s.cfg.Projects.Environments(ctx); err == nil {
				for _, e := range es {
					names = append(names, e.Name)
				}
			}
			return apperr.Invalidf("unknown_environment", "unknown environment %s; create it first or use one of: %s",
				apperr.Echo(name), strings.Join(names, ", "))
		}
		return err
	}
	s.envs.Add(name, true)
	return nil
}

// countOf returns the concurrency count of flow id, adding one.
func (s *Service) countOf(id string) *concurrencyCount {
	if c, ok := s.counts.Get(id); ok {
		return c
	}
	c := &concurrencyCount{}
	if prev, ok, _ := s.counts.PeekOrAdd(id, c); ok {
		return prev
	}
	return c
}
