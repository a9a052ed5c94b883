package flows_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
)

// A webhook, the API's flow lookup and the run history find their rows by
// the project's name through an index, on both databases: among 3,000
// flows and 3,000 runs of other projects, none of their queries reads the
// whole table. (Before migration 0016 each of them did: the only indexes
// were on the project's id.)
func TestProjectNameLookupsUseIndexes(t *testing.T) {
	apptest.SkipShort(t)
	// The statements are captured by a gorm callback registered as the
	// database opens (registering one while the server's loops query is a
	// data race in gorm), kept only while capturing is set.
	var mu sync.Mutex
	type query struct {
		sql  string
		vars []any
	}
	var seen []query
	var capturing atomic.Bool
	capture := func(tx *gorm.DB) {
		if !capturing.Load() {
			return
		}
		sql := tx.Statement.SQL.String()
		if strings.Contains(sql, "project = ") && (strings.Contains(sql, `FROM "flows"`) || strings.Contains(sql, "FROM `flows`") ||
			strings.Contains(sql, `FROM "runs"`) || strings.Contains(sql, "FROM `runs`")) {
			mu.Lock()
			seen = append(seen, query{sql, append([]any(nil), tx.Statement.Vars...)})
			mu.Unlock()
		}
	}
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		db := s.App.DB
		mu.Lock()
		seen = nil
		mu.Unlock()
		s.Must(201, "POST", "/api/v1/projects", map[string]string{"name": "ops"})
		s.Must(201, "POST", "/api/v1/projects/ops/flows", map[string]any{
			"name": "hook", "trigger": map[string]any{"type": "webhook"},
			"blocks": []any{map[string]any{"id": "l", "type": "log", "config": map[string]any{"message": "'hi'"}}},
		})
		// Other projects' flows and runs, as a long-lived server has them.
		now := time.Now().UTC()
		for batch := 0; batch < 30; batch++ {
			var flows, runs []string
			var fargs, rargs []any
			for i := 0; i < 100; i++ {
				n := batch*100 + i
				project := fmt.Sprintf("p%02d", n%30)
				flows = append(flows, "(?, ?, ?, ?, 1, 'manual', '{}', ?, ?)")
				fargs = append(fargs, fmt.Sprintf("flow-%05d", n), "pid-"+project, project, fmt.Sprintf("f%05d", n), now, now)
				runs = append(runs, "(?, ?, ?, ?, ?, 1, 'development', 'manual', 'succeeded', '{}', ?, ?)")
				rargs = append(rargs, fmt.Sprintf("run-%05d", n), "pid-"+project, project, fmt.Sprintf("flow-%05d", n), fmt.Sprintf("f%05d", n), now, now)
			}
			if err := db.Exec("INSERT INTO flows (id, project_id, project, name, version, trigger_type, definition, created_at, updated_at) VALUES "+strings.Join(flows, ", "), fargs...).Error; err != nil {
				t.Fatal(err)
			}
			if err := db.Exec("INSERT INTO runs (id, project_id, project, flow_id, flow, flow_version, environment, trigger, status, input, queued_at, available_at) VALUES "+strings.Join(runs, ", "), rargs...).Error; err != nil {
				t.Fatal(err)
			}
		}
		if db.Dialect == store.Postgres {
			// As autovacuum does; SQLite's statistics are gathered only
			// when asked, and Hushflow does not ask.
			if err := db.Exec("ANALYZE").Error; err != nil {
				t.Fatal(err)
			}
		}

		// The statements the server runs for a webhook, a flow and a
		// page of runs.
		capturing.Store(true)
		if r := s.Do("POST", "/hooks/ops/hook", map[string]any{"n": 1}); r.Status != 202 {
			t.Fatalf("webhook: %d %s", r.Status, r.Body)
		}
		s.Must(200, "GET", "/api/v1/projects/ops/flows/hook", nil)
		s.Must(200, "GET", "/api/v1/projects/ops/runs", nil)
		s.Must(200, "GET", "/api/v1/projects/ops/runs?flow=hook", nil)
		capturing.Store(false)

		mu.Lock()
		defer mu.Unlock()
		if len(seen) < 4 {
			t.Fatalf("saw %d lookups by project name, want at least 4: %v", len(seen), seen)
		}
		sqlDB, err := db.DB.DB()
		if err != nil {
			t.Fatal(err)
		}
		explain := "EXPLAIN QUERY PLAN "
		if db.Dialect == store.Postgres {
			explain = "EXPLAIN "
		}
		for _, q := range seen {
			rows, err := sqlDB.QueryContext(context.Background(), explain+q.sql, q.vars...)
			if err != nil {
				t.Fatalf("explain %s: %v", q.sql, err)
			}
			var plan []string
			for rows.Next() {
				cols, _ := rows.Columns()
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, fmt.Sprint(vals...))
			}
			rows.Close()
			p := strings.Join(plan, "\n")
			if strings.Contains(p, "SCAN flows") || strings.Contains(p, "SCAN runs USING INDEX sqlite_autoindex") ||
				strings.Contains(p, "Seq Scan") || !strings.Contains(p, "flows_project_flow") && !strings.Contains(p, "runs_project") {
				t.Errorf("%s\nreads the whole table:\n%s", q.sql, p)
			}
		}
	}, func(c *app.Config) {
		c.TestOnDatabase = func(db *store.DB) error {
			return db.Callback().Query().After("gorm:query").Register("test:lookups", capture)
		}
	})
}

// BenchmarkFlowLookup finds one flow by project and name among 10,000
// flows of 100 projects (a webhook's and an API call's first query), with
// the index of migration 0016 and without it (the version before), in the
// same run, on each database.
//
//	go test -run '^$' -bench BenchmarkFlowLookup ./flows/
func BenchmarkFlowLookup(b *testing.B) {
	for _, be := range storetest.Backends(b) {
		db := storetest.Open(b, be.Config(b), schema.All())
		now := time.Now().UTC()
		for batch := 0; batch < 100; batch++ {
			var rows []string
			var args []any
			for i := 0; i < 100; i++ {
				n := batch*100 + i
				project := fmt.Sprintf("p%03d", n%100)
				rows = append(rows, "(?, ?, ?, ?, 1, 'webhook', ?, ?, ?)")
				// A definition of a few blocks' size.
				args = append(args, fmt.Sprintf("flow-%05d", n), "pid-"+project, project, fmt.Sprintf("f%05d", n), strings.Repeat("{}", 400), now, now)
			}
			if err := db.Exec("INSERT INTO flows (id, project_id, project, name, version, trigger_type, definition, created_at, updated_at) VALUES "+strings.Join(rows, ", "), args...).Error; err != nil {
				b.Fatal(err)
			}
		}
		if db.Dialect == store.Postgres {
			if err := db.Exec("ANALYZE").Error; err != nil { // as autovacuum does
				b.Fatal(err)
			}
		}
		for _, c := range []struct{ name, ddl string }{
			{"indexed", "CREATE INDEX IF NOT EXISTS flows_project_flow ON flows (project, name)"},
			{"before-0016", "DROP INDEX flows_project_flow"},
		} {
			b.Run(be.Name+"/"+c.name, func(b *testing.B) {
				if err := db.Exec(c.ddl).Error; err != nil {
					b.Fatal(err)
				}
				for i := 0; b.Loop(); i++ {
					var f model.Flow
					n := i % 10000
					if err := db.Scopes(model.FlowNamed(fmt.Sprintf("p%03d", n%100), fmt.Sprintf("f%05d", n))).Take(&f).Error; err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
