package model

import (
	"context"

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
}
