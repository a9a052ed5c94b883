package blocks_test

import (
	"context"
	"testing"

	"github.com/hushflow/hushflow/blocks"
)

type noop struct{}

func (noop) Run(context.Context, *blocks.Input) (any, error) { return nil, nil }

// A disabled type is gone from the registry, with the reason kept for the
// flows that use it; the registry it was cloned from keeps it (issue 17:
// the exec switch is the registry, not a flag in three layers).
func TestRegistryDisable(t *testing.T) {
	base := blocks.NewRegistry()
	for _, id := range []blocks.ID{"exec", "log"} {
		if err := base.Register(blocks.Info{ID: id, New: func() blocks.Block { return noop{} }}); err != nil {
			t.Fatal(err)
		}
	}
	r := base.Clone().Disable("exec", "set HUSHFLOW_EXEC=on")
	if _, ok := r.Lookup("exec"); ok {
		t.Error("a disabled type is still registered")
	}
	if why, off := r.Disabled("exec"); !off || why != "set HUSHFLOW_EXEC=on" {
		t.Errorf("Disabled: %q %v", why, off)
	}
	if _, err := r.Decode("exec", nil, nil); err == nil {
		t.Error("a disabled type decoded")
	}
	if _, off := r.Disabled("log"); off {
		t.Error("log disabled")
	}
	if _, ok := base.Lookup("exec"); !ok {
		t.Error("the original registry lost exec")
	}
	if _, off := r.Clone().Disabled("exec"); !off {
		t.Error("a clone forgot why exec is disabled")
	}
}
