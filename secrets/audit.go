package secrets

import (
	"context"

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
