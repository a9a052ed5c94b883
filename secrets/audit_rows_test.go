package secrets_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

// A run's audit records written through the Batcher (a written-out
// INSERT, secrets' auditRows) hold what gorm's Create of the same records
// holds (a Store without a Batcher), field for field but the id and time.
func TestBatchedAuditRecordsAreWhole(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := storetest.Open(t, b.Config(t), schema.All())
			batcher := store.NewBatcher(db)
			defer batcher.Close()
			plain := setup(t, db)
			batched := secrets.New(secrets.Config{DB: db, Keyring: keyring(t, "k1:"+key1), Batcher: batcher})
			create(t, plain, "API_TOKEN", "audit-rows-value-9fK2xQ7z", secrets.Scope{Project: "billing"})
			read := func(s *secrets.Store, run string) []secrets.AuditRecord {
				t.Helper()
				rr := s.NewRunResolver("billing", "production", run)
				if _, err := rr.Load(ctx); err != nil {
					t.Fatal(err)
				}
				if _, _, err := rr.Resolve(ctx, "call", "API_TOKEN", secrets.Scope{}); err != nil {
					t.Fatal(err)
				}
				var recs []secrets.AuditRecord
				if err := db.Where("run_id = ?", run).Order("action").Find(&recs).Error; err != nil {
					t.Fatal(err)
				}
				return recs
			}
			want, got := read(plain, "run-plain"), read(batched, "run-batched")
			if len(got) != 2 || len(want) != 2 {
				t.Fatalf("%d records through the Batcher, %d through gorm; want 2 each (the load and the read)", len(got), len(want))
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.ID == "" || g.At.IsZero() {
					t.Errorf("%s: id %q, time %v", g.Action, g.ID, g.At)
				}
				g.ID, g.At, g.RunID = w.ID, w.At, w.RunID
				if g != w {
					t.Errorf("through the Batcher:\n%+v\nthrough gorm:\n%+v", g, w)
				}
			}
		})
	}
}

// A run's audit records (its redaction_load and its first read of a
// secret) change fewer pages of an SQLite database since the indexes on
// secret_id and secret_name leave out the records that name no secret
// (migration 0023): the redaction_load record took a second page of each
// (9.35 pages a run in this test before, 6.65 after). The write-ahead
// log's frames were a tenth of a run's CPU at 30 runs/s. A search by id
// or name still finds the records, through those indexes.
func TestRunAuditPages(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteConfig(t), schema.All())
	batcher := store.NewBatcher(db)
	defer batcher.Close()
	m := create(t, setup(t, db), "API_TOKEN", "audit-pages-value-9fK2xQ7z", secrets.Scope{Project: "billing"})
	s := secrets.New(secrets.Config{DB: db, Keyring: keyring(t, "k1:"+key1), Batcher: batcher})
	run := func(i int) {
		t.Helper()
		rr := s.NewRunResolver("billing", "production", fmt.Sprintf("run-%05d", i))
		if _, err := rr.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := rr.Resolve(ctx, "call", "API_TOKEN", secrets.Scope{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 { // indexes of a few pages, as in use
		run(i)
	}
	const runs = 20
	frames := storetest.WALFrames(t, db, func() {
		for i := range runs {
			run(300 + i)
		}
	})
	per := float64(frames) / runs
	t.Logf("%.2f pages written per run's audit records (%d in %d runs)", per, frames, runs)
	if per > 7 {
		t.Errorf("a run's audit records write %.2f pages to the write-ahead log, want at most 7", per)
	}

	for _, key := range []string{m.ID, "API_TOKEN"} {
		recs, err := s.Audit(ctx, secrets.AuditQuery{Secret: key, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 320+1 { // the reads and the create
			t.Errorf("Audit(%s): %d records, want 321", key, len(recs))
		}
		got := storetest.SQLitePlan(t, db, "SELECT * FROM secret_audit WHERE (secret_id = ? AND secret_id <> '') OR (secret_name = ? AND secret_name <> '')", key, key)
		if !strings.Contains(got, "INDEX secret_audit_secret_id (") || !strings.Contains(got, "INDEX secret_audit_secret_name (") {
			t.Errorf("a search by secret reads %q, not the indexes on secret_id and secret_name", got)
		}
	}
}
