package flows_test

import (
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/apptest"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
)

// A run whose blocks read no secret still loads its secrets (for its
// redactor), and the audit record of that load is stored with the run's
// first write: on SQLite in the same transaction, so that a run of one
// block commits twice (its insert, its outcome), not three times; on
// PostgreSQL, whose outcome is one statement, just before it.
func TestLoadRecordGoesWithTheFirstWrite(t *testing.T) {
	apptest.Each(t, func(t *testing.T, s *apptest.Server) {
		setup(t, s)
		s.Must(201, "POST", "/api/v1/projects/billing/flows", map[string]any{
			"name": "plain", "trigger": map[string]any{"type": "manual"},
			"blocks": []any{map[string]any{"id": "say", "type": "log", "config": map[string]any{"message": "`hello`"}}},
		})
		run := func() string {
			id := s.Must(202, "POST", "/api/v1/projects/billing/flows/plain/runs", map[string]any{"environment": "production"})["id"].(string)
			waitFor(t, 30*time.Second, "the run to succeed", func() bool {
				return s.Must(200, "GET", "/api/v1/runs/"+id, nil)["status"] == "succeeded"
			})
			return id
		}
		run() // the first run prepares the statements and fills the caches
		var id string
		if s.App.DB.Dialect == store.SQLite {
			// The fewest of three runs: the heartbeat's first renewal of
			// the leases, on the second's beat, may fall in one of them.
			fewest := 0
			for i := range 3 {
				n := storetest.WALCommits(t, s.App.DB, func() { id = run() })
				if i == 0 || n < fewest {
					fewest = n
				}
			}
			if fewest != 2 {
				t.Errorf("a run of one block that reads no secret committed %d transactions at the fewest, want 2 (its insert; its outcome, with its secrets load's audit record)", fewest)
			}
		} else {
			id = run()
		}
		var loads int64
		s.App.DB.Raw("SELECT COUNT(*) FROM secret_audit WHERE action = 'redaction_load' AND run_id = ?", id).Scan(&loads)
		if loads != 1 {
			t.Errorf("run %s has %d redaction_load audit records, want 1", id, loads)
		}
	})
}
