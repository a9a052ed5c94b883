package model

import (
	"context"
	"time"

	"github.com/hushflow/hushflow/engine"
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
	// Resolve returns name's value for block, with its host pins (lazy;
	// audited once per block and version). scope may name another
	// environment, never another project.
	Resolve(ctx context.Context, block, name string, scope engine.Scope) (VisibleSecret, error)
	// Flush commits the audit record of the run's load of its secrets,
	// unless a read already did (a read commits it with its own record).
	// The run calls it before any write that does not store the record
	// itself (Pending).
	Flush(ctx context.Context) error
	// Pending hands that record, while it is not committed, to a write
	// that is a transaction anyway, to store with its own rows (nil when
	// there is none): done says whether it did (only its first call
	// counts); if not, the record waits for Flush or a read.
	Pending() (rows any, done func(stored bool))
	// Lead has the next commit of the run's audit records (a read, or
	// Flush) store rows (a store.RowsInserter) first, in its own
	// transaction (on PostgreSQL its statement), then call done with its
	// result; the rows are handed
	// over once (a run started before its row was stored has its insert
	// go with its first audited read). Pending never carries them.
	Lead(rows any, done func(error))
}

// VisibleSecret is a secret as a run sees it.
type VisibleSecret struct {
	Name         string
	Value        string
	AllowedHosts []string
	// Previous are the values of its earlier versions that still hold
	// ciphertext: masked (and pinned) like Value.
	Previous []string
}

// ResolveRequest asks for one secret outside a run.
type ResolveRequest struct {
	Project, Environment, Name string
	RunID, BlockID             string
}

// RunMask is a value a run learnt after it started (a secret read from
// another environment, a secrets.mask value, a value a script derived from
// a secret) or a secret value the run read: the name it is masked under,
// its host pins, and whether values derived from it are looked for
// (Source: the run read it). A run's checkpoints keep them, sealed, so
// that a resumed run masks, pins and follows them again.
type RunMask struct {
	Name         string   `json:"name"`
	Value        string   `json:"value"`
	AllowedHosts []string `json:"allowed_hosts,omitempty"`
	Source       bool     `json:"source,omitempty"`
	// Secret and Environment name the secret the value is of, and the
	// environment it was read from ("" for the run's own): empty for a
	// secrets.mask value, which is no stored secret.
	Secret      string `json:"secret,omitempty"`
	Environment string `json:"environment,omitempty"`
}

// Sinks of exposure alerts: the places of a run's data that should never
// hold a secret value. A value masked anywhere else (a log line, an error,
// a request the run sends) is masked, not an exposure.
const (
	// SinkOutput is a block's output.
	SinkOutput = "output"
	// SinkHTTPResponse is the body or a header of a response an http or
	// app block received.
	SinkHTTPResponse = "http_response"
	// SinkExecOutput is the stdout or stderr of an exec block's command.
	SinkExecOutput = "exec_output" // blocks.SinkExecOutput
	// SinkRunInput is the input a run was started with (manually, by an
	// event or a schedule).
	SinkRunInput = "run_input"
	// SinkWebhookPayload is the payload of a webhook that started a run.
	SinkWebhookPayload = "webhook_payload"
)

// Exposure is a secret value a run found in one of the sinks: reported
// once per run, block, sink and secret to the secret store, which records
// it in the audit trail and marks the secret as possibly exposed. It never
// holds the value.
type Exposure struct {
	Run *Run
	// Block is the block whose data held the value; "" for the run's
	// input.
	Block string
	Sink  string
	// Secret is the secret's name and Environment the environment it was
	// resolved in (the run's, unless the run read it from another one):
	// the secret is the most specific definition of Secret for the run's
	// project and Environment.
	Secret, Environment string
	// Loaded is when the run loaded its secret values: a secret updated
	// after it no longer holds the value the run knew.
	Loaded time.Time
}
