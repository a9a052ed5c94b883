package all_test

import (
	"testing"

	"github.com/hushflow/hushflow/blocks"
	_ "github.com/hushflow/hushflow/blocks/all"
	"github.com/hushflow/hushflow/blocks/blockstest"
)

// TestRegistered runs the contract suite on every registered block type.
func TestRegistered(t *testing.T) {
	want := map[blocks.ID]bool{"http": true, "code": true, "log": true, "delay": true, "app": true, "flow": true}
	for _, info := range blocks.Default.List() {
		delete(want, info.ID)
		t.Run(string(info.ID), func(t *testing.T) { blockstest.Run(t, info) })
	}
	for id := range want {
		t.Errorf("block type %q is not registered", id)
	}
}
