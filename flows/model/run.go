// Package model holds the vocabulary of flows and runs that every stage
// of package flows shares: flow definitions as users write them, the rows
// of flows, runs, events and checkpoints, run statuses, and what runs need
// of the secret store. It has no behaviour beyond small accessors and the
// one query its stages share (FlowNamed).
package model

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/hushflow/hushflow/internal/apperr"
	"gorm.io/gorm"
)

// Run statuses. A run is queued, then running on a worker; it may go back
// to queued when it is interrupted (to resume on any replica) or to
// waiting during a durable wait (a long delay), until it ends in exactly
// one of succeeded, failed or canceled.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusWaiting   = "waiting"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCanceled  = "canceled"
)

// Statuses are every status a run may have, in the order of its life.
var Statuses = []string{StatusQueued, StatusRunning, StatusWaiting, StatusSucceeded, StatusFailed, StatusCanceled}

// OpenStatuses are the statuses of a run that has not ended.
var OpenStatuses = []string{StatusQueued, StatusRunning, StatusWaiting}

// OpenSQL is the condition on a run being open (OpenStatuses), written
// out as the index runs_flow_open's is: a query that says it in these
// words may read that index (a list of bound parameters would not tell
// the planner that it matches).
const OpenSQL = "status IN ('queued', 'running', 'waiting')"

// Flow is the current version of a flow.
type Flow struct {
	ID          string    `gorm:"primaryKey;size:36" json:"id"`
	ProjectID   string    `gorm:"size:36;not null;uniqueIndex:flows_project_name" json:"-"`
	Project     string    `gorm:"size:63;not null;index:flows_project_flow" json:"project"`
	Name        string    `gorm:"size:63;not null;uniqueIndex:flows_project_name;index:flows_project_flow" json:"name"`
	Version     int       `gorm:"not null" json:"version"`
	TriggerType string    `gorm:"size:16;not null;index" json:"trigger_type"`
	Definition  string    `gorm:"type:text;not null" json:"-"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `gorm:"size:128" json:"created_by"`
	UpdatedAt   time.Time `json:"updated_at"`
	UpdatedBy   string    `gorm:"size:128" json:"updated_by"`
	// PausedAt is when the flow was paused (nil: it is not): a paused
	// flow starts no run, by any trigger; its runs already queued or
	// running go on. PausedBy is who paused it.
	PausedAt *time.Time `json:"paused_at,omitempty"`
	PausedBy string     `gorm:"size:128;not null;default:''" json:"paused_by,omitempty"`
	// ResumedAt is when the flow was last resumed, and ResumedBy who
	// resumed it.
	ResumedAt *time.Time `json:"resumed_at,omitempty"`
	ResumedBy string     `gorm:"size:128;not null;default:''" json:"resumed_by,omitempty"`
}

// IsPaused reports whether err is the refusal of a run of a paused flow
// (PausedError, ErrPausedMeanwhile, ErrPausedHook).
func IsPaused(err error) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == "flow_paused"
}

// ErrPausedMeanwhile refuses a run whose insert found its flow paused
// while a look at the flow right after found it resumed (a pause and a
// resume in a moment): the run came while the flow was paused, and
// nothing was stored.
var ErrPausedMeanwhile = apperr.New(apperr.Conflict, "flow_paused",
	"the flow was paused when this run was stored (it has been resumed since): nothing was stored")

// ErrPausedHook is a webhook delivery's refusal of a paused flow: the
// sender, who needs no token, is not told who paused it or when.
var ErrPausedHook = apperr.New(apperr.Conflict, "flow_paused", "this flow is paused: it starts no run until it is resumed")

// PausedError is the refusal of a run of flow f, which is paused.
func PausedError(f *Flow) error {
	return apperr.New(apperr.Conflict, "flow_paused", "flow %q is paused (by %s, %s): resume it to start runs",
		f.Name, f.PausedBy, f.PausedAt.UTC().Format(time.RFC3339))
}

// FlowNamed selects flow name of project, by the index flows_project_flow
// (project, name): a webhook, an API call and a schedule find their flow
// this way, so it must not read every flow. Use it with Take.
func FlowNamed(project, name string) func(*gorm.DB) *gorm.DB {
	return func(db *gorm.DB) *gorm.DB { return db.Where("project = ? AND name = ?", project, name) }
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
// redacted; Input is stored as given while the run is open (it needs its
// real values) and redacted when it ends.
type Run struct {
	ID          string `gorm:"primaryKey;size:36;index:runs_project,priority:2" json:"id"`
	ProjectID   string `gorm:"size:36;not null" json:"-"`
	Project     string `gorm:"size:63;not null;index:runs_project,priority:1" json:"project"`
	FlowID      string `gorm:"size:36;not null" json:"-"`
	Flow        string `gorm:"size:63;not null" json:"flow"`
	FlowVersion int    `gorm:"not null" json:"flow_version"`
	Environment string `gorm:"size:63;not null" json:"environment"`
	Trigger     string `gorm:"size:16;not null" json:"trigger"`
	Status      string `gorm:"size:16;not null" json:"status"`
	Input       string `gorm:"type:text" json:"-"`
	Output      string `gorm:"type:text" json:"-"`
	Error       string `gorm:"type:text" json:"error,omitempty"`
	CancelReq   bool   `gorm:"not null;default:false" json:"-"`
	// CancelReason says who asked the cancel ("canceled by ana"): the
	// run's error when it ends canceled.
	CancelReason   string     `gorm:"type:text;not null;default:''" json:"-"`
	LeaseOwner     string     `gorm:"size:64" json:"-"`
	LeaseExpiresAt *time.Time `json:"-"`
	QueuedAt       time.Time  `gorm:"not null" json:"queued_at"`
	StartedAt      *time.Time `json:"started_at,omitempty"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
	CreatedBy      string     `gorm:"size:128" json:"created_by"`
	// AvailableAt is when a queued or waiting run may be claimed: its
	// queue time, or the end of a durable wait.
	AvailableAt time.Time `gorm:"not null" json:"available_at"`
	// Attempt counts the times a worker claimed the run (1 on its first
	// execution); a worker's writes carry it, so that a worker that lost
	// the run cannot write to it.
	Attempt int `gorm:"not null;default:0" json:"attempt"`
	// Resumes counts the times the run was interrupted (a replica stopped
	// or died, a database error) and queued again to resume.
	Resumes int `gorm:"not null;default:0" json:"resumes"`
	// Drains counts those of Resumes that were planned: the run's worker
	// shut down (a deploy, a stop signal) and released it. They do not
	// count toward the bound on resumes (HUSHFLOW_MAX_RESUMES), which
	// stops runs that keep killing or losing their worker.
	Drains int `gorm:"not null;default:0" json:"drains"`
	// ResumeReason says why the run was last queued again.
	ResumeReason string `gorm:"type:text;not null;default:''" json:"resume_reason,omitempty"`
	// RerunOf is the id of the run this one repeats (POST
	// /runs/{id}/rerun), empty for other runs.
	RerunOf string `gorm:"size:36;not null;default:''" json:"rerun_of,omitempty"`
	// InputSealed is the real input of an ended run whose stored Input
	// was redacted (a caller passed a secret value in it), sealed like a
	// checkpoint and bound to the run (InputAAD); nil when Input is the
	// real input. A rerun reads it; no view shows it.
	InputSealed []byte `json:"-"`
	// ParentRunID is the run whose flow block started this one (a
	// sub-flow), ParentBlock that block and ParentAttempt its attempt
	// (an attempt starts one child); empty for other runs. Depth counts
	// the runs above this one.
	ParentRunID   string `gorm:"size:36;not null;default:''" json:"parent_run_id,omitempty"`
	ParentBlock   string `gorm:"size:63;not null;default:''" json:"parent_block,omitempty"`
	ParentAttempt int    `gorm:"not null;default:0" json:"-"`
	Depth         int    `gorm:"not null;default:0" json:"depth,omitempty"`
}

// InputAAD binds a run's sealed input to the run, in its first format
// (the input alone).
func InputAAD(runID string) []byte { return []byte("hushflow/run-input/v1\x00" + runID) }

// InputMasksAAD binds a run's sealed input of the second format (a
// SealedInput) to the run.
func InputMasksAAD(runID string) []byte { return []byte("hushflow/run-input/v2\x00" + runID) }

// SealedInput is what an ended run keeps sealed for a rerun: its real
// input, and the values it knew at run time beyond its scope's secrets
// (what its parent passed on, secrets.mask values, other environments'
// secrets, with their pins), which its rerun masks and pins as it did.
type SealedInput struct {
	Input json.RawMessage `json:"input"`
	Masks []RunMask       `json:"masks,omitempty"`
}

// Inherits reports whether run r may have a "$parent" checkpoint of
// values passed on to it: a sub-flow's run, or a rerun.
func (r *Run) Inherits() bool { return r.ParentRunID != "" || r.RerunOf != "" }

// CheckpointAAD binds a sealed checkpoint to its format (1: the output
// alone, before learnt values were kept with it; 2: the output and the
// values), run and block.
func CheckpointAAD(format int, runID, block string) []byte {
	return []byte("hushflow/checkpoint/v" + strconv.Itoa(format) + "\x00" + runID + "\x00" + block)
}

// Checkpoint is what a run keeps of one of its blocks until it ends, so
// that it can resume from its first unfinished block on any replica.
type Checkpoint struct {
	RunID string `gorm:"primaryKey;size:36"`
	Block string `gorm:"primaryKey;size:63"`
	// State is done (Output holds the block's real output, sealed),
	// skipped (its condition was false), sleeping (a durable wait: Detail
	// holds its times), acting (the block, which is not safe to repeat,
	// may have acted outside Hushflow: Detail says why it is not safe) or
	// failed (the run failed and its on_error handler runs).
	State  string `gorm:"size:16;not null"`
	Detail string `gorm:"type:text;not null;default:''"`
	// Output is the block's output as JSON, sealed (envelope encryption
	// under the keyring, bound to the run and block).
	Output    []byte
	CreatedAt time.Time `gorm:"not null"`
}

// TableName is run_checkpoints.
func (Checkpoint) TableName() string { return "run_checkpoints" }

// Checkpoint states.
const (
	CheckpointDone     = "done"
	CheckpointSkipped  = "skipped"
	CheckpointSleeping = "sleeping"
	CheckpointActing   = "acting"
	// CheckpointFailed is kept while the on_error handler of a failed run
	// runs (block "$on_error"): Detail holds the failure as JSON (the
	// run's error, redacted, and the id of the block that failed).
	CheckpointFailed = "failed"
)

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

// Finished reports whether the run has ended.
func (r *Run) Finished() bool {
	return r.Status == StatusSucceeded || r.Status == StatusFailed || r.Status == StatusCanceled
}

// RunRequest asks for a run.
type RunRequest struct {
	Project, Flow, Environment string
	Input                      any
	Trigger                    string // manual, webhook, schedule, event, flow
	Actor                      string
	// RerunOf is the id of the run this one repeats, if any.
	RerunOf string
	// IfCurrent inserts the run only if its flow is still the version
	// given, under the same project and name, checked in the insert's
	// own statement (ErrFlowChanged otherwise): for a caller that took
	// the flow from a cache rather than read it.
	IfCurrent bool
}

// ErrFlowChanged is returned for a RunRequest.IfCurrent whose flow is no
// longer the version given (saved again, renamed or deleted).
var ErrFlowChanged = errors.New("the flow changed since it was read")

// ChildRequest asks for the run of a sub-flow: flow (of the parent's
// project; Version 0 is its current version) started by attempt Attempt
// of block Block of Parent, in the parent's environment. Seal seals the
// values the parent learnt at run time for the child (bound to the
// child's id), so that the child masks them too.
type ChildRequest struct {
	Parent  *Run
	Block   string
	Attempt int
	Flow    string
	Version int
	Input   any
	Seal    func(childID string) ([]byte, error)
}

// Checkpoint names outside a run's blocks (not identifiers, so no
// block's): the values a child run inherits from its parent, and the
// output of a child run kept for its parent.
const (
	InheritedCheckpoint   = "$parent"
	ChildCheckpointPrefix = "$child:"
)

// RunView is a run as the API shows it (output decoded).
type RunView struct {
	*Run
	Output any `json:"output,omitempty"`
	// Children are the runs its flow blocks started (GET of one run).
	Children []ChildView `json:"children,omitempty"`
}

// ChildView is a run a flow block started, as its parent shows it.
type ChildView struct {
	ID          string `json:"id"`
	Flow        string `json:"flow"`
	Status      string `json:"status"`
	ParentBlock string `json:"parent_block"`
}

// View decodes the stored (redacted) output.
func (r *Run) View() RunView {
	v := RunView{Run: r}
	if r.Output != "" {
		var o any
		if json.Unmarshal([]byte(r.Output), &o) == nil {
			v.Output = o
		}
	}
	return v
}
