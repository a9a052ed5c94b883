//go:build !linux

package cores

import "time"

// WithTimerSlack does nothing: only Linux has a timer slack to set.
func WithTimerSlack(time.Duration) error { return nil }

// TimerSlack is 0: only Linux has a timer slack.
func TimerSlack() time.Duration { return 0 }
