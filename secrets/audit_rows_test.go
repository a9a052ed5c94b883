package secrets_test

import (
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
