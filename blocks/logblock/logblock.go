// Package logblock is the "log" block: it writes one message to the run's
// log at a level.
package logblock

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hushflow/hushflow/blocks"
)

func init() { blocks.MustRegister(Info()) }

// Info describes the log block.
func Info() blocks.Info {
	return blocks.Info{ID: "log", Spec: spec(), New: func() blocks.Block { return new(Log) }}
}

var (
	_ blocks.Block      = (*Log)(nil)
	_ blocks.Validator  = (*Log)(nil)
	_ blocks.Repeatable = (*Log)(nil)
)

// RepeatSafe: a log block only adds an event to its run.
func (l *Log) RepeatSafe(context.Context, *blocks.Input) (bool, string, error) { return true, "", nil }

// Levels are the levels a log block accepts.
var Levels = []string{"debug", "info", "warn", "error"}

// Log is the configuration of a log block.
type Log struct {
	// Message is what is logged: a string as is, anything else as JSON.
	Message any `json:"message"`
	// Level is debug, info (default), warn or error.
	Level string `json:"level,omitempty"`
}

func spec() blocks.Spec {
	return blocks.Spec{
		Summary: "Write a message to the run's log; the output is {message, level}.",
		Fields: []blocks.Field{
			{Name: "message", Type: blocks.Any, Required: true, Doc: "The message: a string is written as is, any other value as JSON.", Example: "`order ${input.id} received`"},
			{Name: "level", Type: blocks.String, Default: "info", Doc: "debug, info, warn or error."},
		},
	}
}

// Validate checks the level.
func (l *Log) Validate() error {
	switch l.Level {
	case "", "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("level %q: use debug, info, warn or error", l.Level)
}

// Run emits the log event.
func (l *Log) Run(ctx context.Context, in *blocks.Input) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	level := l.Level
	if level == "" {
		level = "info"
	}
	msg, ok := l.Message.(string)
	if !ok {
		b, err := json.Marshal(l.Message)
		if err != nil {
			return nil, fmt.Errorf("message: %w", err)
		}
		msg = string(b)
	}
	in.Log(level, msg)
	return map[string]any{"message": msg, "level": level}, nil
}
