// Package delay is the "delay" block: it waits, for example for a rate
// limit to reset. Cancelling the run ends the wait. A wait longer than the
// executor's Input.SleepOver is durable: the block returns a *blocks.Sleep,
// the run releases its worker and is queued to resume at the end of the
// wait (on any replica), when the block runs again to finish.
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
	_ blocks.Block      = (*Delay)(nil)
	_ blocks.Validator  = (*Delay)(nil)
	_ blocks.Repeatable = (*Delay)(nil)
)

// RepeatSafe: waiting again has no effect outside the run.
func (d *Delay) RepeatSafe(context.Context, *blocks.Input) (bool, string, error) {
	return true, "", nil
}

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
			{Name: "duration", Type: blocks.Duration, Required: true, Doc: "How long to wait: a duration such as \"1.5s\" or \"2m\", or milliseconds. At most 1h.", Example: "'30s'", Max: Max},
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
// timeout (30s unless the flow sets one) also bounds the wait. A wait over
// in.SleepOver returns a *blocks.Sleep instead; run again with in.Slept
// set, the block waits what is left of it (nothing, normally) and
// finishes.
func (d *Delay) Run(ctx context.Context, in *blocks.Input) (any, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if in != nil && in.Slept != nil {
		s := in.Slept
		if err := wait(ctx, s.Until.Sub(s.Woke), d.Duration.D()); err != nil {
			return nil, err
		}
		end := s.Woke
		if end.Before(s.Until) {
			end = s.Until
		}
		return map[string]any{"waited_ms": end.Sub(s.Since).Milliseconds()}, nil
	}
	if in != nil && in.SleepOver > 0 && d.Duration.D() > in.SleepOver {
		return nil, &blocks.Sleep{For: d.Duration.D()}
	}
	start := time.Now()
	if err := wait(ctx, d.Duration.D(), d.Duration.D()); err != nil {
		return nil, err
	}
	return map[string]any{"waited_ms": time.Since(start).Milliseconds()}, nil
}

// wait waits for d (nothing when d <= 0) or until ctx is done.
func wait(ctx context.Context, d, total time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("delay of %s cancelled after %s: %w", total,
			time.Since(start).Round(time.Millisecond), ctx.Err())
	}
}
