// Package executor runs claimed runs: block by block with the engine,
// checkpointing each finished block, storing every event redacted, and
// ending each claim in exactly one way (finished, waiting, released or
// given up). A Worker is one process's share of the run queue: its claim
// loop, its drain on shutdown and its heartbeat.
//
// The life of a claim:
//
//  1. The claim loop takes due runs (queue.Driver.Claim) while it has free
//     slots, each in its own goroutine.
//  2. execute loads the flow's plan and the run's secrets; a resumed run
//     also restores its steps from its checkpoints and numbers its events
//     after the stored ones.
//  3. Each block runs (condition, config, attempts); when it finishes, its
//     checkpoint and events are stored in one durable write before the
//     next block starts. A block that is not safe to repeat records that
//     it is about to act before it does.
//  4. The claim ends: finish (the outcome, with the last events), suspend
//     (a durable wait), release (the worker is stopping) or give up (the
//     lease was lost, or the database stayed away).
package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/plan"
	"github.com/hushflow/hushflow/flows/queue"
	"github.com/hushflow/hushflow/internal/beat"
	"github.com/hushflow/hushflow/internal/cores"
	"github.com/hushflow/hushflow/redact"
	"github.com/hushflow/hushflow/store"
)

// Sealer encrypts what runs keep at rest (checkpointed block outputs):
// envelope encryption under the keyring, bound to aad. Implemented over
// the secret store's keyring by the composition root.
type Sealer interface {
	SealBlob(aad, plaintext []byte) ([]byte, error)
	OpenBlob(aad, blob []byte) ([]byte, error)
}

// Plans gives the compiled plan of a flow version (*plan.Cache).
type Plans interface {
	Get(ctx context.Context, flowID string, version int) (*plan.Plan, error)
}

// Config is everything a Worker needs, given once to New. Zero values of
// the tuning fields take the documented defaults.
type Config struct {
	DB     *store.DB
	Driver queue.Driver
	Plans  Plans
	// Secrets is the secret store; nil gives runs no secrets.
	Secrets model.Secrets
	// Sealer encrypts checkpoints; required.
	Sealer Sealer
	// Engine compiles and runs the scripts blocks ask for (an app's
	// config fields, say) and the editor's previews.
	Engine   *engine.Engine
	Registry *blocks.Registry
	// BlockEnv is given to blocks at Provision.
	BlockEnv *blocks.Env
	// Batcher stores events, checkpoints and outcomes; Start makes one
	// when nil.
	Batcher *store.Batcher
	Logger  *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	// NewHTTPClient builds a run's HTTP client from the run's secret host
	// pins: allowed returns the current map of a secret name to its hosts
	// (it grows as the run reads pinned values of other scopes), match
	// finds secret names in text, onRefuse is called when a request is
	// refused. Nil gives blocks no network.
	NewHTTPClient func(allowed func() map[string][]string, match func(string) []string, onRefuse func(secret, host string)) *http.Client
	// OnPinRefused is called when a request of a run was refused because
	// it would carry a pinned secret to another host (for the audit), with
	// the host as the run's redactor shows it.
	OnPinRefused func(r *model.Run, secret, host string)
	// OnRunFinished is called when a run ends (metrics).
	OnRunFinished func(r *model.Run, status string, d time.Duration)
	// OnBlockFinished is called when a block ends, retries included
	// (metrics); status is succeeded or failed.
	OnBlockFinished func(r *model.Run, blockType, status string, d time.Duration)
	// OnExposure is called, after the events that showed it are stored,
	// for each secret value a run found where it should never be (see
	// model.Exposure), once per run claim, block, sink and secret; an
	// error is logged and the exposure reported again after the next
	// write. It records the exposure in the audit trail and marks the
	// secret (it must itself keep one record per run, block, sink and
	// secret: a resumed run may report a repeated block's again).
	OnExposure func(ctx context.Context, e model.Exposure) error
	// OnRedacted is called with the number of masks applied to stored
	// events and outputs (metrics).
	OnRedacted func(n int)
	// OnStarted is called when this worker starts a run (metrics); how
	// is dispatched (queued through this process into a free slot,
	// Reserve) or claimed (by the claim loop).
	OnStarted func(how string)
	// OnResumed is called when a run resumes after an interruption
	// (metrics); cause is shutdown, lease or other.
	OnResumed func(r *model.Run, cause string)
	// OnEvents is called when events of runID were stored (live
	// followers in this process).
	OnEvents func(runID string)
	// TestUnmaskedEvents stores events without masking them. It exists
	// for the tests that prove the redaction self-test (hushflow doctor
	// redaction) reports a sink that leaks; no flag or environment
	// variable sets it.
	TestUnmaskedEvents bool
	// Children starts the runs of sub-flows (the flow block); nil runs
	// none.
	Children ChildRuns

	// Workers is the number of runs executed at once (default 64).
	Workers int
	// Lease is how long a claimed run stays with this worker without a
	// heartbeat (default 30s).
	Lease time.Duration
	// Poll is the idle wait between claims (default 50ms). While claims
	// find nothing it doubles, up to MaxPoll; a run queued or rescued in
	// this process, a run queued or released by another (PostgreSQL), a
	// run ending while runs may wait for a slot, or a waiting run's time,
	// wakes the loop at once and brings it back to Poll.
	Poll time.Duration
	// MaxPoll bounds the idle wait (default 1s). On SQLite every run is
	// queued through this process, which wakes the loop; on PostgreSQL
	// the database announces every queued run to every claim loop
	// (Driver.Listen), and the poll is the safety net for a notification
	// lost while a listener reconnects.
	MaxPoll time.Duration
	// ShutdownGrace is how long a stopping worker lets its runs go on
	// before it releases them (default 30s).
	ShutdownGrace time.Duration
	// MaxResumes bounds the resumes of a run after interruptions
	// (default 10).
	MaxResumes int
	// SleepOver is the longest wait a block does in process (default 5s).
	SleepOver time.Duration
	// MaxEventBytes bounds one stored event's data (default 64 KiB).
	MaxEventBytes int
	// MaxEventsPerRun bounds the events stored per run (default 10,000).
	MaxEventsPerRun int
	// DefaultBlockTimeout applies to blocks without a timeout (30s).
	DefaultBlockTimeout time.Duration
	// MaxEachItems bounds the elements a block with each accepts
	// (default 1,000); a block's max_items may lower it.
	MaxEachItems int
	// Cores, when set, counts the runs in flight here.
	Cores *cores.Governor
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = 50 * time.Millisecond
	}
	if c.MaxPoll <= 0 {
		c.MaxPoll = time.Second
	}
	c.MaxPoll = max(c.MaxPoll, c.Poll)
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.MaxResumes <= 0 {
		c.MaxResumes = 10
	}
	if c.SleepOver <= 0 {
		c.SleepOver = 5 * time.Second
	}
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = 64 << 10
	}
	if c.MaxEventsPerRun <= 0 {
		c.MaxEventsPerRun = 10000
	}
	if c.DefaultBlockTimeout <= 0 {
		c.DefaultBlockTimeout = 30 * time.Second
	}
	if c.MaxEachItems <= 0 {
		c.MaxEachItems = 1000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BlockEnv == nil {
		c.BlockEnv = &blocks.Env{}
	}
	if c.Registry == nil {
		c.Registry = blocks.Default
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Engine == nil {
		c.Engine = engine.New(engine.Config{})
	}
	if c.Driver == nil && c.DB != nil {
		c.Driver = queue.New(c.DB)
	}
}

// Worker executes runs claimed from the queue.
type Worker struct {
	cfg   Config
	log   *slog.Logger
	owner string // this process's lease owner id
	// quiet thins the warnings that repeat while the database is away.
	quiet quietLog
	// drain is closed when the worker begins to drain (stop).
	drain chan struct{}

	redactors *redactorCache
	// derivers shares the indexes of the values runs read (the sources
	// of derived values; see guard.derive) between runs that read the
	// same secrets.
	derivers *redact.DeriverCache
	wake     chan struct{}
	// disp is how runs are started while the claim loop runs (nil before
	// and once it drains); guarded by dispMu.
	dispMu sync.Mutex
	disp   *dispatch
	// claiming holds a token while the claim loop holds the free slots
	// for a claim, so that Reserve waits for the slots it gives back
	// rather than queue its run for the next claim; for at most
	// reserveWait, after which (a claim the database is slow to answer)
	// the run is queued.
	claiming    chan struct{}
	reserveWait time.Duration
	// backlog says due runs may wait for a slot: the last claim took as
	// many as it could, or the slots were full. A run that ends then
	// wakes the claim loop; otherwise it does not (a run queued through
	// this process wakes it, and the poll finds those of other replicas).
	backlog atomic.Bool
	// started is closed when Start's claim loop begins.
	started     chan struct{}
	startedOnce sync.Once
	health      health
}

// New returns a Worker; Start runs it.
func New(cfg Config) *Worker {
	cfg.defaults()
	return &Worker{
		cfg: cfg, log: cfg.Logger,
		owner:     uuid.NewString()[:8],
		redactors: newRedactorCache(),
		derivers:  redact.NewDeriverCache(maxCachedDerivers),
		wake:      make(chan struct{}, 1),
		started:   make(chan struct{}),
		drain:     make(chan struct{}),
		claiming:  make(chan struct{}, 1),
		// A claim takes a few milliseconds; one that takes longer is
		// waiting for the database, which the run's insert would too.
		reserveWait: time.Second,
	}
}

// Owner is this worker's lease owner id (the `worker` of run events).
func (w *Worker) Owner() string { return w.owner }

// Settings are the worker's effective settings, defaults applied, as
// key-value pairs for a log line.
func (w *Worker) Settings() []any {
	c := w.cfg
	return []any{"workers", c.Workers, "run_lease", c.Lease.String(), "shutdown_grace", c.ShutdownGrace.String(), "max_resumes", c.MaxResumes}
}

// Started is closed when the claim loop begins, for tests and tools that
// must not race it.
func (w *Worker) Started() <-chan struct{} { return w.started }

// Poke wakes the claim loop (a run was queued through this process).
func (w *Worker) Poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Worker) now() time.Time { return w.cfg.Now().UTC() }

func (w *Worker) notify(runID string) {
	if w.cfg.OnEvents != nil {
		w.cfg.OnEvents(runID)
	}
}

// Start runs the claim loop until ctx is done, with the heartbeat beside
// it. When ctx is done it drains: it claims nothing more, lets the runs in
// progress go on for Config.ShutdownGrace, then stops the rest, which
// release themselves (their finished blocks checkpointed) to be resumed by
// any replica. It returns when every run it started has returned.
func (w *Worker) Start(ctx context.Context) {
	if w.cfg.Sealer == nil {
		panic("executor: Start needs Config.Sealer (checkpoints are sealed at rest)")
	}
	batcher := w.cfg.Batcher
	if batcher == nil {
		batcher = store.NewBatcher(w.cfg.DB)
		defer batcher.Close()
	}
	// The heartbeat and the runs' writes outlive ctx: the heartbeat stops
	// when the runs have drained, the writes' retries at the end of the
	// grace (hard).
	hard, stopHard := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHard()
	running := newRunningSet()
	hb := &heartbeat{w: w, running: running}
	hb.Start(context.WithoutCancel(ctx))
	defer hb.Stop()
	var runs sync.WaitGroup
	// Runs queued or released by other processes wake the loop.
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		w.cfg.Driver.Listen(ctx, w.cfg.DB.DB, w.Poke, w.log)
	}()
	defer func() { <-listening }()
	w.health.mark()
	w.health.started.Store(true)
	w.startedOnce.Do(func() { close(w.started) })
	slots := make(chan struct{}, w.cfg.Workers)
	d := &dispatch{ctx: ctx, hard: hard, running: running, runs: &runs, slots: slots, batcher: batcher,
		runners: make(chan func()), ended: make(chan struct{})}
	defer close(d.ended) // after the runs returned (below)
	w.dispMu.Lock()
	w.disp = d
	w.dispMu.Unlock()
	// The idle wait doubles while claims find nothing: an idle server
	// claims once a MaxPoll instead of 20 times a second, on the process's
	// beat (with its other periodic work: package beat).
	poll := w.cfg.Poll
	idle := func() {
		wait := poll
		if poll >= w.cfg.MaxPoll {
			wait = beat.Until(poll)
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-w.wake:
			poll = w.cfg.Poll
		case <-t.C:
			poll = min(2*poll, w.cfg.MaxPoll)
		}
	}
	for ctx.Err() == nil {
		w.health.mark()
		// The free slots are taken before the claim (runs queued through
		// this process meanwhile take theirs too: Reserve), and those the
		// claim did not fill are given back.
		w.claiming <- struct{}{}
		free := 0
	take:
		for free < cap(slots) {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break take
			}
		}
		if free == 0 {
			<-w.claiming
			w.backlog.Store(true)
			idle()
			continue
		}
		claimed, err := w.claim(ctx, free)
		for range free - len(claimed) {
			<-slots
		}
		<-w.claiming
		if err != nil {
			w.warnQuiet("claim runs", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		w.backlog.Store(len(claimed) == free)
		for i := range claimed {
			runs.Add(1)
			w.countStart("claimed")
			w.launch(d, &claimed[i], nil)
		}
		if len(claimed) == 0 {
			idle()
		} else {
			poll = w.cfg.Poll
		}
	}
	// Draining: no more claims nor reservations. Runs in progress get the
	// grace period, then are stopped and release themselves.
	w.dispMu.Lock()
	w.disp = nil
	w.dispMu.Unlock()
	w.health.draining.Store(true)
	close(w.drain)
	defer w.health.stopped.Store(true)
	if n := len(running.ids()); n > 0 {
		w.log.Info("draining: waiting for the runs in progress", "runs", n, "grace", w.cfg.ShutdownGrace.String())
	}
	done := make(chan struct{})
	go func() { runs.Wait(); close(done) }()
	grace := time.NewTimer(w.cfg.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		if ids := running.ids(); len(ids) > 0 {
			w.log.Info("drain grace over: releasing the runs still in progress (another replica, or this one when it starts again, resumes them)", "runs", len(ids))
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
}

// dispatch is what starts runs while the claim loop runs.
type dispatch struct {
	ctx, hard context.Context
	running   *runningSet
	runs      *sync.WaitGroup
	slots     chan struct{}
	batcher   *store.Batcher
	// runners hands a run to the goroutine of a run that ended, which
	// waits for the next until ended is closed (runner).
	runners chan func()
	ended   chan struct{}
}

// runner runs job, then the jobs start hands it, until the dispatch
// ends. A run's goroutine grows its stack from the runtime's starting
// size to what the engine and the database drivers need, copying it at
// each doubling: with a new goroutine per run that was 4.5% of a run's
// CPU at 30 runs/s (docs/performance.md, "seventh round"); a runner keeps
// its stack for the next run (the GC shrinks what stays unused).
func (d *dispatch) runner(job func()) {
	for {
		job()
		select {
		case job = <-d.runners:
		case <-d.ended:
			return
		}
	}
}

// start runs job on a runner between runs, or on a new one.
func (d *dispatch) start(job func()) {
	select {
	case d.runners <- job:
	default:
		go d.runner(job)
	}
}

// launch executes run r in a slot already taken (and counted in d.runs).
// With insert, r is not stored yet: it joins the runs the heartbeat
// keeps (and cancels) once its first commit stored it.
func (w *Worker) launch(d *dispatch, r *model.Run, insert *pendingInsert) {
	rctx, cancel := context.WithCancelCause(withRunID(context.WithoutCancel(d.ctx), r.ID))
	if insert == nil {
		d.running.add(r.ID, cancel)
	} else {
		insert.stored = func() { d.running.add(r.ID, cancel) }
	}
	w.cfg.Cores.Enter()
	d.start(func() {
		defer d.runs.Done()
		defer func() {
			w.cfg.Cores.Leave()
			<-d.slots
			d.running.remove(r.ID)
			cancel(nil)
			if w.backlog.Load() {
				w.Poke()
			}
		}()
		w.execute(rctx, d.hard, r, d.batcher, insert)
	})
}

// Reservation is a slot of this worker taken for a run about to be queued
// through this process (Reserve): the run is inserted already claimed,
// and starts here at once, without a claim nor a wake-up of the claim
// loop.
type Reservation struct {
	w    *Worker
	d    *dispatch
	done bool
}

// Reserve takes a free slot for a run this process is about to queue,
// when the claim loop runs and no due run may be waiting for a slot
// (which would otherwise be passed). nil when it cannot: the run is then
// queued for the claim loop. The caller inserts the run with Claim's
// fields, then calls Start, or Cancel if the insert failed.
func (w *Worker) Reserve() *Reservation {
	if w.backlog.Load() {
		return nil
	}
	w.dispMu.Lock()
	defer w.dispMu.Unlock()
	d := w.disp
	if d == nil || w.backlog.Load() { // (set meanwhile: one gave up)
		return nil
	}
	if !w.takeSlot(d) {
		w.backlog.Store(true)
		return nil
	}
	d.runs.Add(1)
	return &Reservation{w: w, d: d}
}

// takeSlot takes a free slot of d. When there is none it waits for a
// claim in progress to give back those it did not fill (for at most
// reserveWait), and tries again.
func (w *Worker) takeSlot(d *dispatch) bool {
	select {
	case d.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(w.reserveWait)
	defer t.Stop()
	select {
	case w.claiming <- struct{}{}:
		defer func() { <-w.claiming }()
	case <-t.C:
		return false
	}
	select {
	case d.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// Claim sets on r (a run about to be inserted) the fields of its first
// claim by this worker, as Driver.Claim would.
func (v *Reservation) Claim(r *model.Run) {
	now := v.w.now()
	until := now.Add(v.w.cfg.Lease)
	r.Status, r.LeaseOwner, r.LeaseExpiresAt, r.StartedAt, r.Attempt = model.StatusRunning, v.w.owner, &until, &now, 1
}

// Start executes run r, inserted as Claim set it. r is the worker's own
// copy from then on.
func (v *Reservation) Start(r *model.Run) {
	if v.done {
		return
	}
	v.done = true
	v.w.countStart("dispatched")
	v.w.launch(v.d, r, nil)
}

// StartInserting executes run r, not yet stored, as Claim set it: the
// run's first commit stores it with insert (a store.RowsInserter), before
// any block acts (see pendingInsert). It returns once that commit is
// over, with its error: a run whose insert failed is dropped, nothing of
// it stored. r is the worker's own copy from the call on.
func (v *Reservation) StartInserting(r *model.Run, insert any) error {
	if v.done {
		return errors.New("executor: reservation already used")
	}
	v.done = true
	v.w.countStart("dispatched")
	p := newPendingInsert(insert, v.d.batcher)
	v.w.launch(v.d, r, p)
	return p.wait()
}

func (w *Worker) countStart(how string) {
	if w.cfg.OnStarted != nil {
		w.cfg.OnStarted(how)
	}
}

// Cancel gives the slot back (the run was not inserted). A no-op after
// Start.
func (v *Reservation) Cancel() {
	if v.done {
		return
	}
	v.done = true
	<-v.d.slots
	v.d.runs.Done()
}

// claim takes up to n due runs. The statement runs to its end even when
// ctx is cancelled (a claim cancelled half-way could commit and lose the
// rows it returned).
func (w *Worker) claim(ctx context.Context, n int) ([]model.Run, error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	now := w.now()
	return w.cfg.Driver.Claim(w.cfg.DB.WithContext(cctx), w.owner, n, now, now.Add(w.cfg.Lease))
}

type runningSet struct {
	mu sync.Mutex // guards m
	m  map[string]context.CancelCauseFunc
	// started has a value when a run was added to the empty set (it
	// wakes the heartbeat).
	started chan struct{}
	// stopped is cancelAll's cause, for the runs added after it (a run
	// stored after the drain's grace ended).
	stopped error
}

func newRunningSet() *runningSet {
	return &runningSet{m: map[string]context.CancelCauseFunc{}, started: make(chan struct{}, 1)}
}

func (r *runningSet) add(id string, c context.CancelCauseFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) == 0 {
		select {
		case r.started <- struct{}{}:
		default:
		}
	}
	r.m[id] = c
	if r.stopped != nil {
		c(r.stopped)
	}
}

func (r *runningSet) empty() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.m) == 0
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
	r.stopped = cause
	for _, c := range r.m {
		c(cause)
	}
}

// health tracks the claim loop for readiness.
type health struct {
	started  atomic.Bool
	draining atomic.Bool
	stopped  atomic.Bool
	beat     atomic.Int64 // unix nanoseconds of the last loop iteration
}

func (h *health) mark() { h.beat.Store(time.Now().UnixNano()) }

// StallAfter is how long the claim loop may go without an iteration
// before Healthy reports it stalled.
const StallAfter = 30 * time.Second

// Healthy reports whether this worker takes runs: nil when the claim loop
// ran within StallAfter, or when Start was never called (an API-only
// replica); an error while it drains or after it stopped.
func (w *Worker) Healthy() error {
	h := &w.health
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

// observe logs a finished run and reports it to the metrics hook.
func (w *Worker) observe(r *model.Run, status string, at time.Time) {
	var d time.Duration
	if r.StartedAt != nil {
		d = at.Sub(*r.StartedAt)
	}
	w.log.Info("run finished", "run_id", r.ID, "project", r.Project, "flow", r.Flow, "environment", r.Environment,
		"status", status, "duration_ms", d.Milliseconds())
	if w.cfg.OnRunFinished != nil {
		w.cfg.OnRunFinished(r, status, d)
	}
}

var errLeaseLost = errors.New("the run's lease was lost (its worker stopped renewing it, and another worker or the rescuer took the run)")

// errShutdown stops the runs of a worker that is stopping after its drain
// grace; they are released to be resumed elsewhere.
var errShutdown = errors.New("this Hushflow replica is shutting down")

// errCanceled ends a run canceled through the API; canceled gives it the
// reason the run ends with.
var errCanceled = errors.New("run canceled")

// canceledError is errCanceled with who asked ("canceled by ana").
type canceledError struct{ reason string }

func (e *canceledError) Error() string        { return e.reason }
func (e *canceledError) Is(target error) bool { return target == errCanceled }

// canceled is the cause of a run canceled for reason (the run's
// cancel_reason; "canceled" when it has none, as a run asked before
// reasons were kept).
func canceled(reason string) error {
	if reason == "" {
		reason = "canceled"
	}
	return &canceledError{reason: reason}
}

// cancelReason is the error text of a run that ends canceled by err.
func cancelReason(err error) string {
	var ce *canceledError
	if errors.As(err, &ce) {
		return ce.reason
	}
	return "canceled"
}

// releaseReason says why a stopped worker released a run.
func (w *Worker) releaseReason() string {
	return fmt.Sprintf("worker %s shut down before the run ended (after its drain grace of %s)", w.owner, w.cfg.ShutdownGrace)
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

// drainingWithin reports whether the worker drains, or begins to within d:
// a stop signal sent to every process of the service reaches a block's
// command at the moment it reaches this process, which begins to drain a
// little later.
func (w *Worker) drainingWithin(ctx context.Context, d time.Duration) bool {
	if w.drain == nil {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.drain:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}
