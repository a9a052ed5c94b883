package httpblock

import (
	"context"
	"testing"
	"time"
)

// Without a timeout of its own, an attempt may use what is left of the
// block's time limit (the editor sets only the block's), not a fixed 30 s.
func TestAttemptTimeout(t *testing.T) {
	if d := attemptTimeout(context.Background(), 5*time.Second); d != 5*time.Second {
		t.Fatalf("own timeout: %s", d)
	}
	if d := attemptTimeout(context.Background(), 0); d != DefaultTimeout {
		t.Fatalf("no deadline: %s, want %s", d, DefaultTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if d := attemptTimeout(ctx, 0); d < 119*time.Second || d > 2*time.Minute {
		t.Fatalf("block deadline in 2m: %s", d)
	}
	if d := attemptTimeout(ctx, 3*time.Second); d != 3*time.Second {
		t.Fatalf("own timeout under a block deadline: %s", d)
	}
}
