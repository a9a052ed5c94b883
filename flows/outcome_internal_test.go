package flows

import (
	"testing"
	"time"

	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
)

// Outcomes recorded together (one UPDATE on PostgreSQL) apply only to the
// runs still leased to their worker; a run whose lease was lost (reaped,
// taken by another worker) keeps what it has.
func TestRecordOutcomesTogether(t *testing.T) {
	storetest.Each(t, Migrations(), func(t *testing.T, db *store.DB) {
		now := time.Now().UTC().Truncate(time.Microsecond)
		for _, r := range []Run{
			{ID: "mine", LeaseOwner: "w1", Status: StatusRunning},
			{ID: "reaped", LeaseOwner: "w1", Status: StatusFailed, Error: "reaped"},
			{ID: "other", LeaseOwner: "w2", Status: StatusRunning},
		} {
			r.ProjectID, r.Project, r.FlowID, r.Flow, r.FlowVersion, r.Environment, r.Trigger, r.QueuedAt =
				"p", "p", "f", "f", 1, "development", "manual", now
			r.Input = `{"token":"x"}`
			if err := db.Create(&r).Error; err != nil {
				t.Fatal(err)
			}
		}
		s := &Service{db: db}
		var items []any
		for _, id := range []string{"mine", "reaped", "other"} {
			items = append(items, outcome{id: id, owner: "w1", status: StatusSucceeded, output: `{"ok":true}`,
				finished: now, input: `{"token":"[REDACTED]"}`})
		}
		ok, err := s.recordOutcomes(db.DB, items)
		if err != nil || len(ok) != 3 || !ok[0] || ok[1] || ok[2] {
			t.Fatalf("applied %v, %v; want only mine", ok, err)
		}
		var runs []Run
		db.Order("id").Find(&runs)
		for _, r := range runs {
			switch r.ID {
			case "mine":
				if r.Status != StatusSucceeded || r.Output != `{"ok":true}` || r.FinishedAt == nil || !r.FinishedAt.Equal(now) ||
					r.LeaseExpiresAt != nil || r.Input != `{"token":"[REDACTED]"}` {
					t.Errorf("mine: %+v", r)
				}
			case "reaped":
				if r.Status != StatusFailed || r.Error != "reaped" {
					t.Errorf("reaped run changed: %+v", r)
				}
			case "other":
				if r.Status != StatusRunning || r.Input != `{"token":"x"}` {
					t.Errorf("another worker's run changed: %+v", r)
				}
			}
		}
	})
}
