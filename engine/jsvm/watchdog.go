package jsvm

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"
)

// A watchEntry is one evaluation the watchdog keeps to its deadline, and
// its context's stop.
type watchEntry struct {
	rt       *goja.Runtime
	deadline time.Time
	timeout  time.Duration
	stopCtx  func() bool // nil when the context cannot end
}

// The process's watchdog: one goroutine that sleeps until the earliest
// deadline it might have to enforce, interrupts the evaluations past
// theirs, and sleeps again. An evaluation that starts while the
// watchdog is already due to wake before its deadline does not wake it:
// at any rate of evaluations it wakes about once per deadline's length
// (a second by default), where a timer per evaluation woke a thread for
// each (see docs/performance.md, "eleventh round"). An earlier shared
// goroutine that ticked every 2 ms while evaluations ran woke each
// process 500 times a second; this one never ticks.
var dog = &watchdog{live: map[*watchEntry]struct{}{}, kick: make(chan struct{}, 1)}

type watchdog struct {
	mu   sync.Mutex // guards live, wake and started
	live map[*watchEntry]struct{}
	// wake is when the watchdog's goroutine wakes next; zero while it
	// waits for a kick only (no evaluation was live when it last looked).
	wake    time.Time
	started bool
	kick    chan struct{}
	// looks counts the goroutine's looks at the live evaluations (its
	// wake-ups), for tests.
	looks atomic.Int64
}

// watch keeps rt to deadline, and to ctx.
func watch(ctx context.Context, rt *goja.Runtime, deadline time.Time) *watchEntry {
	e := &watchEntry{rt: rt, deadline: deadline, timeout: time.Until(deadline)}
	if ctx.Done() != nil {
		e.stopCtx = context.AfterFunc(ctx, func() {
			rt.Interrupt(ctxError(ctx.Err(), Limits{Timeout: e.timeout}))
		})
	}
	dog.add(e)
	return e
}

// stop ends the watch. An interrupt already on its way lands on a runtime
// that has finished its one script (RunIn refuses a second), so it is
// harmless.
func (e *watchEntry) stop() {
	dog.remove(e)
	if e.stopCtx != nil {
		e.stopCtx()
	}
}

func (d *watchdog) add(e *watchEntry) {
	d.mu.Lock()
	d.live[e] = struct{}{}
	if !d.started {
		d.started = true
		go d.run()
	}
	kick := d.wake.IsZero() || e.deadline.Before(d.wake)
	if kick {
		// Set here, so that the evaluations that start before the
		// goroutine runs do not kick it again.
		d.wake = e.deadline
	}
	d.mu.Unlock()
	if kick {
		select {
		case d.kick <- struct{}{}:
		default: // a kick is pending: the goroutine looks again anyway
		}
	}
}

func (d *watchdog) remove(e *watchEntry) {
	d.mu.Lock()
	delete(d.live, e)
	d.mu.Unlock()
}

// run interrupts the evaluations past their deadline and sleeps until the
// next deadline of those live, or until kicked when none is.
func (d *watchdog) run() {
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		next := d.check(time.Now())
		if next.IsZero() {
			<-d.kick
			continue
		}
		t.Reset(time.Until(next))
		select {
		case <-t.C:
		case <-d.kick:
			t.Stop()
		}
	}
}

// check interrupts the live evaluations whose deadline is not after now,
// and says when to look next: at the earliest deadline of those live, or
// when none is, at the wake-up planned before (a kick's deadline, whose
// evaluation most often ended before the goroutine ran: evaluations that
// start until then need not kick again); zero once that has passed too.
func (d *watchdog) check(now time.Time) (next time.Time) {
	d.looks.Add(1)
	d.mu.Lock()
	var late []*watchEntry
	for e := range d.live {
		if !e.deadline.After(now) {
			late = append(late, e)
			delete(d.live, e)
			continue
		}
		if next.IsZero() || e.deadline.Before(next) {
			next = e.deadline
		}
	}
	if next.IsZero() && d.wake.After(now) {
		next = d.wake
	}
	d.wake = next
	d.mu.Unlock()
	for _, e := range late {
		e.rt.Interrupt(&Error{Code: CodeTimeout, Message: fmt.Sprintf("evaluation exceeded its deadline of %s", e.timeout.Round(time.Millisecond))})
	}
	return next
}
