package delay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hushflow/hushflow/blocks/blockstest"
	"github.com/hushflow/hushflow/blocks/delay"
)

func TestContract(t *testing.T) { blockstest.Run(t, delay.Info()) }

func TestDelay(t *testing.T) {
	h := blockstest.NewHarness(t, nil, blockstest.Options{})
	out, err := h.Run(context.Background(), delay.Info(), map[string]any{"duration": "20ms"}, nil)
	if err != nil || out.(map[string]any)["waited_ms"].(int64) < 20 {
		t.Fatalf("%v %v", out, err)
	}
	out, err = h.Run(context.Background(), delay.Info(), map[string]any{"duration": 5}, nil)
	if err != nil {
		t.Fatalf("%v %v", out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = h.Run(ctx, delay.Info(), map[string]any{"duration": "1h"}, nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("cancel: %v after %s", err, time.Since(start))
	}
	for _, bad := range []any{"2h", "-1s", "soon", true} {
		if _, err := h.Decode(delay.Info(), map[string]any{"duration": bad}, nil); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
