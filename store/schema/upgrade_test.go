package schema_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
	"github.com/jackc/pgx/v5"
)

// The previous release (commit a559eae) as a user's database holds it:
// its schema (testdata/a559eae.*.sql, dumped from a database that release
// created), its migrations recorded, and a run queued and one running.
// Upgraded by this release's migrations, it must have the schema of a
// fresh install, on both databases, and its runs must be usable.
func TestUpgradeFromPreviousRelease(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			oldCfg := b.Config(t)
			loadFixture(t, oldCfg, store.Dialect(b.Name))
			upgraded := storetest.Open(t, oldCfg, schema.All())
			fresh := storetest.Open(t, b.Config(t), schema.All())
			want, got := describe(t, fresh), describe(t, upgraded)
			if diff := compare(want, got); diff != "" {
				t.Errorf("an upgraded database differs from a fresh one:\n%s", diff)
			}
			// Migrating again changes nothing.
			if err := upgraded.Migrate(ctx, schema.All()); err != nil {
				t.Fatalf("migrate twice: %v", err)
			}
			// The old runs: the queued one is due at its queue time, the
			// running one is still leased (the rescuer resumes it).
			var runs []struct {
				ID          string
				Status      string
				QueuedAt    time.Time
				AvailableAt time.Time
				Attempt     int
				Resumes     int
			}
			if err := upgraded.Raw("SELECT id, status, queued_at, available_at, attempt, resumes FROM runs ORDER BY id").Scan(&runs).Error; err != nil {
				t.Fatal(err)
			}
			if len(runs) != 2 || !runs[0].AvailableAt.Equal(runs[0].QueuedAt) || !runs[1].AvailableAt.Equal(runs[1].QueuedAt) ||
				runs[0].Attempt != 0 || runs[1].Resumes != 0 {
				t.Errorf("runs after the upgrade: %+v", runs)
			}
		})
	}
}

// loadFixture creates the previous release's schema and a little data.
func loadFixture(t *testing.T, cfg store.Config, d store.Dialect) {
	t.Helper()
	raw, err := os.ReadFile("testdata/a559eae." + string(d) + ".sql")
	if err != nil {
		t.Fatal(err)
	}
	data := []string{
		`INSERT INTO schema_migrations (id, applied_at) VALUES ('0001_projects_environments', '2026-12-01 10:00:00+00'),
  ('0003_members', '2026-12-01 10:00:00+00'), ('0002_users_tokens', '2026-12-01 10:00:00+00'),
  ('auth_0001_sessions', '2026-12-01 10:00:00+00'), ('0020_secrets', '2026-12-01 10:00:00+00'),
  ('0010_flows_runs', '2026-12-01 10:00:00+00'), ('0011_runs_flow_status', '2026-12-01 10:00:00+00'),
  ('0030_app_installations', '2026-12-01 10:00:00+00')`,
		`INSERT INTO environments (id, name, created_at) VALUES ('e1', 'development', '2026-12-01 10:00:00+00')`,
		`INSERT INTO runs (id, project_id, project, flow_id, flow, flow_version, environment, trigger, status, input, cancel_req, queued_at)
VALUES ('r1', 'p1', 'ops', 'f1', 'notify', 1, 'development', 'manual', 'queued', '{}', false, '2026-12-01 10:00:01+00')`,
		`INSERT INTO runs (id, project_id, project, flow_id, flow, flow_version, environment, trigger, status, input, cancel_req, queued_at, lease_owner, lease_expires_at, started_at)
VALUES ('r2', 'p1', 'ops', 'f1', 'notify', 1, 'development', 'manual', 'running', '{}', false, '2026-12-01 10:00:02+00', 'w1', '2026-12-01 10:00:32+00', '2026-12-01 10:00:02+00')`,
	}
	if d == store.Postgres {
		conn, err := pgx.Connect(context.Background(), cfg.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		// pg_dump output: run it as one script (simple protocol).
		if _, err := conn.Exec(context.Background(), string(raw)); err != nil {
			t.Fatalf("load the previous schema: %v", err)
		}
		if _, err := conn.Exec(context.Background(), "SELECT pg_catalog.set_config('search_path', 'public', false)"); err != nil {
			t.Fatal(err)
		}
		for _, q := range data {
			if _, err := conn.Exec(context.Background(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		return
	}
	db, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, line := range strings.Split(string(raw), ";\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "CREATE TABLE sqlite_sequence") {
			continue
		}
		if err := db.Exec(line).Error; err != nil {
			t.Fatalf("load the previous schema: %s: %v", line, err)
		}
	}
	for _, q := range data {
		// SQLite keeps times as text; store them as the driver writes them.
		q = strings.ReplaceAll(q, "+00'", "+00:00'")
		if err := db.Exec(q).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// describe lists a database's tables, columns (in order, with type,
// nullability and default), indexes and constraints, one line each.
func describe(t *testing.T, db *store.DB) []string {
	t.Helper()
	var out []string
	if db.Dialect == store.Postgres {
		var cols []struct {
			TableName, ColumnName, DataType, IsNullable string
			ColumnDefault                               *string
			CharacterMaximumLength                      *int
			OrdinalPosition                             int
		}
		if err := db.Raw(`SELECT table_name, column_name, data_type, is_nullable, column_default, character_maximum_length, ordinal_position
FROM information_schema.columns WHERE table_schema = 'public'`).Scan(&cols).Error; err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			out = append(out, fmt.Sprintf("column %s.%02d %s %s %s len=%v default=%v", c.TableName, c.OrdinalPosition, c.ColumnName,
				c.DataType, c.IsNullable, deref(c.CharacterMaximumLength), deref(c.ColumnDefault)))
		}
		var idx []struct{ Tablename, Indexname, Indexdef string }
		if err := db.Raw(`SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'`).Scan(&idx).Error; err != nil {
			t.Fatal(err)
		}
		for _, i := range idx {
			out = append(out, "index "+i.Tablename+" "+i.Indexname+" "+i.Indexdef)
		}
		var cons []struct{ Table, Name, Def string }
		if err := db.Raw(`SELECT conrelid::regclass::text AS table, conname AS name, pg_get_constraintdef(oid) AS def
FROM pg_constraint WHERE connamespace = 'public'::regnamespace`).Scan(&cons).Error; err != nil {
			t.Fatal(err)
		}
		for _, c := range cons {
			out = append(out, "constraint "+c.Table+" "+c.Name+" "+c.Def)
		}
	} else {
		var tables []string
		if err := db.Raw(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).Scan(&tables).Error; err != nil {
			t.Fatal(err)
		}
		for _, tb := range tables {
			var cols []struct {
				Cid       int
				Name      string
				Type      string
				Notnull   int
				DfltValue *string
				Pk        int
			}
			if err := db.Raw("SELECT cid, name, type, `notnull`, dflt_value, pk FROM pragma_table_info(?)", tb).Scan(&cols).Error; err != nil {
				t.Fatal(err)
			}
			for _, c := range cols {
				out = append(out, fmt.Sprintf("column %s.%02d %s %s notnull=%d default=%v pk=%d", tb, c.Cid, c.Name, c.Type, c.Notnull, deref(c.DfltValue), c.Pk))
			}
			var idx []struct {
				Name    string
				Unique  int
				Partial int
			}
			if err := db.Raw("SELECT name, `unique`, partial FROM pragma_index_list(?)", tb).Scan(&idx).Error; err != nil {
				t.Fatal(err)
			}
			for _, i := range idx {
				var cols []string
				db.Raw("SELECT name FROM pragma_index_info(?) ORDER BY seqno", i.Name).Scan(&cols)
				var where string
				db.Raw("SELECT COALESCE(sql, '') FROM sqlite_master WHERE type = 'index' AND name = ?", i.Name).Scan(&where)
				if j := strings.Index(strings.ToUpper(where), " WHERE "); j >= 0 {
					where = strings.ReplaceAll(where[j:], "`", "")
				} else {
					where = ""
				}
				out = append(out, fmt.Sprintf("index %s %s unique=%d (%s)%s", tb, i.Name, i.Unique, strings.Join(cols, ","), where))
			}
		}
	}
	sort.Strings(out)
	return out
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// compare returns the lines only in want or only in got.
func compare(want, got []string) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, l := range want {
		w[l] = true
	}
	for _, l := range got {
		g[l] = true
	}
	var diff []string
	for _, l := range want {
		if !g[l] {
			diff = append(diff, "  fresh only:    "+l)
		}
	}
	for _, l := range got {
		if !w[l] {
			diff = append(diff, "  upgraded only: "+l)
		}
	}
	return strings.Join(diff, "\n")
}
