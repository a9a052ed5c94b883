package jsvm

import (
	"context"
	"fmt"
	"time"

	"github.com/dop251/goja"
)

// A watch interrupts a runtime when its deadline passes or its context
// ends: one runtime timer and one context.AfterFunc per evaluation, so
// that nothing runs while no evaluation is late. (A shared goroutine that
// ticked every 2 ms while evaluations were registered, and for a second
// after, woke each process 500 times a second at any rate of runs; at 30
// runs/s that cost more CPU than the evaluations. Measured, see
// docs/performance.md, "Cost per run at a low rate".)
type watchEntry struct {
	timer   *time.Timer
	stopCtx func() bool // nil when the context cannot end
}

func watch(ctx context.Context, rt *goja.Runtime, deadline time.Time) *watchEntry {
	timeout := time.Until(deadline)
	e := &watchEntry{timer: time.AfterFunc(timeout, func() {
		rt.Interrupt(&Error{Code: CodeTimeout, Message: fmt.Sprintf("evaluation exceeded its deadline of %s", timeout.Round(time.Millisecond))})
	})}
	if ctx.Done() != nil {
		e.stopCtx = context.AfterFunc(ctx, func() {
			rt.Interrupt(ctxError(ctx.Err(), Limits{Timeout: timeout}))
		})
	}
	return e
}

// stop ends the watch. An interrupt already on its way lands on a runtime
// that has finished its one script (RunIn refuses a second), so it is
// harmless.
func (e *watchEntry) stop() {
	e.timer.Stop()
	if e.stopCtx != nil {
		e.stopCtx()
	}
}
