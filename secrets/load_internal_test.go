package secrets

import (
	"errors"
	"sync"
	"testing"
	"testing/synctest"
)

// A read that starts while another read's commit carries the run's load
// record waits for that commit, then commits without it: no read is
// committed before the load (iterations of an each block read at once).
// A commit that fails gives the record back to the next. synctest.Wait
// returns once every goroutine is blocked: the second read waits for its
// turn, not for the database.
func TestReadsWaitForTheLoadRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &RunResolver{loadTurn: make(chan struct{}, 1), unrecorded: []AuditRecord{{Action: ActionRedactionLoad}}}
		var mu sync.Mutex
		var order []string
		commit := func(name string, release <-chan struct{}) func([]AuditRecord) error {
			return func(with []AuditRecord) error {
				if release != nil {
					<-release
				}
				mu.Lock()
				defer mu.Unlock()
				order = append(order, name+":"+actions(with))
				return nil
			}
		}
		release := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { _ = r.withLoad(commit("first", release)) })
		synctest.Wait() // the first read's commit is under way, with the load
		wg.Go(func() { _ = r.withLoad(commit("second", nil)) })
		synctest.Wait()
		mu.Lock()
		if len(order) != 0 {
			t.Fatalf("committed while the load's commit was under way: %v", order)
		}
		mu.Unlock()
		close(release)
		wg.Wait()
		if got := order[0] + " " + order[1]; got != "first:redaction_load second:" {
			t.Fatalf("commits %q, want the load with the first, nothing with the second", got)
		}

		// A failed commit gives the record back.
		r.unrecorded = []AuditRecord{{Action: ActionRedactionLoad}}
		if err := r.withLoad(func([]AuditRecord) error { return errors.New("database away") }); err == nil {
			t.Fatal("the failure was lost")
		}
		order = nil
		_ = r.withLoad(commit("retry", nil))
		if len(order) != 1 || order[0] != "retry:redaction_load" {
			t.Fatalf("after a failed commit: %v", order)
		}
	})
}

func actions(recs []AuditRecord) string {
	s := ""
	for _, r := range recs {
		s += r.Action
	}
	return s
}
