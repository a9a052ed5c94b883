package plan

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/golang-lru/v2"
	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// CacheSize is how many compiled flow versions a Cache keeps; the least
// recently used is dropped first (a plan is compiled again from its stored
// definition when needed).
const CacheSize = 1024

// Cache keeps the compiled plan of flow versions, loading a version from
// the database and compiling it on a miss. It is safe for concurrent use.
type Cache struct {
	db       *store.DB
	registry *blocks.Registry
	engine   *engine.Engine
	plans    *lru.Cache[string, *Plan]
}

// NewCache returns a Cache over db's flow versions, compiling with
// registry and eng (as Compile).
func NewCache(db *store.DB, registry *blocks.Registry, eng *engine.Engine) *Cache {
	plans, _ := lru.New[string, *Plan](CacheSize) // only a size < 1 is an error
	return &Cache{db: db, registry: registry, engine: eng, plans: plans}
}

// Get returns the plan of version of flowID.
func (c *Cache) Get(ctx context.Context, flowID string, version int) (*Plan, error) {
	return c.GetIn(ctx, c.db.DB, flowID, version)
}

// GetIn is Get reading a version it does not hold in db: a caller's
// transaction, which on SQLite holds the one write lock, so that the read
// does not wait for another connection of the pool (held by writers
// waiting for that lock: every write of the server then waited for the
// busy timeout).
func (c *Cache) GetIn(ctx context.Context, db *gorm.DB, flowID string, version int) (*Plan, error) {
	key := cacheKey(flowID, version)
	if p, ok := c.plans.Get(key); ok {
		return p, nil
	}
	var v model.FlowVersion
	if err := db.WithContext(ctx).Where("flow_id = ? AND version = ?", flowID, version).First(&v).Error; err != nil {
		return nil, fmt.Errorf("flow version %d: %w", version, store.Translate(err))
	}
	d, err := ParseDefinition([]byte(v.Definition))
	if err != nil {
		return nil, err
	}
	p, err := Compile(d, c.registry, c.engine)
	if err != nil {
		return nil, err
	}
	c.plans.Add(key, p)
	return p, nil
}

// Put keeps p as the plan of version of flowID (just saved).
func (c *Cache) Put(flowID string, version int, p *Plan) { c.plans.Add(cacheKey(flowID, version), p) }

// Forget drops every version of flowID (the flow was deleted).
func (c *Cache) Forget(flowID string) {
	for _, k := range c.plans.Keys() {
		if strings.HasPrefix(k, flowID+"@") {
			c.plans.Remove(k)
		}
	}
}

func cacheKey(id string, v int) string { return fmt.Sprintf("%s@%d", id, v) }
