// Package delay is the "delay" block: it waits, for example for a rate
// limit to reset. Cancelling the run ends the wait.
package delay

import (
	"context"
	"fmt"
	"time"

	"github.com/hushflow/hushflow/blocks"
)

func init() { blocks.MustRegister(Info()) }

// Max is the longest delay a block may wait.
const Max = time.Hour

// Info describes the delay block.
func Info() blocks.Info {
	return blocks.Info{ID: "delay", Spec: spec(), New: func() blocks.Block { return new(Delay) }}
}

var (
	_ blocks.Block     = (*Delay)(nil)
	_ blocks.Validator = (*Delay)(nil)
)

// Delay is the configuration of a delay block.
type Delay struct {
	// Duration is how long to wait ("1.5s", "2m" or milliseconds), at most
	// one hour.
	Duration blocks.Dur `json:"duration"`
}

func spec() blocks.Spec {
	return blocks.Spec{
		Summary: "Wait for a duration (at most 1h); the output is {waited_ms}.",
		Fields: []blocks.Field{
			{Name: "duration", Type: blocks.Duration, Required: true, Doc: "How long to wait: a duration such as \"1.5s\" or \"2m\", or milliseconds. At most 1h.", Example: "'30s'"},
		},
	}
}

// Validate checks the bounds.
func (d *Delay) Validate() error {
	if d.Duration < 0 || d.Duration.D() > Max {
		return fmt.Errorf("duration must be between 0 and %s", Max)
	}
	return nil
}

// Run waits for the duration or until ctx is done. Note that the block's
// timeout (30s unless the flow sets one) also bounds the wait.
func (d *Delay) Run(ctx context.Context, _ *blocks.Input) (any, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	t := time.NewTimer(d.Duration.D())
	defer t.Stop()
	select {
	case <-t.C:
		return map[string]any{"waited_ms": time.Since(start).Milliseconds()}, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("delay of %s cancelled after %s: %w", d.Duration.D(),
			time.Since(start).Round(time.Millisecond), ctx.Err())
	}
}
