package executor

import (
	"context"
	"time"

	"github.com/hushflow/hushflow/internal/beat"
	"github.com/hushflow/hushflow/internal/startstop"
)

// heartbeat is the background service that extends the leases of this
// worker's runs, cancels those whose cancel was asked (through any
// replica's API) and stops those whose lease was lost (the rescuer of a
// replica gave them to another worker). It looks for cancels every
// second and renews leases every third of the lease, or every second
// after a renewal that failed or left a lease as it was (its run's row
// locked by a batch writing it). While the worker runs nothing it does
// not tick: the first run to start wakes it.
type heartbeat struct {
	startstop.Base
	w       *Worker
	running *runningSet
}

func (h *heartbeat) Start(ctx context.Context) {
	h.Base.Start(ctx, func(ctx context.Context) {
		t := beat.NewTicker(time.Second)
		defer t.Stop()
		var last time.Time
		for {
			tick := t.C
			if h.running.empty() {
				t.Stop()
				select {
				case <-ctx.Done():
					return
				case <-h.running.started:
				}
				// The first look comes a second after the first run
				// started, as it did with a time.Ticker (a test that moves
				// the clock counts on that second); the next ones on the
				// process's beat.
				tick = time.NewTimer(time.Second).C
			}
			select {
			case <-ctx.Done():
				return
			case <-tick:
				t.Next()
			}
			if time.Since(last) >= h.w.cfg.Lease/3 && h.beat(ctx) {
				last = time.Now()
			} else {
				h.cancels(ctx)
			}
		}
	})
}

// cancels cancels the runs whose cancel was asked.
func (h *heartbeat) cancels(ctx context.Context) {
	ids := h.running.ids()
	if len(ids) == 0 {
		return
	}
	asked, err := h.w.cfg.Driver.CancelRequested(h.w.cfg.DB.WithContext(ctx), ids)
	if err != nil {
		return
	}
	for id, reason := range asked {
		h.running.cancel(id, canceled(reason))
	}
}

// beat renews the leases and reports whether it could; it also cancels.
func (h *heartbeat) beat(ctx context.Context) bool {
	ids := h.running.ids()
	if len(ids) == 0 {
		return true
	}
	h.cancels(ctx)
	w := h.w
	held, renewed, err := w.cfg.Driver.ExtendLeases(w.cfg.DB.WithContext(ctx), w.owner, ids, w.now().Add(w.cfg.Lease))
	if err != nil {
		if ctx.Err() == nil {
			w.warnQuiet("extend run leases", "err", err)
		}
		return false
	}
	ok := make(map[string]bool, len(held))
	for _, id := range held {
		ok[id] = true
	}
	for _, id := range ids {
		if !ok[id] {
			// Ended meanwhile, or taken: either way this worker is done
			// with it.
			h.running.cancel(id, errLeaseLost)
		}
	}
	// A lease whose run's row a batch had locked was not extended: the
	// next second's beat tries again.
	return renewed
}
