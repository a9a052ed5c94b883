// Package beat gives the server's periodic work one shared beat, so that
// an idle server wakes once a second for all of it rather than once for
// each.
//
// A loop that waits its period from when it last ran (time.Ticker) wakes
// the process at its own moments: the scheduler, the secrets observer, the
// claim loop's idle poll, the rescuer and the heartbeat each woke an idle
// server once a second at a different moment, and on a virtual machine
// each wake-up (the thread woken, the runtime's monitor thread woken with
// it) costs more than the statement it runs (docs/performance.md, "ninth
// round"). Waiting for the next beat instead puts every loop of the same
// period, or of a multiple of it, on the same instants: the runtime runs
// their timers in one wake-up.
//
// The beats of period d are the instants at a multiple of d of the wall
// clock plus this process's phase, a random offset within a second chosen
// when it starts, so that replicas on one machine do not all wake at once.
package beat

import (
	"math/rand/v2"
	"time"
)

// phase is this process's offset of the beats.
var phase = time.Duration(rand.Int64N(int64(time.Second)))

// Until is the time from now to the next beat of period d (at most d).
func Until(d time.Duration) time.Duration { return until(time.Now(), d, phase) }

func until(now time.Time, d, phase time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	next := now.Add(-phase).Truncate(d).Add(d + phase)
	return next.Sub(now)
}

// Ticker delivers the beats of a period on C, as a time.Ticker its ticks,
// except that the holder calls Next after each one it received (a beat
// missed while the holder worked is not delivered late: the next one is).
type Ticker struct {
	C <-chan time.Time
	t *time.Timer
	d time.Duration
}

// NewTicker returns a Ticker of period d, armed for its next beat.
func NewTicker(d time.Duration) *Ticker {
	t := time.NewTimer(Until(d))
	return &Ticker{C: t.C, t: t, d: d}
}

// Next arms the ticker for the next beat.
func (k *Ticker) Next() { k.t.Reset(Until(k.d)) }

// Stop stops the ticker until Next.
func (k *Ticker) Stop() { k.t.Stop() }
