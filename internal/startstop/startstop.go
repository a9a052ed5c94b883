// Package startstop is the start and stop of a background service: a
// goroutine that runs until it is stopped or its context is done. Services
// embed Base and call Base.Start with their loop, the way river's
// maintenance services embed its BaseStartStop.
package startstop

import (
	"context"
	"sync"
)

// Base starts one run of a loop and stops it. The zero value is ready.
type Base struct {
	mu     sync.Mutex // guards cancel and done
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs loop in a goroutine with a context that ends when ctx does or
// Stop is called. Starting a service that runs is a no-op.
func (b *Base) Start(ctx context.Context, loop func(ctx context.Context)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done != nil {
		return
	}
	ctx, b.cancel = context.WithCancel(ctx)
	done := make(chan struct{})
	b.done = done
	go func() {
		defer close(done)
		loop(ctx)
	}()
}

// Stop ends the loop and waits for it to return. Stopping a service that
// does not run is a no-op; a stopped service may be started again.
func (b *Base) Stop() {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.cancel, b.done = nil, nil
	b.mu.Unlock()
	if done == nil {
		return
	}
	cancel()
	<-done
}
