// Package subflow is the "flow" block: it runs another flow of the same
// project, in the same environment, as a run of its own (a child run
// linked to its parent), and gives that run's output. The calling run
// does not hold a worker while it waits: the block returns a *blocks.Sleep
// that awaits the child, and the run wakes when the child ends.
package subflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hushflow/hushflow/blocks"
)

func init() { blocks.MustRegister(Info()) }

// Info describes the flow block.
func Info() blocks.Info {
	return blocks.Info{ID: "flow", Spec: spec(), New: func() blocks.Block { return new(Flow) }}
}

var (
	_ blocks.Block      = (*Flow)(nil)
	_ blocks.Validator  = (*Flow)(nil)
	_ blocks.Repeatable = (*Flow)(nil)
)

// Flow is the configuration of a flow block.
type Flow struct {
	// Flow is the name of the flow to run, in the calling run's project.
	Flow string `json:"flow"`
	// Version pins a version of it; 0 (absent) runs its current version.
	Version int `json:"version,omitempty"`
	// Input is the child run's input.
	Input any `json:"input,omitempty"`
}

func spec() blocks.Spec {
	return blocks.Spec{
		Summary: "Run another flow of the project as a run of its own and wait for it; the output is that run's output.",
		Fields: []blocks.Field{
			{Name: "flow", Type: blocks.String, Required: true, Doc: "The name of the flow to run (same project, same environment).", Example: "'send-invoice'"},
			{Name: "version", Type: blocks.Number, Doc: "A version of that flow to run; absent: its current version."},
			{Name: "input", Type: blocks.Any, Doc: "The child run's input.", Example: "({customer: input.customer})"},
		},
		NoEach: "a flow block waits for its child run without holding a worker, which an iteration of each cannot do yet: call the flow once with the whole list, or loop in the child flow",
	}
}

// Validate checks the version.
func (f *Flow) Validate() error {
	if f.Flow == "" {
		return errors.New("flow: the name of the flow to run is empty")
	}
	if f.Version < 0 {
		return fmt.Errorf("version must be positive (or absent for the current version)")
	}
	return nil
}

// RepeatSafe: the child run of an attempt is started once; running the
// block again finds it.
func (f *Flow) RepeatSafe(context.Context, *blocks.Input) (bool, string, error) {
	return true, "", nil
}

// Run starts the child run (or finds the one this attempt started) and
// gives its output once it succeeded; until it ends, the block sleeps
// until the child ends or the block's timeout.
func (f *Flow) Run(ctx context.Context, in *blocks.Input) (any, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if in == nil || in.Flows == nil {
		return nil, errors.New("this server runs no sub-flows")
	}
	st, err := in.Flows.Call(ctx, blocks.FlowCall{Flow: f.Flow, Version: f.Version, Input: f.Input})
	if err != nil {
		return nil, err
	}
	if in.Slept == nil && in.Emit != nil {
		in.Emit(blocks.Event{Type: "flow_started", Data: map[string]any{"run_id": st.RunID, "flow": f.Flow, "version": st.Version}})
	}
	switch {
	case st.Done && st.Status == "succeeded":
		return st.Output, nil
	case st.Done:
		return nil, fmt.Errorf("flow %q: run %s %s: %s", f.Flow, st.RunID, st.Status, st.Error)
	}
	deadline, ok := ctx.Deadline()
	left := time.Until(deadline)
	if s := in.Slept; s != nil {
		if !s.Woke.Before(s.Until) {
			// The wait ended at the block's timeout, not with the child.
			_ = in.Flows.Cancel(ctx, st.RunID)
			return nil, fmt.Errorf("flow %q: run %s did not end within the block's timeout (%s); it was canceled", f.Flow, st.RunID, s.Until.Sub(s.Since).Round(time.Second))
		}
		left = s.Until.Sub(s.Woke) // woken early: wait for what is left
	}
	if !ok || left <= 0 {
		return nil, fmt.Errorf("flow %q: run %s did not end within the block's timeout", f.Flow, st.RunID)
	}
	return nil, &blocks.Sleep{For: left, Await: st.RunID}
}
