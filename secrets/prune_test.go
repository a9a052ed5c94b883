package secrets_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

// PruneReads deletes the records of reads (each run's redaction_load, a
// block's resolve) made before the time it is given, more than a batch of
// them, and keeps the later ones and every other record however old: a
// secret's creation, update and deletion, an exposure, a refused read.
func TestPruneReads(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := storetest.Open(t, b.Config(t), schema.All())
			s := setup(t, db)
			old := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			cutoff := old.Add(24 * time.Hour)
			var recs []secrets.AuditRecord
			add := func(action string, at time.Time, run string) {
				recs = append(recs, secrets.AuditRecord{ID: fmt.Sprintf("rec-%05d", len(recs)), At: at, Actor: "run", Action: action,
					SecretName: "API_TOKEN", RunID: run})
			}
			for i := range secrets.PruneBatch + 10 { // more than one batch
				add(secrets.ActionRedactionLoad, old.Add(time.Duration(i)*time.Second), fmt.Sprintf("run-%d", i))
			}
			for i := range 5 {
				add(secrets.ActionResolve, old.Add(time.Duration(i)*time.Minute), fmt.Sprintf("run-%d", i))
			}
			kept := []string{secrets.ActionCreate, secrets.ActionUpdate, secrets.ActionDelete, secrets.ActionRotate, secrets.ActionExposure,
				secrets.ActionReadDenied, secrets.ActionDecryptFailure, secrets.ActionEgressRefused}
			for _, a := range kept {
				add(a, old, "")
			}
			add(secrets.ActionRedactionLoad, cutoff, "run-at-the-cutoff")
			add(secrets.ActionResolve, cutoff.Add(time.Hour), "run-later")
			if err := db.CreateInBatches(recs, 200).Error; err != nil {
				t.Fatal(err)
			}
			var before int64
			db.Model(&secrets.AuditRecord{}).Count(&before)

			n, err := s.PruneReads(ctx, cutoff)
			if err != nil {
				t.Fatal(err)
			}
			if want := secrets.PruneBatch + 10 + 5; n != want {
				t.Errorf("deleted %d records, want %d", n, want)
			}
			var left []secrets.AuditRecord
			if err := db.Where("at < ? OR run_id IN ?", cutoff.Add(2*time.Hour), []string{"run-at-the-cutoff", "run-later"}).Order("id").Find(&left).Error; err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, r := range left {
				if r.Action == secrets.ActionRedactionLoad || r.Action == secrets.ActionResolve {
					got[r.RunID] = true
				} else {
					got[r.Action] = true
				}
			}
			for _, want := range append(kept, "run-at-the-cutoff", "run-later") {
				if !got[want] {
					t.Errorf("%s: deleted, want it kept", want)
				}
			}
			if len(got) != len(kept)+2 {
				t.Errorf("left %v, want the %d records not of reads and the two reads from the cutoff on", got, len(kept))
			}
			if n, err := s.PruneReads(ctx, cutoff); err != nil || n != 0 {
				t.Errorf("a second prune: %d, %v; want nothing left to delete", n, err)
			}
		})
	}
}
