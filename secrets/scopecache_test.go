package secrets_test

import (
	"testing"

	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

// loadValues is what a run's load of billing/production decrypts, by
// name.
func loadValues(t *testing.T, s *secrets.Store, run string) map[string]string {
	t.Helper()
	loaded, err := s.NewRunResolver("billing", "production", run).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range loaded {
		out[l.Meta.Name] = l.Value.Reveal()
	}
	return out
}

// TestRunLoadSeesEveryChange checks that a run's load sees every change
// to the secrets committed before it, on both databases: SQLite keeps a
// scope's rows in memory between loads, and must read them again after
// a new value, a new secret, a delete, and a
// change made by another connection with SQL of its own.
func TestRunLoadSeesEveryChange(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			cfg := b.Config(t)
			db := storetest.Open(t, cfg, schema.All())
			s := setup(t, db)
			a := create(t, s, "A", "first-value-of-a-0123456789", secrets.Scope{Project: "billing"})
			want := func(run string, w map[string]string) {
				t.Helper()
				got := loadValues(t, s, run)
				if len(got) != len(w) {
					t.Fatalf("%s: loaded %v, want %v", run, got, w)
				}
				for k, v := range w {
					if got[k] != v {
						t.Fatalf("%s: loaded %v, want %v", run, got, w)
					}
				}
			}
			want("r1", map[string]string{"A": "first-value-of-a-0123456789"})
			want("r2", map[string]string{"A": "first-value-of-a-0123456789"})

			if _, _, err := s.Update(ctx, "alice", a.ID, secrets.UpdateInput{Value: secrets.NewValue("second-value-of-a-0123456789")}); err != nil {
				t.Fatal(err)
			}
			want("r3", map[string]string{"A": "second-value-of-a-0123456789"})

			c := create(t, s, "C", "value-of-c-0123456789abcdef", secrets.Scope{Project: "billing", Environment: "production"})
			want("r4", map[string]string{"A": "second-value-of-a-0123456789", "C": "value-of-c-0123456789abcdef"})

			if err := s.Delete(ctx, "alice", c.ID); err != nil {
				t.Fatal(err)
			}
			want("r5", map[string]string{"A": "second-value-of-a-0123456789"})

			// Another connection (another process, or an operator's SQL)
			// deletes A behind the store's back.
			other := storetest.Open(t, cfg, nil)
			if err := other.Exec(`UPDATE secrets SET deleted_at = CURRENT_TIMESTAMP, deleted_by = 'sql' WHERE id = ?`, a.ID).Error; err != nil {
				t.Fatal(err)
			}
			want("r6", map[string]string{})
		})
	}
}

// TestRunLoadReadsTheScopeOnce checks that on SQLite consecutive loads of
// a scope read its rows from memory: with the triggers that mark every
// change dropped, a change made behind them is not seen. (The triggers
// are what keeps the rows true: TestRunLoadSeesEveryChange.)
func TestRunLoadReadsTheScopeOnce(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteConfig(t), schema.All())
	if db.Dialect != store.SQLite {
		t.Fatal("want SQLite")
	}
	s := setup(t, db)
	create(t, s, "A", "first-value-of-a-0123456789", secrets.Scope{Project: "billing"})
	if got := loadValues(t, s, "r1"); got["A"] != "first-value-of-a-0123456789" {
		t.Fatalf("loaded %v", got)
	}
	for _, tr := range []string{"secrets_generation_insert", "secrets_generation_update", "secrets_generation_delete",
		"secret_versions_generation_insert", "secret_versions_generation_update", "secret_versions_generation_delete"} {
		if err := db.Exec("DROP TRIGGER " + tr).Error; err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Exec(`UPDATE secrets SET deleted_at = CURRENT_TIMESTAMP WHERE name = 'A'`).Error; err != nil {
		t.Fatal(err)
	}
	if got := loadValues(t, s, "r2"); got["A"] != "first-value-of-a-0123456789" {
		t.Errorf("a load after the first read its scope again (%v): want the rows kept in memory", got)
	}
	// A change of the generation itself is what the next load looks at.
	if err := db.Exec(`UPDATE secret_generation SET gen = gen + 1`).Error; err != nil {
		t.Fatal(err)
	}
	if got := loadValues(t, s, "r3"); len(got) != 0 {
		t.Errorf("after the generation changed, loaded %v, want nothing (A is deleted)", got)
	}
}

// TestRunLoadWithoutTriggersReadsEachTime checks that a database whose
// change-marking triggers are gone (a secrets table rebuilt by hand drops
// them) does not keep its scopes' rows: every load reads them, and sees
// a change that no longer marks secret_generation.
func TestRunLoadWithoutTriggersReadsEachTime(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteConfig(t), schema.All())
	if err := db.Exec("DROP TRIGGER secrets_generation_update").Error; err != nil {
		t.Fatal(err)
	}
	s := setup(t, db)
	create(t, s, "A", "first-value-of-a-0123456789", secrets.Scope{Project: "billing"})
	if got := loadValues(t, s, "r1"); got["A"] != "first-value-of-a-0123456789" {
		t.Fatalf("loaded %v", got)
	}
	if err := db.Exec(`UPDATE secrets SET deleted_at = CURRENT_TIMESTAMP WHERE name = 'A'`).Error; err != nil {
		t.Fatal(err)
	}
	if got := loadValues(t, s, "r2"); len(got) != 0 {
		t.Errorf("without the triggers, a load after a deletion loaded %v: rows kept in memory that nothing marks stale", got)
	}
}
