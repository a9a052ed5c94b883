package model

import (
	"encoding/json"

	"github.com/hushflow/hushflow/blocks"
)

// Definition is a flow as users write it (JSON through the API, YAML
// through the CLI). A config field that is a string is a JavaScript
// expression; a number, boolean, object or array is a literal.
type Definition struct {
	Name        string     `json:"name" yaml:"name"`
	Description string     `json:"description,omitempty" yaml:"description,omitempty"`
	Trigger     Trigger    `json:"trigger" yaml:"trigger"`
	Blocks      []BlockDef `json:"blocks" yaml:"blocks"`
	// OnError are blocks run, in order, when the run fails: a block of
	// Blocks failed for good (after its retries, without
	// continue_on_error). Their expressions also see `error` (the run's
	// error message, redacted) and `failed_block` (the id of the block
	// that failed). The run still ends failed with its original error.
	OnError []BlockDef `json:"on_error,omitempty" yaml:"on_error,omitempty"`
	// Env holds non-secret variables, visible to expressions as `env`.
	Env map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	// MaxConcurrentRuns bounds the runs of this flow queued or running at
	// once; a new run over it is refused with 429. 0 means the server's
	// default (HUSHFLOW_MAX_CONCURRENT_RUNS, 10,000).
	MaxConcurrentRuns int `json:"max_concurrent_runs,omitempty" yaml:"max_concurrent_runs,omitempty"`
	// Output names the block whose output is the run's output; empty
	// means the last block (in the list's order) that ran.
	Output string `json:"output,omitempty" yaml:"output,omitempty"`
}

// Trigger says what starts runs of a flow.
type Trigger struct {
	// Type is manual, webhook, schedule or event.
	Type string `json:"type" yaml:"type"`
	// Cron is the schedule of a schedule trigger ("*/5 * * * *", UTC).
	Cron string `json:"cron,omitempty" yaml:"cron,omitempty"`
	// Environment is the environment of runs started by a webhook or a
	// schedule (default: development).
	Environment string `json:"environment,omitempty" yaml:"environment,omitempty"`
	// Topic is the pattern of an event trigger ("records:*"; `*` matches
	// one segment, `**` any number).
	Topic string `json:"topic,omitempty" yaml:"topic,omitempty"`
	// Filter is an expr-lang condition on the event (`input`) that must
	// hold for the run to be queued.
	Filter string `json:"filter,omitempty" yaml:"filter,omitempty"`
	// SigningSecret names the secret a webhook's signature is checked
	// with (HMAC-SHA256); empty means no check.
	SigningSecret string `json:"signing_secret,omitempty" yaml:"signing_secret,omitempty"`
	// Signature is the header style: "slack" (X-Slack-Signature with
	// X-Slack-Request-Timestamp) or "github" (X-Hub-Signature-256).
	Signature string `json:"signature,omitempty" yaml:"signature,omitempty"`
}

// BlockDef is one block of a flow.
type BlockDef struct {
	ID     string                     `json:"id" yaml:"id"`
	Type   blocks.ID                  `json:"type" yaml:"type"`
	Config map[string]json.RawMessage `json:"config,omitempty" yaml:"-"`
	// If is an expr-lang condition; the block is skipped when false.
	If string `json:"if,omitempty" yaml:"if,omitempty"`
	// Timeout bounds one attempt (default 30s).
	Timeout blocks.Dur `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Retry re-runs a failed block.
	Retry *Retry `json:"retry,omitempty" yaml:"retry,omitempty"`
	// ContinueOnError lets the run go on when the block fails for good
	// (after its retries): its output becomes {"error": "<message,
	// redacted>", "failed": true}. A block stopped by a cancel or by its
	// replica's shutdown is not continued.
	ContinueOnError bool `json:"continue_on_error,omitempty" yaml:"continue_on_error,omitempty"`
	// Each is an expression giving an array: the block runs once per
	// element, with `item` (the element) and `index` (0-based) in scope
	// for its `if` and its config fields, and its output is the array of
	// the iterations' outputs in input order.
	Each string `json:"each,omitempty" yaml:"each,omitempty"`
	// Concurrency is how many iterations of a block with each run at
	// once (default 1, at most plan.MaxEachConcurrency).
	Concurrency int `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	// MaxItems lowers the server's limit on the number of elements a
	// block with each accepts (HUSHFLOW_MAX_EACH_ITEMS, default 1,000).
	MaxItems int `json:"max_items,omitempty" yaml:"max_items,omitempty"`
	// Needs are the ids of the blocks this block runs after; blocks whose
	// needs are met run at once. Absent (nil), the block runs after the
	// block before it in the list, as in a flow without needs; empty
	// ([]), it starts with the run. Not allowed in on_error.
	Needs []string `json:"needs,omitzero" yaml:"needs,omitempty"`
}

// Retry is a block's retry policy.
type Retry struct {
	// Attempts is the total number of tries (1 = no retry; at most 10).
	Attempts int `json:"attempts" yaml:"attempts"`
	// Backoff is the wait before the first retry; it doubles each time.
	Backoff blocks.Dur `json:"backoff,omitempty" yaml:"backoff,omitempty"`
}
