package startstop_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/hushflow/hushflow/internal/startstop"
)

// A service runs one loop at a time; Stop ends it and waits; a stopped
// service starts again; a done context ends the loop too.
func TestStartStop(t *testing.T) {
	var b startstop.Base
	var runs atomic.Int32
	started := make(chan struct{}, 2)
	loop := func(ctx context.Context) {
		runs.Add(1)
		started <- struct{}{}
		<-ctx.Done()
	}
	b.Stop() // not running: nothing to do
	b.Start(context.Background(), loop)
	<-started
	b.Start(context.Background(), loop) // running: ignored
	b.Stop()
	if n := runs.Load(); n != 1 {
		t.Fatalf("loops started: %d, want 1", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Start(ctx, loop)
	<-started
	cancel()
	b.Stop() // returns: the loop ended with its context
	if n := runs.Load(); n != 2 {
		t.Fatalf("loops started: %d, want 2", n)
	}
}
