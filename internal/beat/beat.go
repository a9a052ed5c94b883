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
// round"). Waiting until a beat instead puts every loop whose period is a
// second or more on the same instants: the runtime runs their timers in
// one wake-up.
//
// The beats are the instants a whole number of seconds of the wall clock
// plus this process's phase, a random offset within a second chosen when
// it starts, so that replicas on one machine do not wake together. A
// period under a second has beats of its own: its multiples, plus the
// phase.
package beat

import (
	"math/rand/v2"
	"time"
)

// phase is this process's offset of the beats.
var phase = time.Duration(rand.Int64N(int64(time.Second)))

// Until is how long to wait for the beat that ends a wait of about d: the
// last beat at most d from now, so more than d minus a second (minus the
// period, for a period under a second).
func Until(d time.Duration) time.Duration { return until(time.Now(), d, phase) }

func until(now time.Time, d, phase time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	unit := min(d, time.Second)
	end := now.Add(d - phase)
	return d - end.Sub(end.Truncate(unit))
}

// Ticker delivers beats about a period apart on C, as a time.Ticker its
// ticks, except that the holder calls Next after each one it received to
// arm the next, which comes about a period after that call.
type Ticker struct {
	C <-chan time.Time
	t *time.Timer
	d time.Duration
}

// NewTicker returns a Ticker of period d, armed for its first beat. d
// must be positive.
func NewTicker(d time.Duration) *Ticker {
	if d <= 0 {
		panic("beat: non-positive period for NewTicker")
	}
	t := time.NewTimer(Until(d))
	return &Ticker{C: t.C, t: t, d: d}
}

// Next arms the ticker for its next beat.
func (k *Ticker) Next() { k.t.Reset(Until(k.d)) }

// Stop stops the ticker until Next.
func (k *Ticker) Stop() { k.t.Stop() }
