// Package flows turns flow definitions into runs: it keeps versioned flows,
// queues runs in the database, executes them block by block with the
// engine, and stores every run event redacted.
package flows

import (
	"time"

	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Run statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCanceled  = "canceled"
)

// Flow is the current version of a flow.
type Flow struct {
	ID          string    `gorm:"primaryKey;size:36" json:"id"`
	ProjectID   string    `gorm:"size:36;not null;uniqueIndex:flows_project_name" json:"-"`
	Project     string    `gorm:"size:63;not null" json:"project"`
	Name        string    `gorm:"size:63;not null;uniqueIndex:flows_project_name" json:"name"`
	Version     int       `gorm:"not null" json:"version"`
	TriggerType string    `gorm:"size:16;not null;index" json:"trigger_type"`
	Definition  string    `gorm:"type:text;not null" json:"-"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `gorm:"size:128" json:"created_by"`
	UpdatedAt   time.Time `json:"updated_at"`
	UpdatedBy   string    `gorm:"size:128" json:"updated_by"`
}

// FlowVersion is one saved version of a flow; runs record the version
// they ran.
type FlowVersion struct {
	FlowID     string    `gorm:"primaryKey;size:36" json:"-"`
	Version    int       `gorm:"primaryKey" json:"version"`
	Definition string    `gorm:"type:text;not null" json:"-"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `gorm:"size:128" json:"created_by"`
}

// Run is one execution of a flow version. Output and Error are stored
// redacted; Input is stored as given (the run needs its real values).
type Run struct {
	ID             string     `gorm:"primaryKey;size:36" json:"id"`
	ProjectID      string     `gorm:"size:36;not null;index:runs_project_queued" json:"-"`
	Project        string     `gorm:"size:63;not null" json:"project"`
	FlowID         string     `gorm:"size:36;not null;index" json:"-"`
	Flow           string     `gorm:"size:63;not null" json:"flow"`
	FlowVersion    int        `gorm:"not null" json:"flow_version"`
	Environment    string     `gorm:"size:63;not null" json:"environment"`
	Trigger        string     `gorm:"size:16;not null" json:"trigger"`
	Status         string     `gorm:"size:16;not null;index:runs_claim,priority:1" json:"status"`
	Input          string     `gorm:"type:text" json:"-"`
	Output         string     `gorm:"type:text" json:"-"`
	Error          string     `gorm:"type:text" json:"error,omitempty"`
	CancelReq      bool       `gorm:"not null;default:false" json:"-"`
	LeaseOwner     string     `gorm:"size:64" json:"-"`
	LeaseExpiresAt *time.Time `gorm:"index" json:"-"`
	QueuedAt       time.Time  `gorm:"not null;index:runs_claim,priority:2;index:runs_project_queued" json:"queued_at"`
	StartedAt      *time.Time `json:"started_at,omitempty"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
	CreatedBy      string     `gorm:"size:128" json:"created_by"`
}

// Event is one stored, redacted run event.
type Event struct {
	ID    int64     `gorm:"primaryKey;autoIncrement" json:"-"`
	RunID string    `gorm:"size:36;not null;uniqueIndex:events_run_seq,priority:1" json:"run_id"`
	Seq   int       `gorm:"not null;uniqueIndex:events_run_seq,priority:2" json:"seq"`
	At    time.Time `gorm:"not null" json:"at"`
	Type  string    `gorm:"size:32;not null" json:"type"`
	Block string    `gorm:"size:63" json:"block,omitempty"`
	Data  string    `gorm:"type:text" json:"-"`
}

// ScheduleTick records that a schedule fired for a time; its primary key
// makes a tick fire once across replicas.
type ScheduleTick struct {
	FlowID string    `gorm:"primaryKey;size:36"`
	Tick   time.Time `gorm:"primaryKey"`
	RunID  string    `gorm:"size:36"`
}

// Migrations creates the flow and run tables.
func Migrations() []store.Migration {
	return []store.Migration{{ID: "0010_flows_runs", Up: func(tx *gorm.DB) error {
		return tx.Migrator().CreateTable(&Flow{}, &FlowVersion{}, &Run{}, &Event{}, &ScheduleTick{})
	}}, {ID: "0011_runs_flow_status", Up: func(tx *gorm.DB) error {
		// The per-flow concurrency check counts a flow's active runs.
		return tx.Exec("CREATE INDEX runs_flow_status ON runs (flow_id, status)").Error
	}}}
}
