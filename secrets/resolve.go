package secrets

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Access says who resolves which name, from which run and block. Project
// and Environment are the run's scope.
type Access struct {
	Project     string
	Environment string
	Name        string
	RunID       string
	BlockID     string
	Actor       string // e.g. "run" or a user name for a preview
	// Reader is the environment of the run (or preview) that reads, when
	// it may differ from Environment (secrets.get of another
	// environment): a protected environment's secrets resolve only for
	// its own runs and the environments they name in readable_from.
	Reader string
}

// Meta describes a resolved secret (never its value).
type Meta struct {
	SecretID     string
	Name         string
	Version      int
	Kind         Kind
	Scope        Scope // where the definition lives
	AllowedHosts []string
}

// Resolve returns the value of a.Name as a run of (a.Project,
// a.Environment) sees it: the most specific of project+environment,
// project, environment, organization. Each call decrypts and records one
// audit record (use a RunResolver to cache per run). An unknown name wraps
// ErrUnknownSecret; a value that does not decrypt is a *DecryptError.
func (s *Store) Resolve(ctx context.Context, a Access) (Value, Meta, error) {
	return s.resolve(ctx, a, nil, nil)
}

// resolve is Resolve, committing the records with (a run's load) with the
// read's own.
func (s *Store) resolve(ctx context.Context, a Access, with []AuditRecord, lead *leadRows) (Value, Meta, error) {
	if err := ValidateName(a.Name); err != nil {
		return Value{}, Meta{}, fmt.Errorf("%w: %v", ErrUnknownSecret, err)
	}
	rows, err := s.visibleRows(s.db.WithContext(ctx), a.Project, a.Environment, a.Name)
	if err != nil {
		return Value{}, Meta{}, err
	}
	row := mostSpecific(rows)[a.Name]
	if row == nil {
		return Value{}, Meta{}, unknownError(a.Name, a.Project, a.Environment)
	}
	if err := s.checkProtected(ctx, row, a); err != nil {
		return Value{}, Meta{}, err
	}
	v, meta, err := s.decryptCurrent(ctx, row, a.Actor, a.RunID, a.BlockID)
	if err != nil {
		return Value{}, Meta{}, err
	}
	rec := s.auditFor(a.Actor, ActionResolve, row, meta.Version, "")
	rec.RunID, rec.BlockID, rec.RunProject, rec.RunEnv = a.RunID, a.BlockID, a.Project, a.Environment
	if a.Reader != "" {
		rec.RunEnv = a.Reader // the run's own environment, not the one it read from
	}
	if err := s.recordWith(ctx, append(with, *rec), lead); err != nil {
		// An access that cannot be audited is refused.
		return Value{}, Meta{}, fmt.Errorf("secret %q: record access: %w", a.Name, err)
	}
	return v, meta, nil
}

// ErrProtected is wrapped by the error of a read refused because the
// secret belongs to a protected environment.
var ErrProtected = errors.New("protected environment")

// checkProtected refuses a read of row, a secret of a protected
// environment, by a run of another environment that row's readable_from
// does not name. The refusal is audited (read_denied).
func (s *Store) checkProtected(ctx context.Context, row *secretRow, a Access) error {
	if a.Reader == "" || row.Environment == "" || row.Environment == a.Reader {
		return nil
	}
	var env projects.Environment
	if err := s.db.WithContext(ctx).Where("id = ?", row.EnvironmentID).First(&env).Error; err != nil {
		return store.Translate(err)
	}
	if !env.Protected || slices.Contains(row.meta().ReadableFrom, a.Reader) {
		return nil
	}
	rec := s.auditFor(a.Actor, ActionReadDenied, row, row.CurrentVersion, "environment "+row.Environment+" is protected; read by a run of "+a.Reader)
	rec.RunID, rec.BlockID, rec.RunProject, rec.RunEnv = a.RunID, a.BlockID, a.Project, a.Reader
	_ = s.db.WithContext(context.WithoutCancel(ctx)).Create(rec).Error
	return fmt.Errorf("%w: secret %q of environment %s cannot be read by a run of %s: %s is protected, and its secrets are read only by its own runs "+
		"and the environments a secret names in readable_from (an editor of the secret can add %s with its next value)",
		ErrProtected, row.Name, row.Environment, a.Reader, row.Environment, a.Reader)
}

func unknownError(name, project, environment string) error {
	where := "project " + orNone(project) + ", environment " + orNone(environment)
	return fmt.Errorf("%w: secret %q is not defined for %s (looked in: project+environment, project, environment, organization)",
		ErrUnknownSecret, name, where)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// decryptCurrent decrypts row's current version. A failure is audited
// (decrypt_failure) and returned as a *DecryptError.
func (s *Store) decryptCurrent(ctx context.Context, row *secretRow, actor, runID, blockID string) (Value, Meta, error) {
	var ver versionRow
	err := s.db.WithContext(ctx).Where("secret_id = ? AND version = ?", row.ID, row.CurrentVersion).First(&ver).Error
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return Value{}, Meta{}, fmt.Errorf("secret %q (%s): version %d is missing", row.Name, row.scope().Describe(), row.CurrentVersion)
		}
		return Value{}, Meta{}, store.Translate(err)
	}
	return s.open(ctx, row, &ver, actor, runID, blockID)
}

func (s *Store) open(ctx context.Context, row *secretRow, ver *versionRow, actor, runID, blockID string) (Value, Meta, error) {
	pt, reason := s.keys.open(row.identity(ver.Version), ver.sealed())
	if reason != "" {
		derr := &DecryptError{Name: row.Name, Scope: row.scope(), Version: ver.Version, KeyID: ver.KeyID, Reason: reason}
		rec := s.auditFor(actor, ActionDecryptFailure, row, ver.Version, truncate(reason, 500))
		rec.RunID, rec.BlockID = runID, blockID
		_ = s.db.WithContext(context.WithoutCancel(ctx)).Create(rec).Error
		s.log.Error("secret does not decrypt", "secret", row.Name, "scope", row.scope().Describe(),
			"version", ver.Version, "key_id", ver.KeyID, "reason", reason)
		return Value{}, Meta{}, derr
	}
	m := row.meta()
	v := NewValue(string(pt))
	s.seen(row.Name, v)
	return v, Meta{SecretID: row.ID, Name: row.Name, Version: ver.Version, Kind: Kind(row.Kind),
		Scope: row.scope(), AllowedHosts: m.AllowedHosts}, nil
}

// Names lists the secret names a run of (project, environment) sees.
func (s *Store) Names(ctx context.Context, project, environment string) ([]string, error) {
	rows, err := s.visibleRows(s.db.WithContext(ctx).Select("name", "project", "environment"), project, environment, "")
	if err != nil {
		return nil, err
	}
	best := mostSpecific(rows)
	out := make([]string, 0, len(best))
	for n := range best {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// ResolvedValues decrypts every secret a run of (project, environment)
// sees, for building the run's redactor. It is audited as one
// "redaction_load" record naming the scope, the run and the number of
// values (a redactor never shows values; individual reads by expressions
// are audited by Resolve). Any value that does not decrypt fails the call.
func (s *Store) ResolvedValues(ctx context.Context, project, environment string) (map[string]Value, error) {
	return s.resolvedValues(ctx, project, environment, "", "")
}

func (s *Store) resolvedValues(ctx context.Context, project, environment, runID, actor string) (map[string]Value, error) {
	loaded, err := s.load(ctx, project, environment, runID, actor)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Value, len(loaded))
	for _, l := range loaded {
		out[l.Meta.Name] = l.Value
	}
	return out, nil
}

// Loaded is one decrypted secret of a run's scope.
type Loaded struct {
	Value Value
	Meta  Meta
	// Previous holds the values of the secret's earlier versions that
	// still hold ciphertext (often still valid during a rotation): a
	// run's redactor masks them too.
	Previous []Value
}

// load decrypts the current version of every secret (project,
// environment) sees and records one redaction_load audit record.
func (s *Store) load(ctx context.Context, project, environment, runID, actor string) ([]Loaded, error) {
	out, err := s.readScope(ctx, project, environment, runID, actor)
	if err != nil {
		return nil, err
	}
	if err := s.recordLoads(ctx, project, environment, actor, len(out), []string{runID}); err != nil {
		return nil, err
	}
	return out, nil
}

// recordLoads records one redaction_load audit record per run.
func (s *Store) recordLoads(ctx context.Context, project, environment, actor string, n int, runIDs []string) error {
	recs := make([]AuditRecord, len(runIDs))
	for i, id := range runIDs {
		recs[i] = s.loadRecord(project, environment, actor, n, id)
	}
	if err := s.recordReads(ctx, recs); err != nil {
		return fmt.Errorf("record redaction load: %w", err)
	}
	return nil
}

// loadRecord is the redaction_load audit record of run id's load of n
// secrets.
func (s *Store) loadRecord(project, environment, actor string, n int, id string) AuditRecord {
	return AuditRecord{ID: newID(), At: s.now(), Actor: actor, Action: ActionRedactionLoad, Project: project,
		Environment: environment, ScopeLabel: Scope{project, environment}.Label(), RunID: id,
		RunProject: project, RunEnv: environment,
		Detail: plural(n, "secret") + " loaded into the run's redactor"}
}

// loadGroup shares loads of one scope between runs (see loadShared).
type loadGroup struct {
	mu      sync.Mutex // guards running and waiting
	running bool
	waiting []*loadWaiter
}

type loadWaiter struct {
	runID string
	done  chan loadResult
}

type loadResult struct {
	loaded []Loaded
	err    error
}

// loadShared reads and decrypts a scope for a run, as load does but
// without recording it: the run's RunResolver records its load. The runs
// of one scope that ask while a load of that scope is being read wait for
// the next one and share it: one query and one decryption of each value
// for many runs. A run never gets
// values read before it asked. The run that finds no load going does the
// next one itself (no goroutine to wake when runs come one at a time),
// and leaves those that queued meanwhile to a goroutine.
func (s *Store) loadShared(ctx context.Context, project, environment, runID, actor string) ([]Loaded, error) {
	v, _ := s.loads.LoadOrStore(project+"\x00"+environment+"\x00"+actor, &loadGroup{})
	g := v.(*loadGroup)
	w := &loadWaiter{runID: runID, done: make(chan loadResult, 1)}
	g.mu.Lock()
	g.waiting = append(g.waiting, w)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead && s.loadOnce(g, project, environment, actor) {
		go s.runLoads(g, project, environment, actor)
	}
	select {
	case r := <-w.done:
		return r.loaded, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runLoads serves g's waiting runs, one load per group of them, until none
// is waiting.
func (s *Store) runLoads(g *loadGroup, project, environment, actor string) {
	for s.loadOnce(g, project, environment, actor) {
	}
}

// loadOnce serves the runs waiting in g with one load; it reports whether
// more runs queued meanwhile (g stays running), or not (g stops running).
func (s *Store) loadOnce(g *loadGroup, project, environment, actor string) (more bool) {
	g.mu.Lock()
	batch := g.waiting
	g.waiting = nil
	g.mu.Unlock()
	if len(batch) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		// A value that does not decrypt is audited with the first run.
		loaded, err := s.readScope(ctx, project, environment, batch[0].runID, actor)
		cancel()
		for _, w := range batch {
			w.done <- loadResult{loaded, err}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiting) == 0 {
		g.running = false
		return false
	}
	return true
}

// readScope decrypts the current version of every secret (project,
// environment) sees, and its earlier versions that still hold
// ciphertext, read with one query (definitions joined with their live
// versions, one consistent snapshot). A value that does not decrypt is
// audited with runID; a current one fails the load, an earlier one is
// left out.
func (s *Store) readScope(ctx context.Context, project, environment, runID, actor string) ([]Loaded, error) {
	joined, err := s.scopeRows(ctx, project, environment)
	if err != nil {
		return nil, store.Translate(err)
	}
	if len(joined) == 0 {
		return nil, nil
	}
	// One definition per secret, with its versions.
	var rows []secretRow
	versions := map[string][]*loadRow{}
	for i := range joined {
		j := &joined[i]
		if len(versions[j.Row.ID]) == 0 {
			rows = append(rows, j.Row)
		}
		versions[j.Row.ID] = append(versions[j.Row.ID], j)
	}
	best := mostSpecific(rows)
	out := make([]Loaded, 0, len(best))
	missing := 0
	for i := range rows {
		row := &rows[i]
		if best[row.Name] != row {
			continue // shadowed by a more specific scope
		}
		var l Loaded
		found := false
		for _, j := range versions[row.ID] {
			if j.VVersion == nil {
				continue
			}
			ver := versionRow{SecretID: row.ID, Version: *j.VVersion, Ciphertext: j.VCiphertext, WrappedKey: j.VWrappedKey,
				KeyID: j.VKeyID, CreatedAt: j.VCreatedAt, CreatedBy: j.VCreatedBy, Wiped: j.VWiped}
			v, m, err := s.open(ctx, row, &ver, actor, runID, "")
			if ver.Version != row.CurrentVersion {
				if err == nil {
					l.Previous = append(l.Previous, v)
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			l.Value, l.Meta, found = v, m, true
		}
		if !found {
			missing++
			continue
		}
		out = append(out, l)
	}
	if missing > 0 {
		return nil, fmt.Errorf("load secrets for %s: %d of %d current versions are missing", Scope{project, environment}.Describe(), missing, len(best))
	}
	return out, nil
}

// scopeSQL reads the secrets of a scope (the project or "", the
// environment or "") with their live versions: every column of secrets,
// named (scopeRows scans them by hand, as gorm's reflection cost a run
// more than the query's round trip did; see docs/performance.md,
// "seventh round").
const scopeSQL = `SELECT ` + secretColumns + `, v.version, v.ciphertext, v.wrapped_key, v.key_id, v.created_at, v.created_by, v.wiped
FROM secrets s LEFT JOIN secret_versions v ON v.secret_id = s.id AND (v.version = s.current_version OR v.wiped = ?)
WHERE s.deleted_at IS NULL AND s.project IN (?, ?) AND s.environment IN (?, ?)
ORDER BY s.id, v.version DESC`

// secretColumns are the columns of secrets, in the order secretRow.fields
// gives its fields.
const secretColumns = `s.id, s.name, s.project_id, s.project, s.environment_id, s.environment, s.kind, s.description,
s.allowed_hosts, s.readable_from, s.weak, s.current_version, s.created_at, s.created_by, s.updated_at, s.updated_by,
s.deleted_at, s.deleted_by, s.exposed_at, s.exposed_run_id, s.exposed_run_project, s.exposed_block, s.exposed_sink`

// fields are the destinations of secretColumns.
func (r *secretRow) fields() []any {
	return []any{&r.ID, &r.Name, &r.ProjectID, &r.Project, &r.EnvironmentID, &r.Environment, &r.Kind, &r.Description,
		&r.AllowedHosts, &r.ReadableFrom, &r.Weak, &r.CurrentVersion, &r.CreatedAt, &r.CreatedBy, &r.UpdatedAt, &r.UpdatedBy,
		&r.DeletedAt, &r.DeletedBy, &r.ExposedAt, &r.ExposedRunID, &r.ExposedRunProject, &r.ExposedBlock, &r.ExposedSink}
}

// scopeRows returns the rows of scopeSQL for a scope: on SQLite from
// memory while the secrets have not changed since they were read (see
// scopeCache), otherwise from the database.
func (s *Store) scopeRows(ctx context.Context, project, environment string) ([]loadRow, error) {
	if s.scopes == nil || !s.scopesUsable(ctx) {
		return s.queryScope(ctx, project, environment)
	}
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	key := project + "\x00" + environment
	if rows, ok := s.scopes.get(gen, key); ok {
		return rows, nil
	}
	rows, err := s.queryScope(ctx, project, environment)
	if err != nil {
		return nil, err
	}
	s.scopes.put(gen, key, rows)
	return rows, nil
}

// generationTriggers are the triggers of migration 0024 that set
// secret_generation anew at every change to the secrets' tables.
var generationTriggers = []any{"secrets_generation_insert", "secrets_generation_update", "secrets_generation_delete",
	"secret_versions_generation_insert", "secret_versions_generation_update", "secret_versions_generation_delete"}

// scopesUsable reports whether loads may keep their scope's rows: the
// triggers that keep secret_generation true are all there. It looks at
// the first load and remembers; without them (a table rebuilt by hand
// drops its triggers) every load reads its rows, and the server log says
// why once. A look that fails is tried again at the next load.
func (s *Store) scopesUsable(ctx context.Context) bool {
	c := s.scopes
	switch c.usable.Load() {
	case scopesOn:
		return true
	case scopesOff:
		return false
	}
	n, err := s.queryInt(ctx, store.Values(`SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN `,
		1, len(generationTriggers), ""), generationTriggers...)
	if err != nil {
		return false
	}
	if n == int64(len(generationTriggers)) {
		c.usable.Store(scopesOn)
		return true
	}
	if c.usable.CompareAndSwap(scopesUnknown, scopesOff) {
		s.log.Warn("the triggers that mark changes to secrets are missing (migration 0024): every run reads its secrets' rows",
			"found", n, "want", len(generationTriggers))
	}
	return false
}

// The states of scopeCache.usable.
const (
	scopesUnknown int32 = iota
	scopesOn
	scopesOff
)

// generation reads secret_generation's gen, which every change to
// secrets or secret_versions sets anew (triggers of migration 0024).
func (s *Store) generation(ctx context.Context) (int64, error) {
	return s.queryInt(ctx, `SELECT gen FROM secret_generation WHERE id = 1`)
}

// queryInt runs q, a query of one integer in one row.
func (s *Store) queryInt(ctx context.Context, q string, args ...any) (int64, error) {
	rows, err := store.Query(s.db.WithContext(s.db.Short(ctx)), q, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("no row: %s", q)
	}
	var n int64
	if err := rows.Scan(&n); err != nil {
		return 0, err
	}
	return n, rows.Err()
}

// scopeCache keeps, on SQLite, the rows scopeSQL read for each scope
// (definitions and ciphertext, never a value: each load still decrypts
// what it uses) under the secrets' generation they were read after. A
// load reads the generation, one integer, and reads its scope again only
// when the generation changed: any write to the secrets' tables, by this
// process or another, changes it (triggers), so a load never gets rows
// older than the last committed change. (PostgreSQL reads its rows
// each time: see migration 0024.)
type scopeCache struct {
	// usable says whether the triggers are there (scopesUsable).
	usable atomic.Int32
	mu     sync.Mutex // guards gen and rows
	gen    int64
	rows   map[string][]loadRow // by project and environment
}

// maxCachedScopes bounds the scopes kept (each a few rows).
const maxCachedScopes = 1024

// get returns the rows of key read under generation gen. A generation
// other than the cache's empties it.
func (c *scopeCache) get(gen int64, key string) ([]loadRow, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		clear(c.rows)
		c.gen = gen
		return nil, false
	}
	rows, ok := c.rows[key]
	return rows, ok
}

// put keeps rows, read after generation gen was, unless the cache has
// seen another generation since. The rows are shared by the loads that
// get them: nothing may change them.
func (c *scopeCache) put(gen int64, key string, rows []loadRow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.rows) >= maxCachedScopes {
		clear(c.rows)
	}
	c.rows[key] = rows
}

// queryScope runs scopeSQL.
func (s *Store) queryScope(ctx context.Context, project, environment string) ([]loadRow, error) {
	rows, err := store.Query(s.db.WithContext(s.db.Short(ctx)), scopeSQL, false, "", project, "", environment)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	joined := make([]loadRow, 0, 4)
	for rows.Next() {
		var j loadRow
		var keyID, by sql.NullString
		var at sql.NullTime
		var wiped sql.NullBool
		dest := append(j.Row.fields(), &j.VVersion, &j.VCiphertext, &j.VWrappedKey, &keyID, &at, &by, &wiped)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		j.VKeyID, j.VCreatedAt, j.VCreatedBy, j.VWiped = keyID.String, at.Time, by.String, wiped.Bool
		joined = append(joined, j)
	}
	return joined, rows.Err()
}

// loadRow is a secret joined with one of its live versions (nil VVersion:
// it has none).
type loadRow struct {
	Row         secretRow `gorm:"embedded"`
	VVersion    *int      `gorm:"column:v_version"`
	VCiphertext []byte    `gorm:"column:v_ciphertext"`
	VWrappedKey []byte    `gorm:"column:v_wrapped_key"`
	VKeyID      string    `gorm:"column:v_key_id"`
	VCreatedAt  time.Time `gorm:"column:v_created_at"`
	VCreatedBy  string    `gorm:"column:v_created_by"`
	VWiped      bool      `gorm:"column:v_wiped"`
}

// RunResolver resolves secrets for one run and caches the decrypted values
// for the run's lifetime (a run sees one consistent version of each
// secret). Resolutions are audited once per (block, secret, version): a
// block that reads a name ten times leaves one record. Safe for
// concurrent use. Drop it when the run ends.
//
// The engine's Resolver is an adapter over it in the caller:
//
//	func (a adapter) Resolve(ctx context.Context, name string, sc engine.Scope) (string, error) {
//		v, _, err := a.rr.Resolve(ctx, a.block, name, secrets.Scope(sc))
//		return v.Reveal(), err
//	}
type RunResolver struct {
	s                    *Store
	project, environment string
	runID, actor         string

	mu sync.Mutex
	// mu guards values, audited and unrecorded.
	values  map[cacheKey]resolved
	audited map[string]bool
	// unrecorded holds the audit record of the run's load until it is
	// committed, with the run's first audited read or by Flush.
	unrecorded []AuditRecord
	// loadTurn holds a token while a commit that carries the load record
	// is under way (withLoad); it guards lead.
	loadTurn chan struct{}
	// lead is rows of the caller's that the next commit stores first
	// (Lead).
	lead *leadRows
}

type cacheKey struct{ name, project, environment string }

type resolved struct {
	v    Value
	meta Meta
}

// NewRunResolver returns a resolver for a run of (project, environment).
func (s *Store) NewRunResolver(project, environment, runID string) *RunResolver {
	return &RunResolver{s: s, project: project, environment: environment, runID: runID, actor: "run",
		values: map[cacheKey]resolved{}, audited: map[string]bool{}, loadTurn: make(chan struct{}, 1)}
}

// Resolve returns name's value for blockID. An empty field of sc means the
// run's own; sc.Environment may name another environment, but sc.Project
// may not name another project: a run never sees another project's
// secrets, and such a name is reported as not defined.
func (r *RunResolver) Resolve(ctx context.Context, blockID, name string, sc Scope) (Value, Meta, error) {
	if sc.Project == "" {
		sc.Project = r.project
	}
	if sc.Environment == "" {
		sc.Environment = r.environment
	}
	if sc.Project != r.project {
		return Value{}, Meta{}, fmt.Errorf("%w: secret %q is not defined for project %s: a run of project %s reads only its own project's secrets",
			ErrUnknownSecret, name, sc.Project, orNone(r.project))
	}
	key := cacheKey{name, sc.Project, sc.Environment}
	r.mu.Lock()
	c, ok := r.values[key]
	r.mu.Unlock()
	if !ok {
		a := Access{Project: sc.Project, Environment: sc.Environment, Name: name, RunID: r.runID, BlockID: blockID, Actor: r.actor,
			Reader: r.environment}
		var v Value
		var m Meta
		err := r.withLoad(func(with []AuditRecord, lead *leadRows) (err error) {
			v, m, err = r.s.resolve(ctx, a, with, lead) // audits this first read
			return err
		})
		if err != nil {
			return Value{}, Meta{}, err
		}
		c = resolved{v: v, meta: m}
		r.mu.Lock()
		r.values[key] = c
		r.audited[auditKey(blockID, m)] = true
		r.mu.Unlock()
		return v, m, nil
	}
	ak := auditKey(blockID, c.meta)
	r.mu.Lock()
	done := r.audited[ak]
	r.audited[ak] = true
	r.mu.Unlock()
	if !done {
		rec := &AuditRecord{ID: newID(), At: r.s.now(), Actor: r.actor, Action: ActionResolve, SecretID: c.meta.SecretID,
			SecretName: c.meta.Name, Version: c.meta.Version, Project: c.meta.Scope.Project, Environment: c.meta.Scope.Environment,
			ScopeLabel: c.meta.Scope.Label(), RunID: r.runID, BlockID: blockID, Detail: "cached for the run",
			RunProject: r.project, RunEnv: r.environment}
		err := r.withLoad(func(with []AuditRecord, lead *leadRows) error { return r.s.recordWith(ctx, append(with, *rec), lead) })
		if err != nil {
			r.mu.Lock()
			delete(r.audited, ak)
			r.mu.Unlock()
			return Value{}, Meta{}, fmt.Errorf("secret %q: record access: %w", name, err)
		}
	}
	return c.v, c.meta, nil
}

// Names lists the names visible to the run.
func (r *RunResolver) Names(ctx context.Context) ([]string, error) {
	return r.s.Names(ctx, r.project, r.environment)
}

// Load decrypts every secret visible to the run (for its redactor and
// host pinning) and keeps the values, so that the run's reads in its own
// scope need no further query or decryption (each is still audited once
// per block). It is audited as one redaction_load record carrying the run
// id, committed with the run's first audited read (in the same
// statement: no commit of its own), or with the run's first write: in
// its transaction (Pending) or just before it (Flush). Until then the
// values are in the run's memory only, and reach nothing but its
// redactor and pins.
func (r *RunResolver) Load(ctx context.Context) ([]Loaded, error) {
	loaded, err := r.s.loadShared(ctx, r.project, r.environment, r.runID, r.actor)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unrecorded = append(r.unrecorded, r.s.loadRecord(r.project, r.environment, r.actor, len(loaded), r.runID))
	for _, l := range loaded {
		r.values[cacheKey{l.Meta.Name, r.project, r.environment}] = resolved{v: l.Value, meta: l.Meta}
	}
	return loaded, nil
}

// Flush commits the audit record of the run's load, when no read has yet.
func (r *RunResolver) Flush(ctx context.Context) error {
	err := r.withLoad(func(with []AuditRecord, lead *leadRows) error {
		if len(with) == 0 && lead == nil {
			return nil
		}
		return r.s.recordWith(ctx, with, lead)
	})
	if err != nil {
		return fmt.Errorf("record redaction load: %w", err)
	}
	return nil
}

// Pending hands the audit record of the run's load, while no commit has
// stored it, to a write of the caller's that stores it in its own
// transaction (as rows for the store's Batcher; nil when there is none).
// done must then be called with whether that write stored it: if not,
// the record waits for the next commit (a read, or Flush). Until done,
// the run's reads wait, as they do for Flush: no read of the run is
// committed before its load. Only done's first call counts, so that a
// deferred done(false) covers a write that panicked.
func (r *RunResolver) Pending() (rows any, done func(stored bool)) {
	r.loadTurn <- struct{}{}
	with := r.takeUnrecorded()
	if len(with) == 0 {
		<-r.loadTurn
		return nil, func(bool) {}
	}
	var once sync.Once
	return auditRows(with), func(stored bool) {
		once.Do(func() {
			if !stored {
				r.giveBack(with)
			}
			<-r.loadTurn
		})
	}
}

// withLoad runs commit, which stores audit records, giving it the run's
// load record while that is not committed yet, and the caller's rows
// (Lead) while no commit has stored them. The commit that carries them
// holds loadTurn until it ends, and commits that start meanwhile (the
// reads of iterations that run at once) wait for it: no read of the run
// is committed before its load. A commit that fails gives the record
// back, for the next; the caller's rows are not, once a commit tried them
// (Lead): a commit that failed before it wrote (a read refused) leaves
// them for the next.
func (r *RunResolver) withLoad(commit func(with []AuditRecord, lead *leadRows) error) error {
	r.loadTurn <- struct{}{}
	with := r.takeUnrecorded()
	lead := r.lead
	r.lead = nil
	if len(with) == 0 && lead == nil {
		<-r.loadTurn
		return commit(nil, nil)
	}
	defer func() { <-r.loadTurn }()
	err := commit(with, lead)
	if lead != nil {
		if lead.tried {
			lead.done(err)
		} else {
			r.lead = lead
		}
	}
	if err != nil {
		r.giveBack(with)
		return err
	}
	return nil
}

// Lead has the run's next commit of audit records (its first read, or
// Flush) store rows, a store.RowsInserter of the caller's, first in its
// transaction, and then call done with how that went. The rows are
// handed over once: a commit that failed calls done with its error and
// does not try them again. A run that starts before its own row is
// stored has its insert go with its first audited read, a commit fewer
// (on PostgreSQL in the same statement: store.LeadInserter). Pending does not carry them: a caller of Pending calls
// Flush first while its rows wait.
func (r *RunResolver) Lead(rows any, done func(error)) {
	r.loadTurn <- struct{}{}
	defer func() { <-r.loadTurn }()
	r.lead = &leadRows{rows: rows, done: done}
}

// leadRows are the rows of a Lead; tried is set by the commit that
// writes them.
type leadRows struct {
	rows  any
	done  func(error)
	tried bool
}

// takeUnrecorded takes the records waiting to be committed; giveBack
// returns those a failed commit did not store.
func (r *RunResolver) takeUnrecorded() []AuditRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	with := r.unrecorded
	r.unrecorded = nil
	return with
}

func (r *RunResolver) giveBack(recs []AuditRecord) {
	if len(recs) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unrecorded = append(recs, r.unrecorded...)
}

// RedactionValues decrypts every value visible to the run for its
// redactor; audited as one redaction_load record carrying the run id.
func (r *RunResolver) RedactionValues(ctx context.Context) (map[string]Value, error) {
	return r.s.resolvedValues(ctx, r.project, r.environment, r.runID, r.actor)
}

func auditKey(block string, m Meta) string {
	return block + "\x00" + m.SecretID + "\x00" + strconv.Itoa(m.Version)
}

// plural is "1 secret", "2 secrets".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
