// Package code is the "code" block: JavaScript run by the engine as the
// body of an async function. Its return value is the block's output and
// its console lines are log events of the run.
package code

import (
	"context"
	"errors"

	"github.com/hushflow/hushflow/blocks"
)

func init() { blocks.MustRegister(Info()) }

// Info describes the code block.
func Info() blocks.Info {
	return blocks.Info{ID: "code", Spec: spec(), New: func() blocks.Block { return new(Code) }}
}

var (
	_ blocks.Block      = (*Code)(nil)
	_ blocks.Repeatable = (*Code)(nil)
)

// RepeatSafe: a code block has no network and no file system; running it
// again recomputes its output.
func (c *Code) RepeatSafe(context.Context, *blocks.Input) (bool, string, error) { return true, "", nil }

// Code is the configuration of a code block.
type Code struct {
	// Code is the body of an async function (await works); it sees
	// secrets, input, steps, run, env and console, and its return value is
	// the output.
	Code string `json:"code"`
}

func spec() blocks.Spec {
	return blocks.Spec{
		Summary: "Run JavaScript (the body of an async function); the return value is the output, console lines are log events.",
		Fields: []blocks.Field{
			{Name: "code", Type: blocks.String, Required: true, Raw: true,
				Doc:     "JavaScript: the body of an async function that sees secrets, input, steps, run, env and console. Its return value is the output.",
				Example: "const r = steps.call.output.body;\nconsole.log('got', r.items.length);\nreturn r.items.map(i => i.id);"},
		},
	}
}

// Run evaluates the code with the run's globals.
func (c *Code) Run(ctx context.Context, in *blocks.Input) (any, error) {
	if c.Code == "" {
		return nil, errors.New("code is required")
	}
	if in.Script == nil {
		return nil, errors.New("no script runner for this run (the executor sets Input.Script)")
	}
	return in.Script(ctx, "code", c.Code)
}
