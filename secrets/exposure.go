package secrets

import (
	"context"
	"time"

	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Sinks are the places of a run's data where a secret value should never
// be, and which an exposure names, with their description for people.
var Sinks = map[string]string{
	"output":          "a block's output",
	"http_response":   "the response (body or header) of an outside service",
	"exec_output":     "the output of an exec block's command",
	"run_input":       "the input of a run",
	"webhook_payload": "the payload of a webhook",
}

// Exposure is a secret value a run found in a sink: never the value.
type Exposure struct {
	// Project and Environment are the scope the run resolved Name in: the
	// secret is the most specific live definition of Name there.
	Project, Environment, Name string
	RunID, RunProject          string
	RunEnvironment             string
	BlockID, Sink              string
	// Loaded is when the run loaded the value: a secret updated after it
	// holds another value now, and is not marked (the record is still
	// written).
	Loaded time.Time
}

// RecordExposure records that a run found a secret's value in a sink: an
// audit record with action "exposure" (once per run, block, sink and
// secret, whichever replica reports it) and, unless the secret already
// carries one or was updated since the run loaded its value, the mark
// that says it is possibly exposed (Secret.Exposure), which the next
// Update clears. It reports whether the record is new; a name that no
// longer resolves (the secret was deleted) records nothing.
func (s *Store) RecordExposure(ctx context.Context, e Exposure) (bool, error) {
	recorded := false
	err := s.withRetry(ctx, func(tx *gorm.DB) error {
		recorded = false
		rows, err := s.visibleRows(tx, e.Project, e.Environment, e.Name)
		if err != nil {
			return err
		}
		row := mostSpecific(rows)[e.Name]
		if row == nil {
			return nil
		}
		what := Sinks[e.Sink]
		if what == "" {
			what = e.Sink
		}
		rec := s.auditFor("run", ActionExposure, row, 0, "the value was found in "+what+"; rotate the secret")
		rec.RunID, rec.RunProject, rec.RunEnv, rec.BlockID, rec.Sink = e.RunID, e.RunProject, e.RunEnvironment, e.BlockID, e.Sink
		// The unique index secret_audit_exposure keeps one record per
		// run, block, sink and secret.
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(rec)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return nil
		}
		recorded = true
		if row.ExposedAt != nil || !e.Loaded.IsZero() && row.UpdatedAt.After(e.Loaded) {
			return nil
		}
		// UpdateColumns: the mark is no update of the secret (Updates
		// would set updated_at, which says when its value last changed).
		return tx.Model(&secretRow{}).Where("id = ? AND exposed_at IS NULL", row.ID).UpdateColumns(map[string]any{
			"exposed_at": rec.At, "exposed_run_id": e.RunID, "exposed_run_project": e.RunProject, "exposed_block": e.BlockID, "exposed_sink": e.Sink}).Error
	})
	if err != nil {
		return false, store.Translate(err)
	}
	return recorded, nil
}

// EgressRefused is a request of a run refused because it would have
// carried a pinned secret to a host the secret may not reach: never the
// value. Host is as the run's redactor shows it (a value used in a DNS
// label is masked).
type EgressRefused struct {
	// Project and Environment are the run's scope, where Name resolves.
	Project, Environment, Name string
	RunID                      string
	Host                       string
}

// RecordEgressRefused writes the audit record of a refused request
// (action "egress_refused"), naming the secret, the host and the run. A
// name that no longer resolves is recorded by name alone.
func (s *Store) RecordEgressRefused(ctx context.Context, e EgressRefused) error {
	host := e.Host
	if len(host) > 200 {
		host = host[:200] + "…"
	}
	detail := "a request to " + host + " was refused: the secret may only be sent to its allowed hosts"
	rows, err := s.visibleRows(s.db.WithContext(ctx), e.Project, e.Environment, e.Name)
	if err != nil {
		return store.Translate(err)
	}
	var rec *AuditRecord
	if row := mostSpecific(rows)[e.Name]; row != nil {
		rec = s.auditFor("run", ActionEgressRefused, row, row.CurrentVersion, detail)
	} else {
		rec = &AuditRecord{ID: newID(), At: s.now(), Actor: "run", Action: ActionEgressRefused, SecretName: e.Name, Detail: detail}
	}
	rec.RunID, rec.RunProject, rec.RunEnv = e.RunID, e.Project, e.Environment
	return s.recordReads(ctx, []AuditRecord{*rec})
}
