package secrets

import (
	"context"
	"time"

	"github.com/hushflow/hushflow/store"
)

// AuditQuery filters audit records. Empty fields do not filter.
type AuditQuery struct {
	// Secret is a secret id or name.
	Secret string
	// Project keeps records of secrets defined in that project (project
	// and project+environment scopes) and of reads by the project's runs
	// (including of inherited environment and organization secrets).
	Project string
	// Limit caps the records returned (default 100, at most 1000), newest
	// first.
	Limit int
}

// Audit returns audit records, newest first.
func (s *Store) Audit(ctx context.Context, q AuditQuery) ([]AuditRecord, error) {
	db := s.db.WithContext(ctx)
	if q.Secret != "" {
		// The indexes on secret_id and secret_name leave out the records
		// that name no secret: the query says so, for them to be used.
		db = db.Where("(secret_id = ? AND secret_id <> '') OR (secret_name = ? AND secret_name <> '')", q.Secret, q.Secret)
	}
	if q.Project != "" {
		db = db.Where("project = ? OR run_project = ?", q.Project, q.Project)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var out []AuditRecord
	if err := db.Order("at DESC, id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, store.Translate(err)
	}
	return out, nil
}

// ReadActions are the audit records of reads: a run's load of its
// scope's values (one per run) and each secret a block read. They are the
// bulk of the audit trail, and the records PruneReads deletes.
var ReadActions = []string{ActionRedactionLoad, ActionResolve}

// PruneBatch is how many audit records one statement of PruneReads
// deletes (store.DeleteInBatches).
const PruneBatch = 1000

// PruneReads deletes, PruneBatch at a time, the audit records of reads
// (ReadActions) made before before, and returns how many it deleted. The
// other records (a secret's creation, updates, rotations and deletion, an
// exposure, a refused read or request, a decryption failure) are kept:
// they are few, and they are the trail of what happened to a secret.
func (s *Store) PruneReads(ctx context.Context, before time.Time) (int, error) {
	return store.DeleteInBatches(ctx, s.db.DB, PruneBatch, `DELETE FROM secret_audit WHERE id IN
  (SELECT id FROM secret_audit WHERE at < ? AND action IN ? LIMIT ?)`, before.UTC(), ReadActions)
}
