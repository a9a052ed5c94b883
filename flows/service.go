package flows

import (
	"context"
	"encoding/json"
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
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Secrets is what flows need of the secret store. It is implemented over
// package secrets by the composition root and must be safe for concurrent
// use.
type Secrets interface {
	// ForRun loads what a run of (project, environment) needs: every
	// visible secret for its redactor and host pinning, and a lazy,
	// audited resolver for its expressions.
	ForRun(ctx context.Context, project, environment, runID string) (RunSecrets, error)
	// Resolve returns one value outside a run (a webhook's signing
	// secret) and records the access. An unknown name wraps
	// engine.ErrUnknownSecret and names the key and the scope.
	Resolve(ctx context.Context, req ResolveRequest) (string, error)
	// Names lists the secret names visible in (project, environment).
	Names(ctx context.Context, project, environment string) ([]string, error)
}

// RunSecrets are the secrets of one run.
type RunSecrets interface {
	// Visible returns every secret the run can resolve, with its value.
	Visible() []VisibleSecret
	// Resolve returns name's value for block (lazy; audited once per
	// block and version). scope may name another environment, never
	// another project.
	Resolve(ctx context.Context, block, name string, scope engine.Scope) (string, error)
}

// VisibleSecret is a secret as a run sees it.
type VisibleSecret struct {
	Name         string
	Value        string
	AllowedHosts []string
}

// ResolveRequest asks for one secret outside a run.
type ResolveRequest struct {
	Project, Environment, Name string
	RunID, BlockID             string
}

// Sealer encrypts what runs keep at rest (checkpointed block outputs):
// envelope encryption under the keyring, bound to aad. Implemented over
// the secret store's keyring by the composition root.
type Sealer interface {
	SealBlob(aad, plaintext []byte) ([]byte, error)
	OpenBlob(aad, blob []byte) ([]byte, error)
}

// Config is everything the service needs, given once to New. Zero values
// of the tuning fields take the documented defaults.
type Config struct {
	DB       *store.DB
	Projects *projects.Service
	// Secrets is the secret store; nil gives runs no secrets.
	Secrets Secrets
	// Registry is the set of block types (blocks.Default in the server).
	Registry *blocks.Registry
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

	// NewHTTPClient builds a run's HTTP client from the run's secret host
	// pins: allowed maps a secret name to its hosts, match finds secret
	// names in text, onRefuse is called when a request is refused. Nil
	// gives blocks no network.
	NewHTTPClient func(allowed map[string][]string, match func(string) []string, onRefuse func(secret, host string)) *http.Client
	// OnPinRefused is called when a request of a run was refused because
	// it would carry a pinned secret to another host (for the audit).
	OnPinRefused func(r *Run, secret, host string)
	// OnRunFinished is called when a run ends (metrics).
	OnRunFinished func(r *Run, status string, d time.Duration)
	// OnBlockFinished is called when a block ends, retries included
	// (metrics); status is succeeded or failed.
	OnBlockFinished func(r *Run, blockType, status string, d time.Duration)
	// OnRedacted is called with the number of masks applied to stored
	// events and outputs (metrics).
	OnRedacted func(n int)
	// OnResumed is called when a run resumes after an interruption
	// (metrics); reason is shutdown, lease or database.
	OnResumed func(r *Run, reason string)

	// Workers is the number of runs executed at once by this process
	// (default 64: runs mostly wait on the network and the database).
	Workers int
	// Lease is how long a claimed run stays with its worker without a
	// heartbeat (default 30s); a run whose lease expired is queued again
	// to resume on any replica.
	Lease time.Duration
	// Poll is the idle wait between claims (default 50ms).
	Poll time.Duration
	// ShutdownGrace is how long a stopping worker lets its runs go on
	// before it releases them to other replicas (default 30s).
	ShutdownGrace time.Duration
	// MaxResumes bounds the times a run is resumed after an interruption;
	// one more interruption fails it (default 10).
	MaxResumes int
	// SleepOver is the longest wait a block does in process; a longer one
	// (a delay) releases the worker and the run is queued to resume when
	// it ends (default 5s).
	SleepOver time.Duration
	// MaxInput bounds a run's input, as JSON (default 256 KiB).
	MaxInput int
	// MaxEventBytes bounds one stored event's data (default 64 KiB);
	// larger data is truncated with a marker.
	MaxEventBytes int
	// MaxEventsPerRun bounds the events stored per run (default 10,000).
	MaxEventsPerRun int
	// DefaultBlockTimeout applies to blocks without a timeout (30s).
	DefaultBlockTimeout time.Duration
	// ExecEnabled allows exec blocks (HUSHFLOW_EXEC=on).
	ExecEnabled bool
	// MaxConcurrentRuns is the default bound on a flow's open runs
	// (default 10,000); a flow may set a lower or higher one.
	MaxConcurrentRuns int
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
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.MaxResumes <= 0 {
		c.MaxResumes = 10
	}
	if c.SleepOver <= 0 {
		c.SleepOver = 5 * time.Second
	}
	if c.MaxInput <= 0 {
		c.MaxInput = 256 << 10
	}
	if c.MaxEventBytes <= 0 {
		c.MaxEventBytes = 64 << 10
	}
	if c.MaxEventsPerRun <= 0 {
		c.MaxEventsPerRun = 10000
	}
	if c.MaxConcurrentRuns <= 0 {
		c.MaxConcurrentRuns = 10000
	}
	if c.DefaultBlockTimeout <= 0 {
		c.DefaultBlockTimeout = 30 * time.Second
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
}

// Service keeps flows and runs, and executes runs when started.
type Service struct {
	db       *store.DB
	projects *projects.Service
	secrets  Secrets
	registry *blocks.Registry
	env      *blocks.Env
	cfg      Config
	log      *slog.Logger
	owner    string // this process's lease owner id

	plans sync.Map // flowID@version -> *Plan
	envs  sync.Map // environment names known to exist
	// counts holds a *concurrencyCount per flow id (checkConcurrency).
	counts sync.Map
	// redactors holds a Redactor per set of secret values (see
	// redactorFor); nRedactors counts its entries.
	redactors  sync.Map
	nRedactors atomic.Int64
	broker     *broker
	wake       chan struct{}
	// started is closed when Start's claim loop begins.
	started     chan struct{}
	startedOnce sync.Once

	health workerHealth
}

// New returns a Service.
func New(cfg Config) *Service {
	cfg.defaults()
	return &Service{
		db: cfg.DB, projects: cfg.Projects, secrets: cfg.Secrets, registry: cfg.Registry, env: cfg.BlockEnv,
		cfg: cfg, log: cfg.Logger,
		owner:   uuid.NewString()[:8],
		broker:  newBroker(),
		wake:    make(chan struct{}, 1),
		started: make(chan struct{}),
	}
}

// Started is closed when this process's workers take runs (Start began its
// claim loop), for tests and tools that must not race it.
func (s *Service) Started() <-chan struct{} { return s.started }

// now is the service's clock, in UTC.
func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// Registry returns the block registry (for the editor's block list).
func (s *Service) Registry() *blocks.Registry { return s.registry }

// Save validates and stores def as a new version of its flow in project
// (creating the flow when create is true; updating when false). It returns
// the flow and warnings (secret names that resolve in no environment).
func (s *Service) Save(ctx context.Context, project string, def Definition, actor string, create bool) (*Flow, []string, error) {
	p, err := s.projects.Get(ctx, project)
	if err != nil {
		return nil, nil, err
	}
	plan, err := Compile(def, s.registry, s.cfg.ExecEnabled)
	if err != nil {
		return nil, nil, err
	}
	warnings := s.secretWarnings(ctx, project, plan.Secrets)
	data, err := json.Marshal(def)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	var f Flow
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Where("project_id = ? AND name = ?", p.ID, def.Name).First(&f).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			if !create {
				return fmt.Errorf("flow %q: %w", def.Name, store.ErrNotFound)
			}
			f = Flow{ID: uuid.Must(uuid.NewV7()).String(), ProjectID: p.ID, Project: p.Name, Name: def.Name,
				Version: 1, CreatedAt: now, CreatedBy: actor}
		case err != nil:
			return err
		case create:
			return store.Conflict("flow", def.Name, "project "+apperr.Echo(project), "PUT it to save a new version")
		default:
			f.Version++
		}
		f.TriggerType, f.Definition, f.UpdatedAt, f.UpdatedBy = def.Trigger.Type, string(data), now, actor
		if err := tx.Save(&f).Error; err != nil {
			return err
		}
		return tx.Create(&FlowVersion{FlowID: f.ID, Version: f.Version, Definition: string(data), CreatedAt: now, CreatedBy: actor}).Error
	})
	if err != nil {
		return nil, nil, store.Translate(err)
	}
	s.plans.Store(planKey(f.ID, f.Version), plan)
	return &f, warnings, nil
}

// secretWarnings names referenced secrets that resolve in no environment.
func (s *Service) secretWarnings(ctx context.Context, project string, names []string) []string {
	if len(names) == 0 || s.secrets == nil {
		return nil
	}
	envs, err := s.projects.Environments(ctx)
	if err != nil {
		return nil
	}
	found := map[string]bool{}
	for _, e := range envs {
		ns, err := s.secrets.Names(ctx, project, e.Name)
		if err != nil {
			continue
		}
		for _, n := range ns {
			found[n] = true
		}
	}
	var out []string
	for _, n := range names {
		if !found[n] {
			out = append(out, fmt.Sprintf("secret %q is not defined for project %q in any environment", n, project))
		}
	}
	return out
}

// Get returns a flow and its definition.
func (s *Service) Get(ctx context.Context, project, name string) (*Flow, Definition, error) {
	var f Flow
	err := s.db.WithContext(ctx).Where("project = ? AND name = ?", project, name).First(&f).Error
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
	return store.Translate(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("flow_id = ?", f.ID).Delete(&FlowVersion{}).Error; err != nil {
			return err
		}
		return tx.Delete(&Flow{}, "id = ?", f.ID).Error
	}))
}

// plan returns the compiled plan of a flow version (cached).
func (s *Service) plan(ctx context.Context, flowID string, version int) (*Plan, error) {
	key := planKey(flowID, version)
	if p, ok := s.plans.Load(key); ok {
		return p.(*Plan), nil
	}
	var v FlowVersion
	if err := s.db.WithContext(ctx).Where("flow_id = ? AND version = ?", flowID, version).First(&v).Error; err != nil {
		return nil, fmt.Errorf("flow version %d: %w", version, store.Translate(err))
	}
	d, err := ParseDefinition([]byte(v.Definition))
	if err != nil {
		return nil, err
	}
	p, err := Compile(d, s.registry, s.cfg.ExecEnabled)
	if err != nil {
		return nil, err
	}
	s.plans.Store(key, p)
	return p, nil
}

func planKey(id string, v int) string { return fmt.Sprintf("%s@%d", id, v) }

// tooLarge is a 413 with the limit.
func tooLarge(what string, n, limit int) error {
	return apperr.New(apperr.TooLarge, "too_large", "%s is %d bytes, over the limit of %d bytes", what, n, limit)
}
