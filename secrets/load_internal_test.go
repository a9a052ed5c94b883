package secrets

import (
	"errors"
	"fmt"
	"slices"
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
		commit := func(name string, release <-chan struct{}) func([]AuditRecord, *leadRows) error {
			return func(with []AuditRecord, _ *leadRows) error {
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
		if err := r.withLoad(func([]AuditRecord, *leadRows) error { return errors.New("database away") }); err == nil {
			t.Fatal("the failure was lost")
		}
		order = nil
		_ = r.withLoad(commit("retry", nil))
		if len(order) != 1 || order[0] != "retry:redaction_load" {
			t.Fatalf("after a failed commit: %v", order)
		}
	})
}

// A caller's rows (Lead: a run's own insert) go with the next commit of
// audit records, even one with no record of its own to carry (Flush), and
// once: a commit that failed reports its error and does not hand them to
// the next.
func TestLeadGoesWithTheNextCommitOnce(t *testing.T) {
	r := &RunResolver{loadTurn: make(chan struct{}, 1), unrecorded: []AuditRecord{{Action: ActionRedactionLoad}}}
	var got []string
	var results []error
	commit := func(fail error) func([]AuditRecord, *leadRows) error {
		return func(with []AuditRecord, lead *leadRows) error {
			var rows any
			if lead != nil {
				lead.tried, rows = true, lead.rows
			}
			got = append(got, fmt.Sprintf("%v+%s", rows, actions(with)))
			return fail
		}
	}
	done := func(err error) { results = append(results, err) }
	r.Lead("insert", done)
	away := errors.New("database away")
	if err := r.withLoad(commit(away)); err != away {
		t.Fatalf("the failure was lost: %v", err)
	}
	if err := r.withLoad(commit(nil)); err != nil {
		t.Fatal(err)
	}
	if want := []string{"insert+redaction_load", "<nil>+redaction_load"}; !slices.Equal(got, want) {
		t.Fatalf("commits carried %q, want %q (the rows once, the record again after a failure)", got, want)
	}
	if len(results) != 1 || results[0] != away {
		t.Fatalf("done was called with %v, want the failed commit's error once", results)
	}

	// A commit that fails before it writes (a read refused) leaves the
	// rows for the next.
	got, results = nil, nil
	r.Lead("insert", done)
	refused := errors.New("no such secret")
	if err := r.withLoad(func([]AuditRecord, *leadRows) error { return refused }); err != refused {
		t.Fatalf("the refusal was lost: %v", err)
	}
	if len(results) != 0 {
		t.Fatalf("done called with %v by a commit that never tried the rows", results)
	}

	// With no record to carry, a commit still takes the rows.
	got, results = nil, nil
	r.Lead("insert", done)
	if err := r.withLoad(commit(nil)); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "insert+" || len(results) != 1 || results[0] != nil {
		t.Fatalf("commits %q, results %v: want the rows alone, done(nil)", got, results)
	}
}

func actions(recs []AuditRecord) string {
	s := ""
	for _, r := range recs {
		s += r.Action
	}
	return s
}
