package plan_test

import (
	"context"
	"errors"
	"testing"
	"time"

	_ "github.com/hushflow/hushflow/blocks/all"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/plan"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
)

// The cache compiles a stored version on a miss, keeps it, and forgets
// every version of a deleted flow (issue 17: caches were never evicted).
func TestCache(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteConfig(t), flows.Migrations())
	def := `{"name":"f","trigger":{"type":"manual"},"blocks":[{"id":"a","type":"log","config":{"message":"'hi'"}}]}`
	for v := 1; v <= 2; v++ {
		if err := db.Create(&model.FlowVersion{FlowID: "f1", Version: v, Definition: def, CreatedAt: time.Now()}).Error; err != nil {
			t.Fatal(err)
		}
	}
	c := plan.NewCache(db, blocks.Default, engine.New(engine.Config{}))
	ctx := context.Background()
	p1, err := c.Get(ctx, "f1", 1)
	if err != nil || p1.Def.Name != "f" || len(p1.Blocks) != 1 {
		t.Fatalf("get: %+v %v", p1, err)
	}
	// Cached: the row is not read again.
	db.Where("flow_id = ?", "f1").Delete(&model.FlowVersion{})
	if again, err := c.Get(ctx, "f1", 1); err != nil || again != p1 {
		t.Fatalf("cached plan: %v %v", again, err)
	}
	c.Forget("f1")
	if _, err := c.Get(ctx, "f1", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after Forget: %v, want not found (reloaded)", err)
	}
}
