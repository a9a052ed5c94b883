// Package app is Hushflow's composition root: it opens the database, builds
// every service from configuration and wires them into one server. The
// hushflow binary and the end-to-end tests both start Hushflow through it,
// so that tests run what users run.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/hushflow/hushflow/apps"
	"github.com/hushflow/hushflow/auth"
	"github.com/hushflow/hushflow/blocks"
	execblock "github.com/hushflow/hushflow/blocks/exec"
	"github.com/hushflow/hushflow/egress"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/engine/sandbox"
	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/internal/cores"
	"github.com/hushflow/hushflow/internal/doctor"
	"github.com/hushflow/hushflow/metrics"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/redact"
	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/server"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/web"
)

// Config is the server's configuration (see docs/operations.md).
type Config struct {
	Addr        string // listen address
	DataDir     string // embedded database, key file, scratch space
	DatabaseURL string // PostgreSQL URL; empty: embedded SQLite
	AdminToken  string // accepted as an admin token when set
	LogFormat   string // text or json
	LogOutput   io.Writer
	// SQLiteSync is the embedded database's synchronous mode, normal
	// (default) or full (store.Config.SQLiteSync).
	SQLiteSync string
	// HTTPAllow lists CIDRs HTTP blocks may reach despite the egress
	// policy (HUSHFLOW_HTTP_ALLOW), e.g. "127.0.0.1/32".
	HTTPAllow string
	// Exec enables the exec block (HUSHFLOW_EXEC=on).
	Exec bool
	// ExecAllow, when not empty, lists the command paths exec blocks may
	// run (HUSHFLOW_EXEC_ALLOW, comma-separated).
	ExecAllow []string
	// Workers is the number of runs this process executes at once.
	Workers int
	// ClaimPoll and ClaimMaxPoll are the claim loop's idle waits (default
	// 50ms, doubling up to 1s; see executor.Config).
	ClaimPoll, ClaimMaxPoll time.Duration
	// SandboxPath/SandboxArgs start a sandbox worker process (default:
	// this executable with HUSHFLOW_SANDBOX_WORKER=1).
	SandboxPath    string
	SandboxArgs    []string
	SandboxWorkers int
	// AdaptiveCores runs the process on one processor of the Go runtime
	// while it has at most one run or request in flight, and on all from
	// the moment it has two (internal/cores). cmd/hushflow sets it unless
	// the operator set GOMAXPROCS.
	AdaptiveCores bool
	// NoWorkers starts the API without run workers (an API-only replica:
	// --role api).
	NoWorkers bool
	// NoAPI serves only /healthz, /readyz and /metrics (a worker-only
	// replica: --role worker).
	NoAPI bool
	// RunLease is how long a claimed run stays with its worker without a
	// heartbeat before it is queued again to resume on any replica
	// (HUSHFLOW_RUN_LEASE; default 30s).
	RunLease time.Duration
	// ShutdownGrace is how long a stopping replica lets its runs go on
	// before it releases them to other replicas (HUSHFLOW_SHUTDOWN_GRACE;
	// default 30s).
	ShutdownGrace time.Duration
	// SecretsPoll is how often the server looks for secret values other
	// replicas wrote, for its log redactor (default 1s).
	SecretsPoll time.Duration
	// MaxResumes bounds the resumes of a run after interruptions
	// (HUSHFLOW_MAX_RESUMES; default 10).
	MaxResumes int
	// MaxEachItems bounds the elements of a block with each
	// (HUSHFLOW_MAX_EACH_ITEMS; default 1,000).
	MaxEachItems int
	// RunRetention is how long a run is kept after it ended
	// (HUSHFLOW_RUN_RETENTION; cmd/hushflow's default is 30 days). Zero
	// keeps runs for ever.
	RunRetention time.Duration
	// AuditRetention is how long the secrets audit keeps the records of
	// reads (a run's load of its values, each secret a block read)
	// (HUSHFLOW_AUDIT_RETENTION; cmd/hushflow's default is 365 days).
	// Zero keeps them for ever; other records are always kept.
	AuditRetention time.Duration
	// Now is the clock of runs, of the queue age metric and of token and
	// session expiry (time.Now when nil): tests move it to end durable
	// waits or expire a token without waiting.
	Now func() time.Time
	// MasterKey and MasterKeyFile hold the keyring (HUSHFLOW_MASTER_KEY,
	// HUSHFLOW_MASTER_KEY_FILE); with neither, the embedded default keeps
	// a generated key file in DataDir and PostgreSQL refuses to start.
	MasterKey     string
	MasterKeyFile string
	// RateLimit is the API requests per second per token
	// (HUSHFLOW_RATE_LIMIT; 0: the default of 100, negative: off).
	RateLimit float64
	// MaxConcurrentRuns is the default bound on a flow's queued and
	// running runs (HUSHFLOW_MAX_CONCURRENT_RUNS; default 10,000).
	MaxConcurrentRuns int
	// MetricsToken, when set, is required as a bearer token on /metrics
	// (HUSHFLOW_METRICS_TOKEN); /metrics is open otherwise.
	MetricsToken string
	// Traceparent makes HTTP blocks send a W3C traceparent header whose
	// trace id is the run id (HUSHFLOW_TRACEPARENT=on).
	Traceparent bool
	// TestDisableMasking turns off the masking of one sink, for the tests
	// that prove the redaction self-test (hushflow doctor redaction)
	// catches a leak: "server_log" (the server log without its redacting
	// handler) or "events" (run events stored unmasked). No flag or
	// environment variable sets it; never set it outside tests.
	TestDisableMasking string
	// TestOnDatabase, when set, is called with the database as soon as it
	// is open, before any goroutine uses it: tests register gorm callbacks
	// there (registering one while queries run is a data race in gorm).
	TestOnDatabase func(*store.DB) error
}

// App is a wired Hushflow server.
type App struct {
	Config   Config
	Log      *slog.Logger
	DB       *store.DB
	Auth     *auth.Service
	Projects *projects.Service
	Secrets  *secrets.Store
	Apps     *apps.Service
	Flows    *flows.Service
	API      *server.Server
	// cores sets GOMAXPROCS from what is in flight (Config.AdaptiveCores).
	cores *cores.Governor
	// Metrics is this process's Prometheus registry (GET /metrics).
	Metrics *metrics.Metrics
	// Redactor masks every secret value this process has seen in its own
	// logs (server log lines are scrubbed by value, not only by type).
	Redactor *redact.Redactor
	// BootstrapToken is the admin token created at first start ("" when
	// none was created).
	BootstrapToken string

	sandbox *sandbox.Pool
	closers []func() error
}

// New opens the database, applies migrations and builds the services.
func New(ctx context.Context, cfg Config) (*App, error) {
	out := cfg.LogOutput
	if out == nil {
		out = os.Stderr
	}
	switch cfg.TestDisableMasking {
	case "", "server_log", "events":
	default:
		return nil, fmt.Errorf("TestDisableMasking: unknown sink %q (server_log or events)", cfg.TestDisableMasking)
	}
	// The redaction self-test sees what the log writes.
	tap := doctor.NewLogTap(out)
	red := redact.New()
	log, err := newLogger(cfg.LogFormat, tap, red, cfg.TestDisableMasking == "server_log")
	if err != nil {
		return nil, err
	}
	a := &App{Config: cfg, Log: log, Redactor: red}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	db, err := store.Open(ctx, store.Config{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: log, SQLiteSync: cfg.SQLiteSync})
	if err != nil {
		return nil, err
	}
	a.DB = db
	a.closers = append(a.closers, db.Close)
	if cfg.TestOnDatabase != nil {
		if err := cfg.TestOnDatabase(db); err != nil {
			a.Close()
			return nil, err
		}
	}
	// Run events, run outcomes and the audit records of reads share
	// batched transactions (closed before the database).
	batcher := store.NewBatcher(db)
	a.closers = append(a.closers, batcher.Close)
	// Configuration is checked before anything is written: a start that
	// is refused leaves the database as it was (and creates no admin
	// token that would never be printed).
	var keys *secrets.Keyring
	var source string
	if db.Dialect == store.Postgres {
		// PostgreSQL never uses a key file of the data dir, nor generates one.
		if keys, source, err = secrets.LoadKeyring(secrets.KeyConfig{MasterKey: cfg.MasterKey,
			KeyFile: cfg.MasterKeyFile, Logger: log}); err != nil {
			a.Close()
			return nil, err
		}
	}
	if _, err := egress.ParseAllow(cfg.HTTPAllow); err != nil {
		a.Close()
		return nil, err // it names HUSHFLOW_HTTP_ALLOW
	}
	if err := db.Migrate(ctx, schema.All()); err != nil {
		a.Close()
		return nil, fmt.Errorf("database %s: %w", db.Location, err)
	}
	if db.Dialect == store.SQLite {
		// A key file is generated only for an embedded database that holds
		// no encrypted value yet: a fresh key could not open existing
		// data, so a lost key file must be restored, not replaced.
		var stored int64
		if err := db.WithContext(ctx).Table("secret_versions").Where("wiped = ?", false).Count(&stored).Error; err != nil {
			a.Close()
			return nil, fmt.Errorf("database %s: %w", db.Location, err)
		}
		keys, source, err = secrets.LoadKeyring(secrets.KeyConfig{MasterKey: cfg.MasterKey, KeyFile: cfg.MasterKeyFile,
			DataDir: cfg.DataDir, Generate: stored == 0, Logger: log})
		if errors.Is(err, secrets.ErrNoMasterKey) && stored > 0 {
			err = fmt.Errorf("the embedded database %s holds %d encrypted secret versions and its master key file %s is missing (%w): "+
				"a new key could not open them, so none is generated; restore the file from your backup, or set %s (or %s) to the key",
				db.Location, stored, filepath.Join(cfg.DataDir, secrets.KeyFileName), secrets.ErrNoMasterKey, secrets.EnvMasterKey, secrets.EnvMasterKeyFile)
		}
		if err != nil {
			a.Close()
			return nil, err
		}
	}
	log.Info("keyring loaded", "source", source, "keys", len(keys.IDs()))
	a.Auth = auth.New(auth.Config{DB: db, AdminToken: cfg.AdminToken, Now: cfg.Now})
	if a.BootstrapToken, err = a.Auth.Bootstrap(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("bootstrap admin: %w", err)
	}
	a.Projects = projects.NewService(db)
	// Every value this process encrypts or decrypts joins the log
	// redactor, so the server's own log lines mask it by value; the audit
	// records of reads share the batcher's transactions.
	a.Secrets = secrets.New(secrets.Config{DB: db, Keyring: keys, Logger: log, Observe: red.Add, Batcher: batcher})
	for _, w := range a.Secrets.CheckKeys(ctx) {
		log.Warn("keyring", "problem", w)
	}
	// The log redactor knows every live value from the start, and those
	// other replicas write within a poll interval.
	obs := a.Secrets.NewObserver(cfg.SecretsPoll)
	n, err := obs.ObserveAll(ctx)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("load secret values into the log redactor: %w", err)
	}
	log.Info("log redactor loaded", "values", n)
	obs.Watch(context.WithoutCancel(ctx))
	a.closers = append(a.closers, func() error { obs.Stop(); return nil })

	policy, err := egress.ParseAllow(cfg.HTTPAllow)
	if err != nil {
		a.Close()
		return nil, err // it names HUSHFLOW_HTTP_ALLOW
	}
	if err := a.startSandbox(); err != nil {
		a.Close()
		return nil, err
	}
	if cfg.AdaptiveCores { // after the sandbox took its default count
		a.cores = cores.New(0)
		a.closers = append(a.closers, func() error { a.cores.Stop(); return nil })
	}
	for _, c := range cfg.ExecAllow {
		if !filepath.IsAbs(c) {
			a.Close()
			return nil, fmt.Errorf("HUSHFLOW_EXEC_ALLOW: %q is not an absolute path (list command paths such as /usr/bin/psql, separated by commas)", c)
		}
	}
	// Secret files an exec block mounted are removed when it ends; those
	// of a server that was killed go now.
	if n, err := execblock.CleanStale(cfg.DataDir); err != nil {
		log.Warn("exec: clean stale directories", "err", err, "removed", n)
	} else if n > 0 {
		log.Info("exec: removed directories left by a stopped server", "removed", n)
	}
	// The runs of a redaction self-test reach its echo listener, and only
	// they, and only it; every other request goes through the policy.
	route := doctor.NewEgress(egress.NewTransport(policy), func(ctx context.Context, id string) (string, error) {
		r, err := a.Flows.GetRun(ctx, id)
		if err != nil {
			return "", err
		}
		return r.FlowID, nil
	})
	a.Apps = apps.NewService(db, a.secretNamesAnywhere)
	a.Metrics = metrics.New(nil) // the queue collector is added below, once flows exist
	// The block types this server runs: all, less exec unless enabled.
	registry := blocks.Default
	if !cfg.Exec {
		registry = blocks.Default.Clone().Disable("exec", "the exec block is disabled on this server (set HUSHFLOW_EXEC=on to enable it)")
	}
	fs := flows.New(flows.Config{
		DB: db, Projects: a.Projects, Secrets: flowSecrets{s: a.Secrets, m: a.Metrics}, Registry: registry,
		Engine:   engine.New(engine.Config{Sandbox: a.sandbox}),
		BlockEnv: &blocks.Env{Apps: a.Apps, Logger: log, ExecAllow: cfg.ExecAllow, ScratchDir: cfg.DataDir},
		Sealer:   keys, Logger: log, Batcher: batcher,
		NewHTTPClient: func(allowed func() map[string][]string, match func(string) []string, onRefuse func(string, string)) *http.Client {
			c := egress.Client(route, &egress.Pinning{Match: match, Allowed: allowed, OnRefuse: onRefuse}, true)
			if cfg.Traceparent {
				c.Transport = traceTransport{next: c.Transport}
			}
			return c
		},
		OnPinRefused:    a.recordEgressRefused,
		OnRunFinished:   func(_ *flows.Run, status string, d time.Duration) { a.Metrics.RunFinished(status, d) },
		OnBlockFinished: func(_ *flows.Run, typ, status string, d time.Duration) { a.Metrics.BlockFinished(typ, status, d) },
		OnRedacted:      a.Metrics.Redacted,
		OnResumed:       func(_ *flows.Run, cause string) { a.Metrics.RunResumed(cause) },
		OnPruned:        a.Metrics.RunsPruned,
		OnStarted:       a.Metrics.RunStarted,
		OnExposure:      a.recordExposure,
		Workers:         cfg.Workers, Poll: cfg.ClaimPoll, MaxPoll: cfg.ClaimMaxPoll, Lease: cfg.RunLease, ShutdownGrace: cfg.ShutdownGrace, MaxResumes: cfg.MaxResumes,
		Retention: cfg.RunRetention, AuditRetention: cfg.AuditRetention, PruneAudit: a.Secrets.PruneReads,
		MaxConcurrentRuns: cfg.MaxConcurrentRuns, Now: cfg.Now, MaxEachItems: cfg.MaxEachItems, Cores: a.cores,
		TestUnmaskedEvents: cfg.TestDisableMasking == "events",
	})
	a.Metrics.WatchQueue(func(ctx context.Context) (metrics.QueueStats, error) {
		n, oldest, err := fs.QueueStats(ctx)
		st := metrics.QueueStats{Depth: n}
		if n > 0 && !oldest.IsZero() {
			st.OldestAge = now().Sub(oldest)
		}
		return st, err
	})
	a.Flows = fs
	doc := doctor.New(doctor.Config{DB: db, Secrets: a.Secrets, Flows: fs, Log: log, Tap: tap, Egress: route,
		Exec: cfg.Exec, ExecAllow: cfg.ExecAllow})
	a.API = server.New(server.Deps{DB: db, Auth: a.Auth, Projects: a.Projects, Secrets: a.Secrets, Apps: a.Apps, Flows: fs, Logger: log, RateLimit: cfg.RateLimit,
		Doctor:     doc,
		ProbesOnly: cfg.NoAPI,
		Cores:      a.cores,
		Metrics:    a.Metrics, MetricsToken: cfg.MetricsToken})
	if !cfg.NoAPI {
		web.Mount(a.API.Echo()) // the UI, on paths the API does not claim
	}
	return a, nil
}

// startSandbox starts the pool of sandbox processes that evaluate scripts
// static analysis cannot prove bounded.
func (a *App) startSandbox() error {
	path, args := a.Config.SandboxPath, a.Config.SandboxArgs
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("sandbox: find own executable: %w", err)
		}
		path = exe
	}
	n := a.Config.SandboxWorkers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	pool, err := sandbox.New(sandbox.Config{Path: path, Args: args, Workers: n,
		Env: []string{sandbox.EnvWorker + "=1"}})
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	a.sandbox = pool
	a.closers = append(a.closers, pool.Close)
	return nil
}

// Serve serves the API on ln and runs the workers until ctx is done, then
// shuts down gracefully:
//
//  1. /readyz answers 503 and the requests that wait (?wait=, followed
//     event streams) end, so that clients go on against other replicas;
//  2. the workers claim nothing more and drain: runs in progress get
//     Config.ShutdownGrace, then are released to other replicas; the API
//     keeps answering meanwhile;
//  3. the API stops accepting connections and finishes the requests in
//     progress (for at most the grace).
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := a.API.HTTPServer(ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	wctx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorkers()
	var wg sync.WaitGroup
	if !a.Config.NoWorkers {
		wg.Add(1)
		go func() { defer wg.Done(); a.Flows.Start(wctx) }()
	}
	role := "all"
	switch {
	case a.Config.NoWorkers:
		role = "api"
	case a.Config.NoAPI:
		role = "worker"
	}
	kv := []any{"addr", "http://" + ln.Addr().String(), "role", role, "worker", a.Flows.WorkerID(),
		"database", string(a.DB.Dialect), "location", a.DB.Location}
	// The effective settings, defaults applied: what an operator set, or
	// meant to, is visible without reading the defaults in the docs.
	if !a.Config.NoAPI {
		var rate any = a.Config.RateLimit
		switch {
		case a.Config.RateLimit < 0:
			rate = "off"
		case a.Config.RateLimit == 0:
			rate = float64(server.DefaultRateLimit)
		}
		kv = append(kv, "rate_limit", rate)
	}
	if !a.Config.NoWorkers {
		kv = append(kv, a.Flows.Settings()...)
		if a.sandbox != nil {
			kv = append(kv, "sandbox_workers", a.sandbox.Workers())
		}
	}
	if a.cores != nil {
		kv = append(kv, "gomaxprocs", fmt.Sprintf("1 while idle, %d under load", a.cores.WideProcs()))
	} else {
		kv = append(kv, "gomaxprocs", runtime.GOMAXPROCS(0))
	}
	if d := cores.TimerSlack(); d > 0 {
		kv = append(kv, "timer_slack", d.String())
	}
	a.Log.Info("hushflow serving", kv...)
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	a.API.BeginShutdown()
	if a.Config.NoWorkers {
		a.Log.Info("shutting down")
	} else {
		a.Log.Info("shutting down: no new runs are claimed; runs in progress drain", "grace", a.grace().String())
	}
	stopWorkers()
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), a.grace())
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("shutdown: %w", serr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	a.Log.Info("stopped")
	return err
}

// Cores is the Governor of the process's processors (nil without
// Config.AdaptiveCores).
func (a *App) Cores() *cores.Governor { return a.cores }

// grace is the shutdown grace (HUSHFLOW_SHUTDOWN_GRACE, 30s by default).
func (a *App) grace() time.Duration {
	if a.Config.ShutdownGrace > 0 {
		return a.Config.ShutdownGrace
	}
	return 30 * time.Second
}

// Close releases the database and the sandbox.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

// newLogger builds the server's logger: every record passes through the
// redacting handler.
func newLogger(format string, w io.Writer, red *redact.Redactor, unmasked bool) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	var h slog.Handler
	switch format {
	case "text", "":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("unknown log format %q (want text or json)", format)
	}
	if unmasked {
		return slog.New(h), nil // tests of the redaction self-test only
	}
	return slog.New(redact.NewHandler(h, red)), nil
}

// secretNamesAnywhere lists the secret names a project's runs can resolve
// in at least one environment (for save-time warnings).
func (a *App) secretNamesAnywhere(ctx context.Context, project string) ([]string, error) {
	envs, err := a.Projects.Environments(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, e := range envs {
		ns, err := a.Secrets.Names(ctx, project, e.Name)
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out, nil
}
