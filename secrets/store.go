// Package secrets keeps Hushflow's secrets: scoped, versioned, encrypted at
// rest with envelope encryption under a keyring that never touches the
// database, audited, and write-only (no method returns a value except the
// runtime resolution the engine uses, and Value prints as [REDACTED]).
//
// Scopes, from most to least specific: project+environment, project,
// environment, organization. A run of project P in environment E sees, for
// each name, the most specific definition; it never sees another project's
// secrets.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/internal/suggest"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/redact"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Store is the secrets service over a database and a keyring. It is safe
// for concurrent use; several server replicas may share one database.
type Store struct {
	db   *store.DB
	keys *Keyring
	log  *slog.Logger
	now  func() time.Time
	// observe, when set, receives every value this process encrypts or
	// decrypts (Config.Observe).
	observe func(name, value string)
	// batcher, when set, writes the audit records of reads
	// (Config.Batcher).
	batcher *store.Batcher
	// loads holds a *loadGroup per scope (loadShared).
	loads sync.Map
	// maskers caches Masker by project.
	maskMu  sync.Mutex
	maskers map[string]masker
	// scopes keeps the rows of the scopes runs loaded, on SQLite
	// (scopeRows); nil on PostgreSQL.
	scopes *scopeCache
}

// recordReads stores the audit records of reads, through the batcher when
// there is one; an access that cannot be audited is refused by the caller.
func (s *Store) recordReads(ctx context.Context, recs []AuditRecord) error {
	return s.recordWith(ctx, recs, nil)
}

// recordWith is recordReads that stores lead's rows (a
// store.RowsInserter), when there are, first in the same transaction
// (RunResolver.Lead), and marks them tried.
func (s *Store) recordWith(ctx context.Context, recs []AuditRecord, lead *leadRows) error {
	rows := []any{auditRows(recs)}
	if lead != nil {
		lead.tried = true
		rows = []any{lead.rows, auditRows(recs)}
	}
	if s.batcher != nil {
		_, err := s.batcher.Write(ctx, store.Write{Rows: rows, Durable: true})
		return err
	}
	if lead == nil {
		return store.Translate(s.db.WithContext(ctx).Create(&recs).Error)
	}
	return store.Translate(s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, r := range rows {
			if err := r.(store.RowsInserter).InsertRows(tx); err != nil {
				return err
			}
		}
		return nil
	}))
}

// auditRows are audit records the Batcher inserts with their own
// written-out INSERT (store.RowsInserter).
type auditRows []AuditRecord

// auditColumns are secret_audit's columns, in the order InsertRows gives
// a record's values.
const auditColumns = `id, at, actor, action, secret_id, secret_name, version, project, environment, scope_label, run_project,
run_environment, run_id, block_id, sink, detail`

// OneStatement: up to 500 records are one statement.
func (rs auditRows) OneStatement() bool { return len(rs) <= 500 }

// InsertRows inserts the records, 500 to a statement.
func (rs auditRows) InsertRows(db *gorm.DB) error {
	for start := 0; start < len(rs); start += 500 {
		chunk := rs[start:min(start+500, len(rs))]
		q := store.Values(`INSERT INTO secret_audit (`+auditColumns+`) VALUES `, len(chunk), 16, "")
		if _, err := store.Exec(db, q, chunk.args()...); err != nil {
			return err
		}
	}
	return nil
}

// FollowStatement inserts the records where cond holds, in one
// PostgreSQL statement (store.FollowInserter): after a run's insert, in
// the statement that stores both. Their values are a VALUES list, whose
// parameters PostgreSQL types as text unless cast.
func (rs auditRows) FollowStatement(cond string) (string, []any) {
	const row = `(?, ?::timestamptz, ?, ?, ?, ?, ?::bigint, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	var q strings.Builder
	q.WriteString(`INSERT INTO secret_audit (` + auditColumns + `) SELECT * FROM (VALUES `)
	for i := range rs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString(row)
	}
	q.WriteString(`) AS v WHERE ` + cond)
	return q.String(), rs.args()
}

// args are the records' values, auditColumns' for each.
func (rs auditRows) args() []any {
	args := make([]any, 0, 16*len(rs))
	for _, r := range rs {
		args = append(args, r.ID, r.At, r.Actor, r.Action, r.SecretID, r.SecretName, r.Version, r.Project, r.Environment,
			r.ScopeLabel, r.RunProject, r.RunEnv, r.RunID, r.BlockID, r.Sink, r.Detail)
	}
	return args
}

// seen reports a plaintext value to the observer.
func (s *Store) seen(name string, v Value) {
	if s.observe != nil {
		s.observe(name, v.Reveal())
	}
}

// Config is what a Store needs, given once to New.
type Config struct {
	DB *store.DB
	// Keyring is used at first encryption or decryption, so a wrong key
	// is reported then (naming the secret), not at New.
	Keyring *Keyring
	Logger  *slog.Logger
	// Observe, when set, receives every plaintext value the store seals
	// or opens, with its secret's name: the server gives it its log
	// redactor, so that a value this process has handled is masked in its
	// own log lines too.
	Observe func(name, value string)
	// Batcher, when set, writes the audit records of reads (Resolve, a
	// run's reads and redactor loads) in transactions shared with other
	// records (run events). A read still returns only once its record is
	// committed.
	Batcher *store.Batcher
	// Now is the clock of audit records and versions (time.Now when nil).
	Now func() time.Time
}

// New returns a Store.
func New(cfg Config) *Store {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	now := func() time.Time { return time.Now().UTC() }
	if cfg.Now != nil {
		now = func() time.Time { return cfg.Now().UTC() }
	}
	s := &Store{db: cfg.DB, keys: cfg.Keyring, log: cfg.Logger, now: now, observe: cfg.Observe, batcher: cfg.Batcher}
	if cfg.DB != nil && cfg.DB.Dialect == store.SQLite {
		s.scopes = &scopeCache{rows: map[string][]loadRow{}}
	}
	return s
}

// Keyring returns the store's keyring.
func (s *Store) Keyring() *Keyring { return s.keys }

// CreateInput is a new secret. Value is the plaintext (a string, or a
// file's bytes for KindFile).
type CreateInput struct {
	Name         string
	Scope        Scope
	Kind         Kind // empty means KindString
	Value        Value
	Description  string
	AllowedHosts []string
	// ReadableFrom names the other environments whose runs may read the
	// secret when its environment is protected.
	ReadableFrom []string
}

// UpdateInput is a new version of a secret. Description, AllowedHosts and
// ReadableFrom are changed only when not nil.
type UpdateInput struct {
	Kind  Kind // empty: the secret's kind; must match it
	Value Value
	// KeepValue changes only Description, not the value: no new version
	// (the exposure mark, which is about the value, stays). AllowedHosts
	// and ReadableFrom, where the value may go, change only with a new
	// value: widening them for the value in place would let whoever edits
	// a flow send it there.
	KeepValue    bool
	Description  *string
	AllowedHosts []string // nil: unchanged; empty: no restriction
	ReadableFrom []string // nil: unchanged; empty: none
}

// WeakWarning is the warning given for a weak value.
const WeakWarning = "the value is short or of low entropy: redaction can mask it only where it stands alone, so it may show up inside other text; use a long random value"

func weakness(v Value) (bool, []string) {
	if redact.Weak(v.Reveal()) {
		return true, []string{WeakWarning}
	}
	return false, nil
}

// scopeIDs checks that the scope's project and environment exist and
// returns their ids.
func (s *Store) scopeIDs(ctx context.Context, sc Scope) (projectID, envID string, err error) {
	ps := projects.NewService(s.db)
	if sc.Project != "" {
		p, err := ps.Get(ctx, sc.Project)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return "", "", store.NotFound("project", sc.Project)
			}
			return "", "", err
		}
		projectID = p.ID
	}
	if sc.Environment != "" {
		e, err := ps.GetEnvironment(ctx, sc.Environment)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				return "", "", err
			}
			es, lerr := ps.Environments(ctx)
			if lerr != nil {
				return "", "", lerr
			}
			names := make([]string, len(es))
			for i, e := range es {
				names[i] = e.Name
			}
			return "", "", apperr.Invalidf("unknown_environment", "unknown environment %s; create it first or use one of: %s",
				apperr.Echo(sc.Environment), strings.Join(names, ", "))
		}
		envID = e.ID
	}
	return projectID, envID, nil
}

// checkReaders refuses readable_from entries that are not environments
// (a typo would otherwise grant nothing, silently), with the nearest one.
func (s *Store) checkReaders(ctx context.Context, readers []string) error {
	if len(readers) == 0 {
		return nil
	}
	es, err := projects.NewService(s.db).Environments(ctx)
	if err != nil {
		return err
	}
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = e.Name
	}
	for _, r := range readers {
		if slices.Contains(names, r) {
			continue
		}
		if near := suggest.Nearest(r, names); near != "" {
			return apperr.Invalidf("unknown_environment", "readable_from names %s, which is not an environment; did you mean %q?", apperr.Echo(r), near)
		}
		return apperr.Invalidf("unknown_environment", "readable_from names %s, which is not an environment; the environments are %s", apperr.Echo(r), strings.Join(names, ", "))
	}
	return nil
}

func (s *Store) prepareCreate(ctx context.Context, in *CreateInput) (*secretRow, []string, error) {
	if err := ValidateName(in.Name); err != nil {
		return nil, nil, err
	}
	if in.Kind == "" {
		in.Kind = KindString
	}
	if err := validateValue(in.Kind, in.Value); err != nil {
		return nil, nil, err
	}
	if err := validateDescription(in.Description); err != nil {
		return nil, nil, err
	}
	hosts, err := normalizeHosts(in.AllowedHosts)
	if err != nil {
		return nil, nil, err
	}
	readers, err := normalizeReaders(in.ReadableFrom)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkReaders(ctx, readers); err != nil {
		return nil, nil, err
	}
	pid, eid, err := s.scopeIDs(ctx, in.Scope)
	if err != nil {
		return nil, nil, err
	}
	weak, warnings := weakness(in.Value)
	now := s.now()
	return &secretRow{
		ID: newID(), Name: in.Name, ProjectID: pid, Project: in.Scope.Project, EnvironmentID: eid,
		Environment: in.Scope.Environment, Kind: string(in.Kind), Description: in.Description,
		AllowedHosts: hostsJSON(hosts), ReadableFrom: hostsJSON(readers), Weak: weak, CurrentVersion: 1, CreatedAt: now, UpdatedAt: now,
	}, warnings, nil
}

// Create stores a new secret (version 1). It returns the metadata and
// warnings (a weak value). A name that exists in the scope is an error
// wrapping store.ErrConflict.
func (s *Store) Create(ctx context.Context, actor string, in CreateInput) (*Secret, []string, error) {
	row, warnings, err := s.prepareCreate(ctx, &in)
	if err != nil {
		return nil, nil, err
	}
	row.CreatedBy, row.UpdatedBy = actor, actor
	s.seen(row.Name, in.Value)
	sl, err := s.keys.seal(row.identity(1), []byte(in.Value.Reveal()))
	if err != nil {
		return nil, nil, err
	}
	ver := &versionRow{SecretID: row.ID, Version: 1, Ciphertext: sl.Ciphertext, WrappedKey: sl.WrappedKey,
		KeyID: sl.KeyID, CreatedAt: row.CreatedAt, CreatedBy: actor}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(row).Error; err != nil {
			return err
		}
		if err := tx.Create(ver).Error; err != nil {
			return err
		}
		return tx.Create(s.auditFor(actor, ActionCreate, row, 1, "")).Error
	})
	if err = store.Translate(err); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, nil, store.Conflict("secret", in.Name, in.Scope.Describe(), "update it to add a version, or delete it first")
		}
		return nil, nil, err
	}
	m := row.meta()
	return &m, warnings, nil
}

// Import creates many secrets in one transaction with batched inserts
// (bulk loads and tests). It is all or nothing.
func (s *Store) Import(ctx context.Context, actor string, ins []CreateInput) error {
	rows := make([]*secretRow, 0, len(ins))
	vers := make([]*versionRow, 0, len(ins))
	audits := make([]*AuditRecord, 0, len(ins))
	scopeCache := map[Scope][2]string{}
	for i := range ins {
		in := &ins[i]
		if ids, ok := scopeCache[in.Scope]; ok { // skip the lookups
			if err := ValidateName(in.Name); err != nil {
				return err
			}
			if in.Kind == "" {
				in.Kind = KindString
			}
			if err := validateValue(in.Kind, in.Value); err != nil {
				return err
			}
			hosts, err := normalizeHosts(in.AllowedHosts)
			if err != nil {
				return err
			}
			if err := validateDescription(in.Description); err != nil {
				return err
			}
			weak, _ := weakness(in.Value)
			now := s.now()
			rows = append(rows, &secretRow{ID: newID(), Name: in.Name, ProjectID: ids[0], Project: in.Scope.Project,
				EnvironmentID: ids[1], Environment: in.Scope.Environment, Kind: string(in.Kind), Description: in.Description,
				AllowedHosts: hostsJSON(hosts), Weak: weak, CurrentVersion: 1, CreatedAt: now, UpdatedAt: now})
		} else {
			row, _, err := s.prepareCreate(ctx, in)
			if err != nil {
				return err
			}
			scopeCache[in.Scope] = [2]string{row.ProjectID, row.EnvironmentID}
			rows = append(rows, row)
		}
		row := rows[len(rows)-1]
		row.CreatedBy, row.UpdatedBy = actor, actor
		s.seen(row.Name, in.Value)
		sl, err := s.keys.seal(row.identity(1), []byte(in.Value.Reveal()))
		if err != nil {
			return err
		}
		vers = append(vers, &versionRow{SecretID: row.ID, Version: 1, Ciphertext: sl.Ciphertext, WrappedKey: sl.WrappedKey,
			KeyID: sl.KeyID, CreatedAt: row.CreatedAt, CreatedBy: actor})
		audits = append(audits, s.auditFor(actor, ActionCreate, row, 1, "import"))
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.CreateInBatches(rows, 200).Error; err != nil {
			return err
		}
		if err := tx.CreateInBatches(vers, 200).Error; err != nil {
			return err
		}
		return tx.CreateInBatches(audits, 200).Error
	})
	if err = store.Translate(err); errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("import: a secret name already exists in its scope: %w", store.ErrConflict)
	}
	return err
}

// withRetry runs a transaction, again when the database reports a lock
// or serialization conflict.
func (s *Store) withRetry(ctx context.Context, f func(tx *gorm.DB) error) error {
	var err error
	for attempt := 0; attempt < 10; attempt++ {
		err = s.db.WithContext(ctx).Transaction(f)
		if err == nil || !store.IsRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		}
	}
	return err
}

// lockLive reads a live secret for update: FOR UPDATE on PostgreSQL; on
// SQLite the transaction already holds the write lock (BEGIN IMMEDIATE).
func (s *Store) lockLive(tx *gorm.DB, id string) (*secretRow, error) {
	var row secretRow
	if err := s.db.ForUpdate(tx.Where("id = ? AND deleted_at IS NULL", id)).First(&row).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, notFoundSecret(id)
		}
		return nil, err
	}
	return &row, nil
}

// Update stores a new version of secret id. Concurrent updates are
// serialized: each gets its own version number, none is lost.
func (s *Store) Update(ctx context.Context, actor, id string, in UpdateInput) (*Secret, []string, error) {
	if in.Description != nil {
		if err := validateDescription(*in.Description); err != nil {
			return nil, nil, err
		}
	}
	var hosts, readers []string
	if in.AllowedHosts != nil {
		h, err := normalizeHosts(in.AllowedHosts)
		if err != nil {
			return nil, nil, err
		}
		hosts = h
	}
	if in.ReadableFrom != nil {
		r, err := normalizeReaders(in.ReadableFrom)
		if err != nil {
			return nil, nil, err
		}
		if err := s.checkReaders(ctx, r); err != nil {
			return nil, nil, err
		}
		readers = r
	}
	if in.KeepValue {
		return s.updateDescription(ctx, actor, id, in)
	}
	weak, warnings := weakness(in.Value)
	var out Secret
	err := s.withRetry(ctx, func(tx *gorm.DB) error {
		row, err := s.lockLive(tx, id)
		if err != nil {
			return err
		}
		kind := in.Kind
		if kind == "" {
			kind = Kind(row.Kind)
		}
		if kind != Kind(row.Kind) {
			return apperr.Invalidf("kind_mismatch", "secret %q is a %s secret; send %s", row.Name, row.Kind,
				map[string]string{"string": `"value"`, "file": `"file_base64"`}[row.Kind])
		}
		if err := validateValue(kind, in.Value); err != nil {
			return err
		}
		next := row.CurrentVersion + 1
		s.seen(row.Name, in.Value)
		sl, err := s.keys.seal(row.identity(next), []byte(in.Value.Reveal()))
		if err != nil {
			return err
		}
		now := s.now()
		if err := tx.Create(&versionRow{SecretID: row.ID, Version: next, Ciphertext: sl.Ciphertext,
			WrappedKey: sl.WrappedKey, KeyID: sl.KeyID, CreatedAt: now, CreatedBy: actor}).Error; err != nil {
			return err
		}
		// A new value is not the one a run exposed: the mark goes.
		set := map[string]any{"current_version": next, "updated_at": now, "updated_by": actor, "weak": weak,
			"exposed_at": nil, "exposed_run_id": "", "exposed_run_project": "", "exposed_block": "", "exposed_sink": ""}
		if in.Description != nil {
			set["description"] = *in.Description
			row.Description = *in.Description
		}
		if in.AllowedHosts != nil {
			set["allowed_hosts"] = hostsJSON(hosts)
			row.AllowedHosts = hostsJSON(hosts)
		}
		if in.ReadableFrom != nil {
			set["readable_from"] = hostsJSON(readers)
			row.ReadableFrom = hostsJSON(readers)
		}
		if err := tx.Model(&secretRow{}).Where("id = ?", row.ID).Updates(set).Error; err != nil {
			return err
		}
		row.CurrentVersion, row.UpdatedAt, row.UpdatedBy, row.Weak = next, now, actor, weak
		row.ExposedAt = nil
		out = row.meta()
		return tx.Create(s.auditFor(actor, ActionUpdate, row, next, "")).Error
	})
	if err != nil {
		return nil, nil, store.Translate(err)
	}
	return &out, warnings, nil
}

// updateDescription changes the description of secret id without a new
// value, audited as an update that says so.
func (s *Store) updateDescription(ctx context.Context, actor, id string, in UpdateInput) (*Secret, []string, error) {
	if in.AllowedHosts != nil || in.ReadableFrom != nil {
		return nil, nil, apperr.Invalidf("missing_value", "allowed_hosts and readable_from change only with a new value (send \"value\" or \"file_base64\"): "+
			"where the value in place may go is never widened, or whoever edits a flow could send it there")
	}
	if in.Description == nil {
		return nil, nil, apperr.Invalidf("nothing_to_update", "send a new value, or the description to change")
	}
	var out Secret
	err := s.withRetry(ctx, func(tx *gorm.DB) error {
		row, err := s.lockLive(tx, id)
		if err != nil {
			return err
		}
		// updated_at says when the value last changed (an exposure mark
		// compares it with when a run loaded the value): not moved here.
		if err := tx.Model(&secretRow{}).Where("id = ?", row.ID).UpdateColumn("description", *in.Description).Error; err != nil {
			return err
		}
		row.Description = *in.Description
		out = row.meta()
		return tx.Create(s.auditFor(actor, ActionUpdate, row, row.CurrentVersion, "changed description; the value is unchanged")).Error
	})
	if err != nil {
		return nil, nil, store.Translate(err)
	}
	return &out, nil, nil
}

// Delete soft-deletes secret id and wipes the ciphertext and wrapped key
// of every version. The name can then be created again.
func (s *Store) Delete(ctx context.Context, actor, id string) error {
	err := s.withRetry(ctx, func(tx *gorm.DB) error {
		row, err := s.lockLive(tx, id)
		if err != nil {
			return err
		}
		now := s.now()
		if err := tx.Model(&versionRow{}).Where("secret_id = ?", row.ID).
			Updates(map[string]any{"ciphertext": nil, "wrapped_key": nil, "key_id": "", "wiped": true}).Error; err != nil {
			return err
		}
		if err := tx.Model(&secretRow{}).Where("id = ?", row.ID).
			Updates(map[string]any{"deleted_at": now, "deleted_by": actor}).Error; err != nil {
			return err
		}
		return tx.Create(s.auditFor(actor, ActionDelete, row, row.CurrentVersion, "all versions wiped")).Error
	})
	return store.Translate(err)
}

// DeleteProject deletes every live secret of project, in the project
// scope and in each of its project+environment scopes, as Delete does
// (every version's ciphertext wiped, an audit record each), in one
// transaction, and returns how many it deleted. Secrets of the
// organization and of environments are not touched.
func (s *Store) DeleteProject(ctx context.Context, actor, project string) (int, error) {
	if project == "" {
		return 0, errors.New("delete the secrets of a project: no project given")
	}
	n := 0
	err := s.withRetry(ctx, func(tx *gorm.DB) error {
		var rows []secretRow
		if err := s.db.ForUpdate(tx.Where("project = ? AND deleted_at IS NULL", project)).Order("name").Find(&rows).Error; err != nil {
			return err
		}
		now := s.now()
		for i := range rows {
			row := &rows[i]
			if err := tx.Model(&versionRow{}).Where("secret_id = ?", row.ID).
				Updates(map[string]any{"ciphertext": nil, "wrapped_key": nil, "key_id": "", "wiped": true}).Error; err != nil {
				return err
			}
			if err := tx.Model(&secretRow{}).Where("id = ?", row.ID).
				Updates(map[string]any{"deleted_at": now, "deleted_by": actor}).Error; err != nil {
				return err
			}
			if err := tx.Create(s.auditFor(actor, ActionDelete, row, row.CurrentVersion, "all versions wiped: project deleted")).Error; err != nil {
				return err
			}
		}
		n = len(rows)
		return nil
	})
	return n, store.Translate(err)
}

// Get returns the metadata of live secret id.
func (s *Store) Get(ctx context.Context, id string) (*Secret, error) {
	var row secretRow
	if err := s.db.WithContext(ctx).Where("id = ? AND deleted_at IS NULL", id).First(&row).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, notFoundSecret(id)
		}
		return nil, store.Translate(err)
	}
	m := row.meta()
	return &m, nil
}

// Find returns the live secret called name defined exactly in scope.
func (s *Store) Find(ctx context.Context, sc Scope, name string) (*Secret, error) {
	var row secretRow
	err := s.db.WithContext(ctx).Where("name = ? AND project = ? AND environment = ? AND deleted_at IS NULL",
		name, sc.Project, sc.Environment).First(&row).Error
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, fmt.Errorf("secret %q is not defined in %s: %w", truncate(name, 70), sc.Describe(), store.ErrNotFound)
		}
		return nil, store.Translate(err)
	}
	m := row.meta()
	return &m, nil
}

// List returns the live secrets defined exactly in scope, by name. The
// scope's project and environment must exist.
func (s *Store) List(ctx context.Context, sc Scope) ([]Secret, error) {
	if _, _, err := s.scopeIDs(ctx, sc); err != nil {
		return nil, err
	}
	var rows []secretRow
	err := s.db.WithContext(ctx).Where("project = ? AND environment = ? AND deleted_at IS NULL", sc.Project, sc.Environment).
		Order("name").Find(&rows).Error
	if err != nil {
		return nil, store.Translate(err)
	}
	out := make([]Secret, len(rows))
	for i := range rows {
		out[i] = rows[i].meta()
	}
	return out, nil
}

// visibleRows returns the live secrets a run in (project, environment)
// can see, optionally only those called name.
func (s *Store) visibleRows(db *gorm.DB, project, environment, name string) ([]secretRow, error) {
	q := db.Where("deleted_at IS NULL").
		Where("project IN ?", uniq("", project)).
		Where("environment IN ?", uniq("", environment))
	if name != "" {
		q = q.Where("name = ?", name)
	}
	var rows []secretRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, store.Translate(err)
	}
	return rows, nil
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// mostSpecific keeps, for each name, the row of the most specific scope.
func mostSpecific(rows []secretRow) map[string]*secretRow {
	best := map[string]*secretRow{}
	for i := range rows {
		r := &rows[i]
		if b, ok := best[r.Name]; !ok || r.scope().rank() > b.scope().rank() {
			best[r.Name] = r
		}
	}
	return best
}

// Resolved lists what a run of (project, environment) sees: for each name
// the most specific definition, with From naming its scope.
func (s *Store) Resolved(ctx context.Context, project, environment string) ([]Secret, error) {
	if _, _, err := s.scopeIDs(ctx, Scope{Project: project, Environment: environment}); err != nil {
		return nil, err
	}
	rows, err := s.visibleRows(s.db.WithContext(ctx), project, environment, "")
	if err != nil {
		return nil, err
	}
	var out []Secret
	for _, r := range mostSpecific(rows) {
		m := r.meta()
		m.From = m.ScopeLabel
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Versions lists the versions of secret id, newest first (metadata only).
func (s *Store) Versions(ctx context.Context, id string) ([]VersionInfo, error) {
	m, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	var vs []versionRow
	err = s.db.WithContext(ctx).Select("secret_id", "version", "key_id", "created_at", "created_by", "wiped").
		Where("secret_id = ?", id).Order("version DESC").Find(&vs).Error
	if err != nil {
		return nil, store.Translate(err)
	}
	out := make([]VersionInfo, len(vs))
	for i, v := range vs {
		out[i] = VersionInfo{Version: v.Version, KeyID: v.KeyID, CreatedAt: v.CreatedAt, CreatedBy: v.CreatedBy,
			Current: v.Version == m.Version, Wiped: v.Wiped}
	}
	return out, nil
}

func (s *Store) auditFor(actor, action string, row *secretRow, version int, detail string) *AuditRecord {
	return &AuditRecord{ID: newID(), At: s.now(), Actor: actor, Action: action, SecretID: row.ID, SecretName: row.Name,
		Version: version, Project: row.Project, Environment: row.Environment, ScopeLabel: row.scope().Label(), Detail: detail}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
