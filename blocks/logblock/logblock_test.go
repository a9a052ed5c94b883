package logblock_test

import (
	"context"
	"testing"

	"github.com/hushflow/hushflow/blocks/blockstest"
	"github.com/hushflow/hushflow/blocks/logblock"
)

const canary = `lg_Zq9&<p>"%\Yt42`

func TestContract(t *testing.T) { blockstest.Run(t, logblock.Info()) }

func TestLog(t *testing.T) {
	h := blockstest.NewHarness(t, map[string]string{"K": canary}, blockstest.Options{})
	for _, c := range []struct {
		cfg        map[string]any
		msg, level string
	}{
		{map[string]any{"message": "hello"}, "hello", "info"},
		{map[string]any{"message": map[string]any{"a": 1.0}, "level": "warn"}, `{"a":1}`, "warn"},
		{map[string]any{"message": 3.5, "level": "debug"}, "3.5", "debug"},
		{map[string]any{"message": "token " + canary, "level": "error"}, "token " + canary, "error"},
	} {
		out, err := h.Run(context.Background(), logblock.Info(), c.cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		m := out.(map[string]any)
		if m["message"] != c.msg || m["level"] != c.level {
			t.Errorf("%v -> %v", c.cfg, m)
		}
		evs := h.EventsOf("log")
		last := evs[len(evs)-1].Data
		if last["message"] != c.msg || last["level"] != c.level {
			t.Errorf("event %v", last)
		}
	}
	h.AssertNoLeak()
	if _, err := h.Decode(logblock.Info(), map[string]any{"message": "x", "level": "loud"}, nil); err == nil {
		t.Error("bad level accepted")
	}
}
