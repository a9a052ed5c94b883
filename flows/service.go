// Package flows turns flow definitions into runs. It is the facade over
// the stages of the subpackages, the way expr's Compile calls its parser,
// checker and compiler:
//
//   - model: flows, runs, events, checkpoints, definitions;
//   - plan: validation and compilation of definitions, the plan cache;
//   - queue: the run queue on PostgreSQL or SQLite (claims, leases,
//     rescue, outcomes), behind a Driver, and the Rescuer service;
//   - executor: the Worker that runs claimed runs block by block, with
//     checkpoints, redacted events, drain and the heartbeat;
//   - triggers: schedules (the Scheduler service), events and webhooks.
//
// Service keeps flows and their versions, queues and answers for runs,
// and starts the workers and background services of this process.
package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/executor"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/plan"
	"github.com/hushflow/hushflow/flows/queue"
	"github.com/hushflow/hushflow/flows/triggers"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/internal/cores"
	"github.com/hushflow/hushflow/internal/suggest"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// The vocabulary of package model, under the names callers of the facade
// use.
type (
	Flow           = model.Flow
	FlowVersion    = model.FlowVersion
	Run            = model.Run
	Event          = model.Event
	Definition     = model.Definition
	Trigger        = model.Trigger
	BlockDef       = model.BlockDef
	Retry          = model.Retry
	RunRequest     = model.RunRequest
	ChildView      = model.ChildView
	Secrets        = model.Secrets
	RunSecrets     = model.RunSecrets
	VisibleSecret  = model.VisibleSecret
	ResolveRequest = model.ResolveRequest
	Exposure       = model.Exposure
	Problem        = plan.Problem
	InvalidError   = plan.InvalidError
	Source         = plan.Source
	Sealer         = executor.Sealer
)

// Run statuses (see package model).
const (
	StatusQueued    = model.StatusQueued
	StatusRunning   = model.StatusRunning
	StatusWaiting   = model.StatusWaiting
	StatusSucceeded = model.StatusSucceeded
	StatusFailed    = model.StatusFailed
	StatusCanceled  = model.StatusCanceled
)

// ParseDefinition decodes a definition strictly (plan.ParseDefinition).
func ParseDefinition(data []byte) (Definition, error) { return plan.ParseDefinition(data) }

// ParseYAMLDefinition decodes a YAML definition; the Source locates
// later problems in the document (plan.ParseYAMLDefinition).
func ParseYAMLDefinition(data []byte) (Definition, *Source, error) {
	return plan.ParseYAMLDefinition(data)
}

// RunID returns the id of the run whose block made ctx, or "".
func RunID(ctx context.Context) string { return executor.RunID(ctx) }

// Config is everything the service needs, given once to New. Zero values
// of the tuning fields take the documented defaults.
type Config struct {
	DB       *store.DB
	Projects *projects.Service
	// Secrets is the secret store; nil gives runs no secrets.
	Secrets Secrets
	// Registry is the set of block types this server runs
	// (blocks.Default when nil; the composition root disables exec).
	Registry *blocks.Registry
	// Engine compiles and runs expressions and code blocks (with its
	// sandbox); nil: an engine without a sandbox.
	Engine *engine.Engine
	// BlockEnv is given to blocks at Provision.
	BlockEnv *blocks.Env
	// Sealer encrypts checkpoints; Start needs it.
	Sealer Sealer
	Logger *slog.Logger
	// Batcher stores the events, checkpoints and outcomes of runs; sharing
	// it with the secret store's audit puts their records in the same
	// transactions. Nil: Start uses one of its own.
	Batcher *store.Batcher
	// Now is the clock (time.Now when nil). Queue times, leases and
	// durable waits are read from it, so that tests can move time.
	Now func() time.Time

	// TestUnmaskedEvents stores run events unmasked: only for the tests
	// of the redaction self-test (see executor.Config).
	TestUnmaskedEvents bool
	// NewHTTPClient builds a run's HTTP client (see executor.Config).
	NewHTTPClient func(allowed func() map[string][]string, match func(string) []string, onRefuse func(secret, host string)) *http.Client
	// OnPinRefused, OnRunFinished, OnBlockFinished, OnRedacted,
	// OnResumed and OnStarted report to the audit and the metrics (see
	// executor.Config).
	OnPinRefused    func(r *Run, secret, host string)
	OnRunFinished   func(r *Run, status string, d time.Duration)
	OnBlockFinished func(r *Run, blockType, status string, d time.Duration)
	OnRedacted      func(n int)
	OnResumed       func(r *Run, cause string)
	OnStarted       func(how string)
	// OnExposure records a secret value a run found where it should
	// never be (see executor.Config.OnExposure).
	OnExposure func(ctx context.Context, e Exposure) error

	// Workers is the number of runs executed at once by this process
	// (default 64: runs mostly wait on the network and the database).
	Workers int
	// Poll and MaxPoll are the claim loop's idle waits (see
	// executor.Config; defaults 50ms doubling up to 1s).
	Poll, MaxPoll time.Duration
	// Lease is how long a claimed run stays with its worker without a
	// heartbeat (default 30s); a run whose lease expired is queued again
	// to resume on any replica.
	Lease time.Duration
	// ShutdownGrace is how long a stopping worker lets its runs go on
	// before it releases them to other replicas (default 30s).
	ShutdownGrace time.Duration
	// MaxResumes bounds the times a run is resumed after an interruption;
	// one more interruption fails it (default 10).
	MaxResumes int
	// MaxEachItems bounds the elements of a block with each (default
	// 1,000); a block's max_items may lower it.
	MaxEachItems int
	// Cores, when set, counts the runs in flight in this process.
	Cores *cores.Governor
	// SleepOver is the longest wait a block does in process; a longer one
	// (a delay) releases the worker (default 5s).
	SleepOver time.Duration
	// MaxInput bounds a run's input, as JSON (default 256 KiB).
	MaxInput int
	// MaxEventBytes bounds one stored event's data (default 64 KiB).
	MaxEventBytes int
	// MaxEventsPerRun bounds the events stored per run (default 10,000).
	MaxEventsPerRun int
	// DefaultBlockTimeout applies to blocks without a timeout (30s).
	DefaultBlockTimeout time.Duration
	// MaxConcurrentRuns is the default bound on a flow's open runs
	// (default 10,000); a flow may set a lower or higher one.
	MaxConcurrentRuns int
	// Retention is how long a run is kept after it ended: the workers'
	// replicas delete older ones, with their events, every hour (0: runs
	// are kept for ever).
	Retention time.Duration
	// AuditRetention is how long the secrets audit keeps the records of
	// reads (secrets.ReadActions): the workers' replicas delete older
	// ones every hour with PruneAudit (0 or no PruneAudit: kept for
	// ever). The other records are kept.
	AuditRetention time.Duration
	// PruneAudit deletes the audit records of reads made before before
	// (secrets.Store.PruneReads).
	PruneAudit func(ctx context.Context, before time.Time) (int, error)
	// OnPruned reports the runs a prune deleted (the metrics).
	OnPruned func(n int)
}

func (c *Config) defaults() {
	if c.MaxInput <= 0 {
		c.MaxInput = 256 << 10
	}
	if c.MaxConcurrentRuns <= 0 {
		c.MaxConcurrentRuns = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
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
}

// Service keeps flows and runs, and executes runs when started.
type Service struct {
	cfg      Config
	db       *store.DB
	log      *slog.Logger
	plans    *plan.Cache
	driver   queue.Driver
	worker   *executor.Worker
	triggers *triggers.Triggers
	broker   *broker

	// counts holds the last count of the open runs of the flows queued
	// to most recently (checkConcurrency).
	counts *lru.Cache[string, *concurrencyCount]
	// envs remembers environment names known to exist (never deleted).
	envs *lru.Cache[string, bool]
}

// New returns a Service.
func New(cfg Config) *Service {
	cfg.defaults()
	s := &Service{cfg: cfg, db: cfg.DB, log: cfg.Logger, broker: newBroker(),
		plans:  plan.NewCache(cfg.DB, cfg.Registry, cfg.Engine),
		driver: queue.New(cfg.DB),
	}
	// Only a size < 1 is an error.
	s.counts, _ = lru.New[string, *concurrencyCount](4096)
	s.envs, _ = lru.New[string, bool](1024)
	s.worker = executor.New(executor.Config{
		DB: cfg.DB, Driver: s.driver, Plans: s.plans, Secrets: cfg.Secrets, Sealer: cfg.Sealer, Engine: cfg.Engine,
		Registry: cfg.Registry, BlockEnv: cfg.BlockEnv, Batcher: cfg.Batcher, Logger: cfg.Logger, Now: cfg.Now,
		NewHTTPClient: cfg.NewHTTPClient, OnPinRefused: cfg.OnPinRefused, OnRunFinished: cfg.OnRunFinished,
		OnBlockFinished: cfg.OnBlockFinished, OnRedacted: cfg.OnRedacted, OnResumed: cfg.OnResumed,
		OnStarted:  cfg.OnStarted,
		OnExposure: cfg.OnExposure,
		OnEvents:   s.broker.notify, Children: s,
		Workers: cfg.Workers, Poll: cfg.Poll, MaxPoll: cfg.MaxPoll, Lease: cfg.Lease, ShutdownGrace: cfg.ShutdownGrace, MaxResumes: cfg.MaxResumes,
		SleepOver: cfg.SleepOver, MaxEventBytes: cfg.MaxEventBytes, MaxEventsPerRun: cfg.MaxEventsPerRun,
		DefaultBlockTimeout: cfg.DefaultBlockTimeout, MaxEachItems: cfg.MaxEachItems, Cores: cfg.Cores,
		TestUnmaskedEvents: cfg.TestUnmaskedEvents,
	})
	var signing triggers.SigningSecrets
	if cfg.Secrets != nil {
		signing = cfg.Secrets
	}
	s.triggers = triggers.New(triggers.Config{DB: cfg.DB, Plans: s.plans, Secrets: signing, Enqueue: s.enqueue,
		Logger: cfg.Logger, Now: cfg.Now})
	return s
}

// now is the service's clock, in UTC.
func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// Start runs this process's share of the queue until ctx is done: the
// worker (claim loop, heartbeat, drain), the rescuer, the scheduler and,
// with a retention, the prune of old runs and audit records.
// It returns when the worker has drained (see executor.Worker.Start).
func (s *Service) Start(ctx context.Context) {
	rescuer := queue.NewRescuer(queue.RescuerConfig{DB: s.db, Driver: s.driver, Every: s.rescueEvery(), Now: s.cfg.Now,
		Logger: s.log, OnRescued: func([]string) { s.worker.Poke() }})
	scheduler := s.triggers.Scheduler()
	rescuer.Start(ctx)
	scheduler.Start(ctx)
	defer rescuer.Stop()
	defer scheduler.Stop()
	if s.cfg.Retention > 0 || s.cfg.AuditRetention > 0 && s.cfg.PruneAudit != nil {
		pctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); s.prune(pctx) }()
		defer func() { stop(); <-done }()
	}
	s.worker.Start(ctx)
}

// rescueEvery is how often the rescuer looks for runs whose lease
// expired: a quarter of the lease, between 1 and 5 seconds.
func (s *Service) rescueEvery() time.Duration {
	lease := s.cfg.Lease
	if lease <= 0 {
		lease = 30 * time.Second
	}
	return min(max(lease/4, time.Second), 5*time.Second)
}

// WorkerID is this process's worker id: the `worker` of run events and
// the lease owner that resume reasons name.
func (s *Service) WorkerID() string { return s.worker.Owner() }

// Settings are the effective settings of runs in this process, defaults
// applied, as key-value pairs for a log line (the worker's, and the
// default bound on a flow's open runs).
func (s *Service) Settings() []any {
	return append(s.worker.Settings(), "max_concurrent_runs", s.cfg.MaxConcurrentRuns, "run_retention", retentionString(s.cfg.Retention),
		"audit_retention", retentionString(s.cfg.AuditRetention))
}

// Started is closed when this process's workers take runs.
func (s *Service) Started() <-chan struct{} { return s.worker.Started() }

// Healthy reports whether this process's workers are taking runs (nil for
// an API-only replica, which never starts them). Readiness uses it.
func (s *Service) Healthy() error { return s.worker.Healthy() }

// QueueStats returns the number of runs due and not taken, and since when
// the oldest has been due; the metrics collector calls it on every scrape.
func (s *Service) QueueStats(ctx context.Context) (int, time.Time, error) {
	return s.driver.Stats(s.db.WithContext(ctx), s.now())
}

// Evaluate evaluates one expression as a block of a run of project in
// environment would (the editor's live preview) and returns its value
// redacted with every secret visible there.
func (s *Service) Evaluate(ctx context.Context, project, environment, expression string, input any, actor string) (any, error) {
	if _, err := s.cfg.Projects.GetEnvironment(ctx, environment); err != nil {
		return nil, err
	}
	return s.worker.Evaluate(ctx, project, environment, expression, input, actor)
}

// Publish queues a run of every event-triggered flow of project whose
// topic pattern matches topic and whose filter holds for payload.
// An unknown environment is refused whether or not a flow matches, so
// that a typo is not taken for a topic nobody listens to.
func (s *Service) Publish(ctx context.Context, project, topic, environment string, payload any, actor string) ([]*Run, error) {
	if environment != "" {
		if err := s.knownEnvironment(ctx, environment); err != nil {
			return nil, err
		}
	}
	return s.triggers.Publish(ctx, project, topic, environment, payload, actor)
}

// Webhook handles POST /hooks/{project}/{flow} (triggers.Webhook).
func (s *Service) Webhook(ctx context.Context, project, flow string, header http.Header, body []byte) (*triggers.WebhookReply, error) {
	return s.triggers.Webhook(ctx, project, flow, header, body)
}

// FireSchedules queues the runs of the schedule ticks due at now that no
// replica fired yet (tests and tools).
func (s *Service) FireSchedules(ctx context.Context, now time.Time) {
	s.triggers.FireSchedules(ctx, now)
}

// TopicMatch reports whether topic matches pattern (triggers.TopicMatch).
func TopicMatch(pattern, topic string) bool { return triggers.TopicMatch(pattern, topic) }

// ErrBadSignature is returned for a webhook whose signature does not
// verify (401).
var ErrBadSignature = triggers.ErrBadSignature

// Registry returns the block registry (for the editor's block list).
func (s *Service) Registry() *blocks.Registry { return s.cfg.Registry }

// Save validates and stores def as a new version of its flow in project
// (creating the flow when create is true; updating when false). It returns
// the flow and warnings (secret names that resolve in no environment,
// code the engine evaluates differently from other JavaScript engines).
// An update whose definition is identical to the current version's (the
// same JSON once decoded and encoded again, whatever the formatting or
// YAML it came in) stores nothing: unchanged is true and the flow keeps
// its version, time and author.
func (s *Service) Save(ctx context.Context, project string, def Definition, actor string, create bool) (f *Flow, warnings []string, unchanged bool, err error) {
	proj, err := s.cfg.Projects.Get(ctx, project)
	if err != nil {
		return nil, nil, false, err
	}
	p, err := plan.CompileForSave(def, s.cfg.Registry, s.cfg.Engine)
	if err != nil {
		return nil, nil, false, err
	}
	warnings = append(s.secretWarnings(ctx, project, p.Secrets), p.Warnings...)
	warnings = append(warnings, s.flowWarnings(ctx, project, def.Name, p)...)
	if env := def.Trigger.Environment; env != "" {
		// Environments may come later; until then the trigger's runs are
		// refused (a webhook answers 400, a schedule does not fire).
		var ae *apperr.Error
		if err := s.knownEnvironment(ctx, env); errors.As(err, &ae) && ae.Code == "unknown_environment" {
			warnings = append(warnings, "trigger.environment: "+ae.Message+" (until it exists, the trigger's runs are refused)")
		}
	}
	data, err := json.Marshal(def)
	if err != nil {
		return nil, nil, false, err
	}
	now := s.now()
	f = new(Flow)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		q := tx.Where("project_id = ? AND name = ?", proj.ID, def.Name)
		if s.db.Dialect == store.Postgres {
			// Saves of one flow take turns, each reading the version the
			// one before it wrote: two that read the same one both wrote
			// the next, and the second failed on flow_versions' key (409
			// "already exists: flow_versions_pkey"). On SQLite a
			// transaction holds the write lock from its start.
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		err := q.First(f).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			if !create {
				return fmt.Errorf("flow %q: %w", def.Name, store.ErrNotFound)
			}
			*f = Flow{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: proj.ID, Project: proj.Name, Name: def.Name,
				Version: 1, CreatedAt: now, CreatedBy: actor}
		case err != nil:
			return err
		case create:
			return store.Conflict("flow", def.Name, "project "+apperr.Echo(project), "PUT it to save a new version")
		case f.Definition == string(data):
			unchanged = true
			return nil
		default:
			f.Version++
		}
		f.TriggerType, f.Definition, f.UpdatedAt, f.UpdatedBy = def.Trigger.Type, string(data), now, actor
		// Not the pause: a pause or resume committed since the row was
		// read would be undone (Pause and Resume write those columns
		// alone).
		if err := tx.Omit("paused_at", "paused_by", "resumed_at", "resumed_by").Save(f).Error; err != nil {
			return err
		}
		return tx.Create(&FlowVersion{FlowID: f.ID, Version: f.Version, Definition: string(data), CreatedAt: now, CreatedBy: actor}).Error
	})
	if err != nil {
		return nil, nil, false, store.Translate(err)
	}
	s.plans.Put(f.ID, f.Version, p)
	return f, warnings, unchanged, nil
}

// flowWarnings names the flows that flow blocks call by a constant name
// and that project does not have (yet: a flow may be saved before the
// one it calls).
func (s *Service) flowWarnings(ctx context.Context, project, self string, p *plan.Plan) []string {
	var out []string
	var names []string // the project's flows, read once when needed
	for _, list := range [][]plan.PlannedBlock{p.Blocks, p.OnError} {
		for i := range list {
			pb := &list[i]
			if pb.Def.Type != "flow" {
				continue
			}
			v, ok := pb.Constant("flow")
			name, isString := v.(string)
			if !ok || !isString || name == self {
				continue
			}
			if names == nil {
				var fs []string
				if err := s.db.WithContext(ctx).Model(&Flow{}).Where("project = ?", project).Pluck("name", &fs).Error; err != nil {
					return out
				}
				names = append(fs, self)
			}
			if slices.Contains(names, name) {
				continue
			}
			w := fmt.Sprintf("block %q calls flow %s, which project %q does not have (yet)", pb.Def.ID, apperr.Echo(name), project)
			if near := suggest.Nearest(name, names); near != "" {
				w += fmt.Sprintf("; did you mean %q?", near)
			}
			out = append(out, w)
		}
	}
	return out
}

// secretWarnings names referenced secrets that resolve in no environment.
func (s *Service) secretWarnings(ctx context.Context, project string, names []string) []string {
	if len(names) == 0 || s.cfg.Secrets == nil {
		return nil
	}
	envs, err := s.cfg.Projects.Environments(ctx)
	if err != nil {
		return nil
	}
	found := map[string]bool{}
	for _, e := range envs {
		ns, err := s.cfg.Secrets.Names(ctx, project, e.Name)
		if err != nil {
			continue
		}
		for _, n := range ns {
			found[n] = true
		}
	}
	known := make([]string, 0, len(found))
	for n := range found {
		known = append(known, n)
	}
	sort.Strings(known)
	var out []string
	for _, n := range names {
		if !found[n] {
			w := fmt.Sprintf("secret %q is not defined for project %q in any environment", n, project)
			if near := suggest.Nearest(n, known); near != "" {
				w += fmt.Sprintf("; did you mean %q?", near)
			}
			out = append(out, w)
		}
	}
	return out
}

// SecretUse is where a project's saved definitions name secrets.
type SecretUse struct {
	// Flows maps a secret name to the flows that name it, sorted.
	Flows map[string][]string
	// Unknown lists the flows whose use of secrets is not all known: they
	// compute secret names at run time (secrets[name]), or their saved
	// definition no longer compiles (a block type turned off).
	Unknown []string
}

// SecretUsage reads the latest version of every flow of a project and
// returns the secrets each names: in expressions, as its webhook's signing
// secret, in a block's list of secrets (exec).
func (s *Service) SecretUsage(ctx context.Context, project string) (*SecretUse, error) {
	fs, err := s.List(ctx, project)
	if err != nil {
		return nil, err
	}
	u := &SecretUse{Flows: map[string][]string{}, Unknown: []string{}}
	for _, f := range fs {
		p, err := s.plans.Get(ctx, f.ID, f.Version)
		if err != nil {
			var inv *plan.InvalidError
			if !errors.As(err, &inv) {
				return nil, err
			}
			u.Unknown = append(u.Unknown, f.Name)
			continue
		}
		for _, name := range p.Secrets {
			u.Flows[name] = append(u.Flows[name], f.Name)
		}
		if p.DynamicSecrets {
			u.Unknown = append(u.Unknown, f.Name)
		}
	}
	return u, nil
}

// Get returns a flow and its definition.
func (s *Service) Get(ctx context.Context, project, name string) (*Flow, Definition, error) {
	var f Flow
	err := s.db.WithContext(ctx).Scopes(model.FlowNamed(project, name)).Take(&f).Error
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, Definition{}, store.NotFound("flow", name)
		}
		return nil, Definition{}, store.Translate(err)
	}
	var d Definition
	if err := json.Unmarshal([]byte(f.Definition), &d); err != nil {
		return nil, d, err
	}
	return &f, d, nil
}

// List returns a project's flows.
func (s *Service) List(ctx context.Context, project string) ([]Flow, error) {
	var fs []Flow
	return fs, store.Translate(s.db.WithContext(ctx).Where("project = ?", project).Order("name").Find(&fs).Error)
}

// Versions lists a flow's versions, newest first.
func (s *Service) Versions(ctx context.Context, project, name string) ([]FlowVersion, error) {
	f, _, err := s.Get(ctx, project, name)
	if err != nil {
		return nil, err
	}
	var vs []FlowVersion
	return vs, store.Translate(s.db.WithContext(ctx).Where("flow_id = ?", f.ID).Order("version DESC").Find(&vs).Error)
}

// Delete removes a flow and its versions; its runs stay for inspection.
func (s *Service) Delete(ctx context.Context, project, name string) error {
	f, _, err := s.Get(ctx, project, name)
	if err != nil {
		return err
	}
	return store.Translate(s.deleting(ctx, func(tx *gorm.DB) error {
		// An open run needs its version to go on (a waiting one to resume):
		// refused while there is one, as a project's deletion is.
		open, err := s.countOpen(tx, func(q *gorm.DB) *gorm.DB { return q.Where("flow_id = ? AND "+model.OpenSQL, f.ID) })
		if err != nil {
			return err
		}
		if open > 0 {
			return &runsInProgressError{what: "flow " + f.Name, n: open}
		}
		if err := tx.Where("flow_id = ?", f.ID).Delete(&FlowVersion{}).Error; err != nil {
			return err
		}
		if err := tx.Delete(&Flow{}, "id = ?", f.ID).Error; err != nil {
			return err
		}
		s.plans.Forget(f.ID)
		return nil
	}))
}

// countOpen counts the open runs where (a flow's, a project's) for a
// deletion, which goes on only when there are none. The count is final
// until the deletion commits: on PostgreSQL a statement sees what was
// committed when it began, so a run whose insert had begun (its flow was
// there) and committed after the count would be missed, and the run,
// answered 202, would then fail for want of its version. A count of none
// is therefore taken again under lockRuns; a count of some refuses
// without the lock (a client retrying a deletion does not hold up the
// runs of every flow).
func (s *Service) countOpen(tx *gorm.DB, where func(*gorm.DB) *gorm.DB) (int64, error) {
	var n int64
	if err := where(tx.Model(&Run{})).Count(&n).Error; err != nil || n > 0 || s.db.Dialect != store.Postgres {
		return n, err
	}
	if err := s.lockRuns(tx); err != nil {
		return 0, err
	}
	err := where(tx.Model(&Run{})).Count(&n).Error
	return n, err
}

// lockRuns takes LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE
// (PostgreSQL), which waits for every transaction writing runs to end and
// holds new ones until the deletion commits (a few milliseconds). The
// mode conflicts with itself: two deletions take turns (in SHARE mode
// both held it, then each waited for the other to delete its runs: a
// deadlock). While it waits, new writes of runs queue behind it, so it
// waits at most deleteLockAttempt (errRunsBusy then): a long write of
// runs holds the deletion, not every flow's new runs. SQLite's write
// transactions are serial already (BEGIN IMMEDIATE).
func (s *Service) lockRuns(tx *gorm.DB) error {
	if s.db.Dialect != store.Postgres {
		return nil
	}
	if err := tx.Exec(fmt.Sprintf("SET LOCAL lock_timeout = %d", deleteLockAttempt.Milliseconds())).Error; err != nil {
		return err
	}
	err := tx.Exec("LOCK TABLE runs IN SHARE ROW EXCLUSIVE MODE").Error
	if store.IsLockTimeout(err) {
		return errRunsBusy
	}
	return err
}

// errRunsBusy is lockRuns' error when runs stayed locked by other writes.
var errRunsBusy = errors.New("runs stayed locked by other writes")

// deleting runs fn, a deletion, in a transaction, again while it fails
// with errRunsBusy, deleteLockPause apart (the writes queued behind its
// try go meanwhile), for up to deleteLockWait; then it says to try later
// (503).
func (s *Service) deleting(ctx context.Context, fn func(tx *gorm.DB) error) error {
	start := time.Now()
	for {
		err := s.db.WithContext(ctx).Transaction(fn)
		if !errors.Is(err, errRunsBusy) {
			return err
		}
		if time.Since(start)+deleteLockPause >= deleteLockWait {
			return &apperr.Error{Kind: apperr.Unavailable, Code: "runs_busy", Err: err, Message: fmt.Sprintf(
				"runs were being stored for more than %s, so their count could not be taken: nothing was deleted; try again", deleteLockWait)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(deleteLockPause):
		}
	}
}

// deleteLockAttempt is how long one try of a deletion waits for the
// writes of runs in progress (lockRuns), and so the longest it holds new
// writes of runs behind it; deleteLockPause the time between two tries,
// and deleteLockWait how long all its tries take at most.
var (
	deleteLockAttempt = 50 * time.Millisecond
	deleteLockPause   = 100 * time.Millisecond
	deleteLockWait    = 10 * time.Second
)

// runsInProgressError refuses to delete a project or a flow whose runs
// are not all finished (a 409).
type runsInProgressError struct {
	what string // "project billing", "flow sync"
	n    int64
}

func (e *runsInProgressError) Error() string {
	kind, _, _ := strings.Cut(e.what, " ")
	return fmt.Sprintf("%s has %d run(s) queued, running or waiting: cancel them or let them end, then delete the %s", e.what, e.n, kind)
}
func (e *runsInProgressError) Unwrap() error { return store.ErrConflict }

// ProjectDeletion counts what DeleteProject deleted.
type ProjectDeletion struct {
	Flows int `json:"flows"`
	Runs  int `json:"runs"`
}

// DeleteProject deletes every flow of project with its versions and
// schedule ticks, and every run with its events and checkpoints, in one
// transaction. While a run of the project is queued, running or waiting
// it refuses (apperr.Conflict) and deletes nothing: cancel those runs, or
// let them end, first.
func (s *Service) DeleteProject(ctx context.Context, project string) (ProjectDeletion, error) {
	var out ProjectDeletion
	var flowIDs []string
	err := s.deleting(ctx, func(tx *gorm.DB) error {
		out, flowIDs = ProjectDeletion{}, nil
		open, err := s.countOpen(tx, func(q *gorm.DB) *gorm.DB { return q.Where("project = ? AND "+model.OpenSQL, project) })
		if err != nil {
			return err
		}
		if open > 0 {
			return &runsInProgressError{what: "project " + project, n: open}
		}
		if err := tx.Model(&Flow{}).Where("project = ?", project).Pluck("id", &flowIDs).Error; err != nil {
			return err
		}
		runs := tx.Model(&Run{}).Select("id").Where("project = ?", project)
		flows := tx.Model(&Flow{}).Select("id").Where("project = ?", project)
		for _, step := range []struct {
			table, column string
			in            *gorm.DB
		}{
			{"events", "run_id", runs},
			{"run_checkpoints", "run_id", runs},
			{"schedule_ticks", "flow_id", flows},
			{"flow_versions", "flow_id", flows},
		} {
			if err := tx.Exec("DELETE FROM "+step.table+" WHERE "+step.column+" IN (?)", step.in).Error; err != nil {
				return err
			}
		}
		res := tx.Where("project = ?", project).Delete(&Run{})
		if res.Error != nil {
			return res.Error
		}
		out.Runs = int(res.RowsAffected)
		res = tx.Where("project = ?", project).Delete(&Flow{})
		out.Flows = int(res.RowsAffected)
		return res.Error
	})
	if err != nil {
		return ProjectDeletion{}, store.Translate(err)
	}
	for _, id := range flowIDs {
		s.plans.Forget(id)
	}
	return out, nil
}

// tooLarge is a 413 with the limit.
func tooLarge(what string, n, limit int) error {
	return apperr.New(apperr.TooLarge, "too_large", "%s is %d bytes, over the limit of %d bytes", what, n, limit)
}
