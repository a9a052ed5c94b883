package delay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hushflow/hushflow/blocks"
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

// Issue 15: a wait over Input.SleepOver is durable: the block returns a
// *blocks.Sleep instead of waiting, and run again with Slept it finishes,
// counting the whole wait.
func TestDurableSleep(t *testing.T) {
	h := blockstest.NewHarness(t, nil, blockstest.Options{})
	h.In.SleepOver = time.Second
	_, err := h.Run(context.Background(), delay.Info(), map[string]any{"duration": "1m"}, nil)
	var sl *blocks.Sleep
	if !errors.As(err, &sl) || sl.For != time.Minute {
		t.Fatalf("a 1m delay over SleepOver: %v", err)
	}
	since := time.Now().Add(-time.Minute)
	h.In.Slept = &blocks.Sleep{For: time.Minute, Since: since, Until: since.Add(time.Minute), Woke: since.Add(time.Minute + 5*time.Millisecond)}
	out, err := h.Run(context.Background(), delay.Info(), map[string]any{"duration": "1m"}, nil)
	if err != nil || out.(map[string]any)["waited_ms"].(int64) != 60005 {
		t.Fatalf("woken: %v %v", out, err)
	}
	h.In.Slept = nil
	out, err = h.Run(context.Background(), delay.Info(), map[string]any{"duration": "10ms"}, nil)
	if err != nil || out.(map[string]any)["waited_ms"].(int64) < 10 {
		t.Fatalf("a short delay waits in process: %v %v", out, err)
	}
	safe, _, _ := new(delay.Delay).RepeatSafe(context.Background(), nil)
	if !safe {
		t.Error("a delay is safe to repeat")
	}
}
