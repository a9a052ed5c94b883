// Package queuetest is the contract every queue.Driver must keep, as a
// suite of tests to run against a real database of the driver's dialect
// (river's riverdrivertest is the model). queue's own tests run it on
// SQLite and on PostgreSQL.
package queuetest

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/queue"
	"github.com/hushflow/hushflow/store"
	"gorm.io/gorm"
)

// Open returns a migrated, empty database and its driver.
type Open func(t *testing.T) (*store.DB, queue.Driver)

// Run runs the contract on the databases open gives.
func Run(t *testing.T, open Open) {
	t.Run("ClaimTakesDueRunsOnce", func(t *testing.T) { claimTakesDueRunsOnce(t, open) })
	t.Run("ConcurrentClaimsNeverShare", func(t *testing.T) { concurrentClaimsNeverShare(t, open) })
	t.Run("WritesApplyOnlyToTheirClaim", func(t *testing.T) { writesApplyOnlyToTheirClaim(t, open) })
	t.Run("TransitWaitsReleasesAndHonoursCancel", func(t *testing.T) { transitWaitsReleasesAndHonoursCancel(t, open) })
	t.Run("RescueAndLeases", func(t *testing.T) { rescueAndLeases(t, open) })
	t.Run("LeaseExtensionWaitsForNoRun", func(t *testing.T) { leaseExtensionWaitsForNoRun(t, open) })
	t.Run("RescueWaitsForNoRun", func(t *testing.T) { rescueWaitsForNoRun(t, open) })
	t.Run("Cancel", func(t *testing.T) { cancel(t, open) })
	t.Run("StatsAndLastSeq", func(t *testing.T) { statsAndLastSeq(t, open) })
	t.Run("ProjectsTakeTurns", func(t *testing.T) { projectsTakeTurns(t, open) })
	t.Run("ChildEndingWakesItsParentBeingSuspended", func(t *testing.T) { childEndingWakesItsParentBeingSuspended(t, open) })
	t.Run("EventsGoWithTheirWrite", func(t *testing.T) { eventsGoWithTheirWrite(t, open) })
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// insert adds a run queued at queued (and available then).
func insert(t *testing.T, db *store.DB, id string, queued time.Time) {
	t.Helper()
	insertIn(t, db, "p", id, queued)
}

// insertIn adds a run of project queued at queued.
func insertIn(t *testing.T, db *store.DB, project, id string, queued time.Time) {
	t.Helper()
	r := model.Run{ID: id, ProjectID: project, Project: project, FlowID: "f", Flow: "f", FlowVersion: 1, Environment: "development",
		Trigger: "manual", Status: model.StatusQueued, Input: `{"token":"x"}`, QueuedAt: queued, AvailableAt: queued}
	if err := db.Create(&r).Error; err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, db *store.DB, id string) model.Run {
	t.Helper()
	var r model.Run
	if err := db.Where("id = ?", id).First(&r).Error; err != nil {
		t.Fatal(err)
	}
	return r
}

// tx runs f in a transaction, as the Batcher runs the merged writes.
func tx[T any](t *testing.T, db *store.DB, f func(tx *gorm.DB) (T, error)) T {
	t.Helper()
	var out T
	err := db.Transaction(func(g *gorm.DB) error {
		var err error
		out, err = f(g)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ids(rs []model.Run) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func claimTakesDueRunsOnce(t *testing.T, open Open) {
	db, d := open(t)
	insert(t, db, "b", t0.Add(2*time.Second))
	insert(t, db, "a", t0.Add(time.Second))
	insert(t, db, "later", t0.Add(time.Hour)) // not due yet
	claimed, err := d.Claim(db.DB, "w1", 10, t0.Add(time.Minute), t0.Add(90*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := ids(claimed)
	sort.Strings(got)
	if fmt.Sprint(got) != "[a b]" {
		t.Fatalf("claimed %v, want a and b (later is not due)", got)
	}
	for _, r := range claimed {
		if r.Status != model.StatusRunning || r.LeaseOwner != "w1" || r.Attempt != 1 || r.StartedAt == nil ||
			r.LeaseExpiresAt == nil || !r.LeaseExpiresAt.Equal(t0.Add(90*time.Second)) {
			t.Errorf("claimed run: %+v", r)
		}
	}
	if again, _ := d.Claim(db.DB, "w2", 10, t0.Add(time.Minute), t0.Add(time.Hour)); len(again) != 0 {
		t.Errorf("claimed again: %v", ids(again))
	}
	// Oldest first, and n bounds the claim.
	insert(t, db, "c", t0.Add(3*time.Second))
	insert(t, db, "d", t0.Add(4*time.Second))
	one, _ := d.Claim(db.DB, "w1", 1, t0.Add(time.Minute), t0.Add(time.Hour))
	if fmt.Sprint(ids(one)) != "[c]" {
		t.Errorf("claim of 1: %v, want [c]", ids(one))
	}
	// At its time, the later run is due.
	due, _ := d.Claim(db.DB, "w1", 10, t0.Add(2*time.Hour), t0.Add(3*time.Hour))
	got = ids(due)
	sort.Strings(got)
	if fmt.Sprint(got) != "[d later]" {
		t.Errorf("claimed at its time: %v, want d and later", ids(due))
	}
}

func concurrentClaimsNeverShare(t *testing.T, open Open) {
	db, d := open(t)
	const n = 60
	for i := 0; i < n; i++ {
		insert(t, db, fmt.Sprintf("r%02d", i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("w%d", w)
			for {
				got, err := d.Claim(db.DB, owner, 3, t0.Add(time.Minute), t0.Add(time.Hour))
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, r := range got {
					if prev, dup := seen[r.ID]; dup {
						t.Errorf("run %s claimed by %s and %s", r.ID, prev, owner)
					}
					seen[r.ID] = owner
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d runs claimed, want %d", len(seen), n)
	}
}

// claimOne inserts and claims run id for owner (no other run may be
// queued).
func claimOne(t *testing.T, db *store.DB, d queue.Driver, id, owner string) model.Run {
	t.Helper()
	insert(t, db, id, t0)
	got, err := d.Claim(db.DB, owner, 1, t0.Add(time.Second), t0.Add(time.Minute))
	if err != nil || len(got) != 1 || got[0].ID != id {
		t.Fatalf("claim %s: %v %v", id, ids(got), err)
	}
	return got[0]
}

func writesApplyOnlyToTheirClaim(t *testing.T, open Open) {
	db, d := open(t)
	mine := claimOne(t, db, d, "mine", "w1")
	claimOne(t, db, d, "other", "w2")
	cp := func(run, block string) model.Checkpoint {
		return model.Checkpoint{RunID: run, Block: block, State: model.CheckpointDone, Output: []byte("sealed"), CreatedAt: t0}
	}
	holds := []queue.Hold{
		{RunID: "mine", Owner: "w1", Attempt: mine.Attempt, Checkpoints: []model.Checkpoint{cp("mine", "a")}},
		{RunID: "mine", Owner: "w1", Attempt: mine.Attempt + 1, Checkpoints: []model.Checkpoint{cp("mine", "stale")}}, // an older claim's worker
		{RunID: "other", Owner: "w1", Attempt: 1, Checkpoints: []model.Checkpoint{cp("other", "a")}},                  // not its owner
		{RunID: "other", Owner: "w2", Attempt: 1},                                                                     // no checkpoint: a check alone
	}
	ok := tx(t, db, func(tx *gorm.DB) ([]bool, error) { return d.Hold(tx, holds) })
	if fmt.Sprint(ok) != "[true false false true]" {
		t.Errorf("holds applied %v, want [true false false true]", ok)
	}
	cps, _ := d.Checkpoints(db.DB, "mine")
	if len(cps) != 1 || cps[0].Block != "a" || string(cps[0].Output) != "sealed" {
		t.Errorf("checkpoints of mine: %+v", cps)
	}
	if cps, _ := d.Checkpoints(db.DB, "other"); len(cps) != 0 {
		t.Errorf("a hold of the wrong owner stored checkpoints: %+v", cps)
	}
	// A checkpoint of a block is replaced by the next of the same block.
	upd := cp("mine", "a")
	upd.State, upd.Output = model.CheckpointActing, nil
	upd.Detail = "why"
	tx(t, db, func(tx *gorm.DB) ([]bool, error) {
		return d.Hold(tx, []queue.Hold{{RunID: "mine", Owner: "w1", Attempt: mine.Attempt, Checkpoints: []model.Checkpoint{upd}}})
	})
	if cps, _ := d.Checkpoints(db.DB, "mine"); len(cps) != 1 || cps[0].State != model.CheckpointActing || cps[0].Detail != "why" {
		t.Errorf("replaced checkpoint: %+v", cps)
	}
	// A hold alone (a block that ended, at a low rate) applies only to its
	// claim too: neither its checkpoints nor its events are stored for a
	// run leased to another worker.
	lone := tx(t, db, func(tx *gorm.DB) ([]bool, error) {
		return d.Hold(tx, []queue.Hold{{RunID: "other", Owner: "w1", Attempt: 1, Checkpoints: []model.Checkpoint{cp("other", "lone")},
			Events: []model.Event{{RunID: "other", Seq: 50, At: t0, Type: "stray"}}}})
	})
	if fmt.Sprint(lone) != "[false]" {
		t.Errorf("a lone hold of the wrong owner applied: %v", lone)
	}
	if cps, _ := d.Checkpoints(db.DB, "other"); len(cps) != 0 {
		t.Errorf("a lone hold of the wrong owner stored checkpoints: %+v", cps)
	}
	var strays int64
	db.Raw(`SELECT COUNT(*) FROM events WHERE run_id = 'other' AND seq = 50`).Scan(&strays)
	if strays != 0 {
		t.Errorf("a lone hold of the wrong owner stored its events")
	}
	// Outcomes: only of runs still leased to the claim; their checkpoints
	// go, those of runs whose outcome did not apply stay.
	tx(t, db, func(tx *gorm.DB) ([]bool, error) {
		return d.Hold(tx, []queue.Hold{{RunID: "other", Owner: "w2", Attempt: 1, Checkpoints: []model.Checkpoint{cp("other", "b")}}})
	})
	insert(t, db, "done", t0)
	db.Model(&model.Run{}).Where("id = ?", "done").Updates(map[string]any{"status": model.StatusFailed, "error": "earlier"})
	fin := tx(t, db, func(tx *gorm.DB) ([]bool, error) {
		return d.Finish(tx, []queue.Outcome{
			{RunID: "mine", Owner: "w1", Attempt: mine.Attempt, Status: model.StatusSucceeded, Output: `{"ok":true}`, Input: `{"token":"[REDACTED]"}`,
				InputSealed: []byte("sealed\x00input"), Finished: t0.Add(time.Minute)},
			{RunID: "done", Owner: "w1", Attempt: 0, Status: model.StatusSucceeded},
			{RunID: "other", Owner: "w1", Attempt: 1, Status: model.StatusSucceeded},
		})
	})
	if fmt.Sprint(fin) != "[true false false]" {
		t.Errorf("outcomes applied %v", fin)
	}
	r := get(t, db, "mine")
	if r.Status != model.StatusSucceeded || r.Output != `{"ok":true}` || r.Input != `{"token":"[REDACTED]"}` ||
		string(r.InputSealed) != "sealed\x00input" ||
		r.FinishedAt == nil || !r.FinishedAt.Equal(t0.Add(time.Minute)) || r.LeaseExpiresAt != nil {
		t.Errorf("finished run: %+v", r)
	}
	if cps, _ := d.Checkpoints(db.DB, "mine"); len(cps) != 0 {
		t.Errorf("checkpoints left after the outcome: %+v", cps)
	}
	if cps, _ := d.Checkpoints(db.DB, "other"); len(cps) != 1 || cps[0].Block != "b" {
		t.Errorf("checkpoints of a run whose outcome did not apply: %+v", cps)
	}
	if r := get(t, db, "done"); r.Status != model.StatusFailed || r.Error != "earlier" {
		t.Errorf("an ended run changed: %+v", r)
	}
	if r := get(t, db, "other"); r.Status != model.StatusRunning || r.Input != `{"token":"x"}` {
		t.Errorf("another worker's run changed: %+v", r)
	}
}

func transitWaitsReleasesAndHonoursCancel(t *testing.T, open Open) {
	db, d := open(t)
	a := claimOne(t, db, d, "sleeper", "w1")
	b := claimOne(t, db, d, "released", "w1")
	c := claimOne(t, db, d, "canceled", "w1")
	db.Model(&model.Run{}).Where("id = ?", "canceled").Update("cancel_req", true)
	until := t0.Add(time.Hour)
	sleep := model.Checkpoint{RunID: "sleeper", Block: "nap", State: model.CheckpointSleeping, Detail: "{}", CreatedAt: t0}
	ok := tx(t, db, func(tx *gorm.DB) ([]bool, error) {
		return d.Transit(tx, []queue.Transition{
			{Hold: queue.Hold{RunID: "sleeper", Owner: "w1", Attempt: a.Attempt, Checkpoints: []model.Checkpoint{sleep}}, Status: model.StatusWaiting, AvailableAt: until},
			{Hold: queue.Hold{RunID: "released", Owner: "w1", Attempt: b.Attempt}, Status: model.StatusQueued, Reason: "worker w1 shut down", Resumed: true, Planned: true},
			{Hold: queue.Hold{RunID: "canceled", Owner: "w1", Attempt: c.Attempt}, Status: model.StatusWaiting, AvailableAt: until},
			{Hold: queue.Hold{RunID: "released", Owner: "w2", Attempt: b.Attempt}, Status: model.StatusQueued},
		})
	})
	if fmt.Sprint(ok) != "[true true true false]" {
		t.Errorf("transitions applied %v", ok)
	}
	if r := get(t, db, "sleeper"); r.Status != model.StatusWaiting || !r.AvailableAt.Equal(until) || r.LeaseOwner != "" || r.Resumes != 0 {
		t.Errorf("sleeper: %+v", r)
	}
	if cps, _ := d.Checkpoints(db.DB, "sleeper"); len(cps) != 1 || cps[0].State != model.CheckpointSleeping {
		t.Errorf("sleeper's checkpoints: %+v", cps)
	}
	if r := get(t, db, "released"); r.Status != model.StatusQueued || !r.AvailableAt.Equal(r.QueuedAt) || r.Resumes != 1 || r.Drains != 1 ||
		r.ResumeReason != "worker w1 shut down" || r.LeaseOwner != "" {
		t.Errorf("released: %+v", r)
	}
	// Cancel asked while it ran: queued at once, to be canceled when claimed.
	if r := get(t, db, "canceled"); r.Status != model.StatusQueued || !r.AvailableAt.Equal(r.QueuedAt) {
		t.Errorf("waiting with a cancel asked: %+v", r)
	}
	// The sleeper is claimable at its time only.
	if got, _ := d.Claim(db.DB, "w3", 10, t0.Add(time.Minute), t0.Add(2*time.Minute)); len(got) != 2 {
		t.Errorf("claimed before the wait ended: %v, want released and canceled", ids(got))
	}
	if got, _ := d.Claim(db.DB, "w3", 10, until, until.Add(time.Minute)); len(got) != 1 || got[0].ID != "sleeper" || got[0].Attempt != 2 {
		t.Errorf("claimed when the wait ended: %+v", got)
	}
}

func rescueAndLeases(t *testing.T, open Open) {
	db, d := open(t)
	claimOne(t, db, d, "dead", "w1")  // lease until t0+1m
	claimOne(t, db, d, "alive", "w2") // the same, but renewed
	held, renewed, err := d.ExtendLeases(db.DB, "w2", []string{"alive", "dead"}, t0.Add(time.Hour))
	if err != nil || fmt.Sprint(held) != "[alive]" || !renewed {
		t.Fatalf("extend: %v %v %v (w2 holds alive only)", held, renewed, err)
	}
	rescued, err := d.Rescue(db.DB, t0.Add(2*time.Minute))
	if err != nil || fmt.Sprint(rescued) != "[dead]" {
		t.Fatalf("rescued %v %v, want [dead]", rescued, err)
	}
	r := get(t, db, "dead")
	if r.Status != model.StatusQueued || r.Resumes != 1 || r.Drains != 0 || r.LeaseOwner != "" || r.LeaseExpiresAt != nil ||
		r.ResumeReason != "the lease of worker w1 expired (it stopped, was killed or lost the database)" {
		t.Errorf("rescued run: %+v", r)
	}
	// The dead worker's writes no longer apply; the next claim's do.
	ok := tx(t, db, func(tx *gorm.DB) ([]bool, error) {
		return d.Hold(tx, []queue.Hold{{RunID: "dead", Owner: "w1", Attempt: 1}})
	})
	if ok[0] {
		t.Error("a write of the worker that lost the run applied")
	}
	again, _ := d.Claim(db.DB, "w3", 1, t0.Add(2*time.Minute), t0.Add(3*time.Minute))
	if len(again) != 1 || again[0].Attempt != 2 || again[0].Resumes != 1 {
		t.Fatalf("claim of the rescued run: %+v", again)
	}
	if held, _, _ := d.ExtendLeases(db.DB, "w1", []string{"dead"}, t0.Add(time.Hour)); len(held) != 0 {
		t.Error("the dead worker extended a lease it lost")
	}
	if asked, _ := d.CancelRequested(db.DB, []string{"dead", "alive"}); len(asked) != 0 {
		t.Errorf("cancel requested: %v", asked)
	}
}

// The heartbeat's lease extension waits for no run's row. A batch
// merges the writes of several runs into one transaction: here it holds
// b's row (a checkpoint's FOR SHARE) and goes on to finish a. An
// extension that waited for b's row, having locked a's first, deadlocked
// with it: PostgreSQL aborted one of the two after a second. Now the
// extension skips b (held, left as it was, renewed false: the heartbeat
// tries again a second later) and the batch finishes a.
func leaseExtensionWaitsForNoRun(t *testing.T, open Open) {
	db, d := open(t)
	if db.Dialect != store.Postgres {
		t.Skip("SQLite has one writer at a time: no row locks to wait for")
	}
	a, b := claimTwo(t, db, d, "a", "b", "w1")

	batch := holding(t, db, d, b)
	type extension struct {
		held    []string
		renewed bool
		err     error
	}
	extended := make(chan extension, 1)
	done := make(chan error, 1)
	go func() {
		held, renewed, err := d.ExtendLeases(db.DB, "w1", []string{"a", "b"}, t0.Add(time.Hour))
		extended <- extension{held, renewed, err}
		done <- err
	}()
	waitForLockOrDone(t, db, done) // the extension before the batch goes on
	ok, err := d.Finish(batch, []queue.Outcome{{RunID: "a", Owner: "w1", Attempt: a.Attempt,
		Status: model.StatusSucceeded, Finished: t0.Add(2 * time.Second)}})
	if err != nil || !ok[0] {
		t.Fatalf("the batch's outcome of a: %v %v", ok, err)
	}
	if err := batch.Commit().Error; err != nil {
		t.Fatal(err)
	}
	e := <-extended
	slices.Sort(e.held)
	if e.err != nil || fmt.Sprint(e.held) != "[a b]" || e.renewed {
		t.Fatalf("extension: held %v, renewed %v, err %v; want [a b], false (b's row was locked), no error", e.held, e.renewed, e.err)
	}
	if r := get(t, db, "b"); r.LeaseExpiresAt == nil || !r.LeaseExpiresAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("b's lease: %v, want it left at %v", r.LeaseExpiresAt, t0.Add(time.Minute))
	}
	// The next beat extends it.
	held, renewed, err := d.ExtendLeases(db.DB, "w1", []string{"a", "b"}, t0.Add(time.Hour))
	if err != nil || fmt.Sprint(held) != "[b]" || !renewed {
		t.Fatalf("next extension: %v %v %v, want [b] renewed", held, renewed, err)
	}
	if r := get(t, db, "b"); r.LeaseExpiresAt == nil || !r.LeaseExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("b's lease: %v, want %v", r.LeaseExpiresAt, t0.Add(time.Hour))
	}
}

// The rescuer waits for no run's row either. Two runs of a worker that
// stalled past its lease (a database outage) come back to its batch
// together: it holds y's row and goes on to finish x. A rescue that
// locked x first and waited for y deadlocked with it. Now it rescues x,
// skips y (the batch is writing it), the batch's late outcome of x does
// not apply (x is another claim's now), and the next pass rescues y.
func rescueWaitsForNoRun(t *testing.T, open Open) {
	db, d := open(t)
	if db.Dialect != store.Postgres {
		t.Skip("SQLite has one writer at a time: no row locks to wait for")
	}
	x, y := claimTwo(t, db, d, "x", "y", "w1") // leases until t0+1m

	batch := holding(t, db, d, y)
	type rescued struct {
		ids []string
		err error
	}
	result := make(chan rescued, 1)
	done := make(chan error, 1)
	go func() {
		ids, err := d.Rescue(db.DB, t0.Add(2*time.Minute))
		result <- rescued{ids, err}
		done <- err
	}()
	waitForLockOrDone(t, db, done) // the rescue before the batch goes on
	ok, err := d.Finish(batch, []queue.Outcome{{RunID: "x", Owner: "w1", Attempt: x.Attempt,
		Status: model.StatusSucceeded, Finished: t0.Add(2 * time.Minute)}})
	if err != nil {
		t.Fatalf("the batch's outcome of x: %v", err)
	}
	if ok[0] {
		t.Error("the late outcome of x applied after x was rescued")
	}
	if err := batch.Commit().Error; err != nil {
		t.Fatal(err)
	}
	if r := <-result; r.err != nil || fmt.Sprint(r.ids) != "[x]" {
		t.Fatalf("rescue: %v %v; want [x] (y's row was locked), no error", r.ids, r.err)
	}
	if r := get(t, db, "y"); r.Status != model.StatusRunning || r.LeaseOwner != "w1" {
		t.Errorf("y after the first pass: %s, %q; want still running with w1", r.Status, r.LeaseOwner)
	}
	if ids, err := d.Rescue(db.DB, t0.Add(2*time.Minute)); err != nil || fmt.Sprint(ids) != "[y]" {
		t.Fatalf("next rescue: %v %v, want [y]", ids, err)
	}
}

// holding begins a transaction, as a batch of runs' writes, that holds
// run r's row (its Hold: a checkpoint's lock on it), rolled back when the
// test ends unless committed.
func holding(t *testing.T, db *store.DB, d queue.Driver, r model.Run) *gorm.DB {
	t.Helper()
	batch := db.DB.Begin()
	if batch.Error != nil {
		t.Fatal(batch.Error)
	}
	t.Cleanup(func() { batch.Rollback() })
	if ok, err := d.Hold(batch, []queue.Hold{{RunID: r.ID, Owner: r.LeaseOwner, Attempt: r.Attempt}}); err != nil || !ok[0] {
		t.Fatalf("hold %s: %v %v", r.ID, ok, err)
	}
	return batch
}

// claimTwo inserts and claims runs a and b, in that order, for owner (no
// other run may be queued), with leases until t0+1m.
func claimTwo(t *testing.T, db *store.DB, d queue.Driver, a, b, owner string) (model.Run, model.Run) {
	t.Helper()
	ra := claimOne(t, db, d, a, owner)
	insert(t, db, b, t0)
	got, err := d.Claim(db.DB, owner, 1, t0.Add(time.Second), t0.Add(time.Minute))
	if err != nil || len(got) != 1 || got[0].ID != b {
		t.Fatalf("claim %s: %v %v", b, ids(got), err)
	}
	return ra, got[0]
}

func cancel(t *testing.T, open Open) {
	db, d := open(t)
	claimOne(t, db, d, "running", "w1")
	insert(t, db, "queued", t0)
	for id, wantDone := range map[string]bool{"queued": true, "running": false} {
		done, err := d.Cancel(db.DB, id, "canceled by ana", t0)
		if err != nil || done != wantDone {
			t.Errorf("cancel %s: %v %v, want done %v", id, done, err, wantDone)
		}
	}
	if r := get(t, db, "queued"); r.Status != model.StatusCanceled || r.Error != "canceled by ana" || r.FinishedAt == nil {
		t.Errorf("canceled queued run: %+v", r)
	}
	if r := get(t, db, "running"); r.Status != model.StatusRunning || !r.CancelReq {
		t.Errorf("canceled running run: %+v", r)
	}
	if asked, _ := d.CancelRequested(db.DB, []string{"running"}); fmt.Sprint(asked) != "map[running:canceled by ana]" {
		t.Errorf("cancel requested: %v", asked)
	}
	// A second ask keeps the first one's reason.
	if done, err := d.Cancel(db.DB, "running", "canceled by bo", t0); err != nil || done {
		t.Errorf("second cancel of the running run: %v %v", done, err)
	}
	if asked, _ := d.CancelRequested(db.DB, []string{"running"}); asked["running"] != "canceled by ana" {
		t.Errorf("cancel requested after a second ask: %v", asked)
	}
	if done, err := d.Cancel(db.DB, "queued", "again", t0); err != nil || done {
		t.Errorf("cancel of an ended run: %v %v", done, err)
	}
}

func statsAndLastSeq(t *testing.T, open Open) {
	db, d := open(t)
	if n, oldest, err := d.Stats(db.DB, t0); err != nil || n != 0 || !oldest.IsZero() {
		t.Errorf("empty queue: %d %v %v", n, oldest, err)
	}
	insert(t, db, "a", t0)
	insert(t, db, "b", t0.Add(time.Second))
	insert(t, db, "later", t0.Add(time.Hour))
	n, oldest, err := d.Stats(db.DB, t0.Add(time.Minute))
	if err != nil || n != 2 || !oldest.Equal(t0) {
		t.Errorf("stats: %d %v %v, want 2 due since %v", n, oldest, err, t0)
	}
	if seq, err := d.LastSeq(db.DB, "a"); err != nil || seq != 1 {
		t.Errorf("last seq of a run without events: %d %v", seq, err)
	}
	for i := 2; i <= 4; i++ {
		db.Create(&model.Event{RunID: "a", Seq: i, At: t0, Type: "log"})
	}
	if seq, err := d.LastSeq(db.DB, "a"); err != nil || seq != 4 {
		t.Errorf("last seq: %d %v", seq, err)
	}
}

// A child run ends while its parent is being suspended to wait for it:
// the child's outcome, and in its transaction the wake of its parent,
// which finds the parent still running (a no-op); then the parent's
// suspension commits and its worker asks whether the child ended
// (Ended, and Wake when it did), as executor.wakeIfEnded does. Whatever
// the order in which the two commit, the parent must be woken. On
// PostgreSQL a plain read of the child, before its transaction
// commits, saw it open: no one woke the parent, which slept until its
// wait's end (seen once in CI as a sub-flow's one-minute timeout).
func childEndingWakesItsParentBeingSuspended(t *testing.T, open Open) {
	db, d := open(t)
	parent := claimOne(t, db, d, "parent", "w1")
	child := claimOne(t, db, d, "child", "w2")
	if err := db.Model(&model.Run{}).Where("id = ?", "child").Update("parent_run_id", "parent").Error; err != nil {
		t.Fatal(err)
	}
	until, ended, woken := t0.Add(time.Hour), t0.Add(time.Minute), t0.Add(2*time.Minute)

	end := db.DB.Begin() // on SQLite this takes the write lock
	if end.Error != nil {
		t.Fatal(end.Error)
	}
	defer end.Rollback()
	ok, err := d.Finish(end, []queue.Outcome{{RunID: "child", Owner: "w2", Attempt: child.Attempt,
		Status: model.StatusSucceeded, Finished: ended, Parent: "parent"}})
	if err != nil || !ok[0] {
		t.Fatalf("the child's outcome: %v %v", ok, err)
	}

	done := make(chan error, 1)
	go func() {
		err := db.Transaction(func(tx *gorm.DB) error {
			_, err := d.Transit(tx, []queue.Transition{{Hold: queue.Hold{RunID: "parent", Owner: "w1", Attempt: parent.Attempt},
				Status: model.StatusWaiting, AvailableAt: until}})
			return err
		})
		if err == nil {
			var over bool
			if over, err = d.Ended(db.DB, "child"); err == nil && over {
				err = queue.Wake(db.DB, "parent", woken)
			}
		}
		done <- err
	}()
	if db.Dialect == store.Postgres {
		// The parent's suspension commits at once; its look at the child
		// must wait for the child's transaction, not read around it.
		waitForLockOrDone(t, db, done)
	}
	if err := end.Commit().Error; err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := get(t, db, "parent"); r.Status != model.StatusWaiting || !r.AvailableAt.Equal(woken) {
		t.Errorf("parent: %s, available at %v; want waiting, woken at %v (not left until %v)", r.Status, r.AvailableAt, woken, until)
	}
}

// waitForLockOrDone returns once a statement of db's database waits for
// a lock, or done has a value (which it puts back).
func waitForLockOrDone(t *testing.T, db *store.DB, done chan error) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		select {
		case err := <-done:
			done <- err
			return
		case <-time.After(5 * time.Millisecond):
		}
		var waiting int64
		if err := db.Raw(`SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting).Error; err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			return
		}
	}
	t.Fatal("no statement waited for a lock, nor ended, within a minute")
}

// Projects take turns at the claim: a burst of one project's runs does
// not hold back another project's run queued after it, whether the claim
// has several free slots or one; within a project the longest due run
// goes first. Before, the claim took the longest due runs of all: the
// quiet project's run waited for the busy project's 200.
func projectsTakeTurns(t *testing.T, open Open) {
	db, d := open(t)
	for i := range 200 {
		insertIn(t, db, "busy", fmt.Sprintf("busy-%03d", i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	insertIn(t, db, "quiet", "quiet-1", t0.Add(time.Second))
	insertIn(t, db, "quiet", "quiet-2", t0.Add(2*time.Second))
	at := t0.Add(time.Minute)
	claim := func(n int) []string {
		t.Helper()
		got, err := d.Claim(db.DB, "w1", n, at, at.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		out := ids(got)
		sort.Strings(out)
		return out
	}
	if got := claim(2); fmt.Sprint(got) != "[busy-000 quiet-1]" {
		t.Fatalf("a claim of two: %v, want the first of each project", got)
	}
	// One slot at a time, each to one of the two projects at random: the
	// quiet one's second run comes within 30 claims, all but surely
	// (one chance in a billion that it does not).
	var busy []string
	for i := 0; ; i++ {
		if i == 30 {
			t.Fatalf("quiet-2 not claimed in 30 claims of one slot, among %d runs of the busy project", len(busy))
		}
		got := claim(1)
		if len(got) != 1 {
			t.Fatalf("a claim of one: %v", got)
		}
		if got[0] == "quiet-2" {
			break
		}
		busy = append(busy, got[0])
	}
	for i, id := range busy {
		if want := fmt.Sprintf("busy-%03d", i+1); id != want {
			t.Fatalf("the busy project's runs out of order: %v", busy)
		}
	}
}

// eventsGoWithTheirWrite: the events of a hold, a transition or an
// outcome are stored with it when it applies, never when it does not,
// however many they are; a driver that says a write is one statement
// (Single) can run it outside a transaction.
func eventsGoWithTheirWrite(t *testing.T, open Open) {
	db, d := open(t)
	a := claimOne(t, db, d, "a", "w1")
	b := claimOne(t, db, d, "b", "w2")
	c := claimOne(t, db, d, "c", "w1")
	seq := map[string]int{}
	evs := func(run string, n int) []model.Event {
		out := make([]model.Event, n)
		for i := range out {
			seq[run]++
			out[i] = model.Event{RunID: run, Seq: seq[run] + 1, At: t0.Add(time.Duration(seq[run]) * time.Millisecond),
				Type: "block_finished", Block: "x", Data: fmt.Sprintf(`{"i":%d}`, seq[run])}
		}
		return out
	}
	count := func(run string) int {
		t.Helper()
		var got []model.Event
		if err := db.Where("run_id = ?", run).Order("seq").Find(&got).Error; err != nil {
			t.Fatal(err)
		}
		for i, e := range got {
			if e.Seq != i+2 || !e.At.Equal(t0.Add(time.Duration(i+1)*time.Millisecond)) || e.Data != fmt.Sprintf(`{"i":%d}`, i+1) || e.Block != "x" {
				t.Fatalf("event %d of %s: %+v", i, run, e)
			}
		}
		return len(got)
	}
	// Holds: few events (one statement where the driver can), then more
	// than one statement takes.
	for _, n := range []int{2, 1500} {
		holds := []queue.Hold{
			{RunID: "a", Owner: "w1", Attempt: a.Attempt, Events: evs("a", n)},
			{RunID: "b", Owner: "w1", Attempt: b.Attempt, Events: []model.Event{{RunID: "b", Seq: 900, At: t0, Type: "stray"}}}, // not its owner
		}
		items := []any{holds[0], holds[1]}
		run := func(g *gorm.DB) ([]bool, error) { return d.Hold(g, holds) }
		var ok []bool
		if d.Single(items) {
			var err error
			if ok, err = run(db.DB); err != nil {
				t.Fatal(err)
			}
		} else {
			ok = tx(t, db, run)
		}
		if fmt.Sprint(ok) != "[true false]" {
			t.Fatalf("holds with %d events applied %v", n, ok)
		}
	}
	if n := count("a"); n != 1502 {
		t.Errorf("a has %d events, want 1502", n)
	}
	if n := count("b"); n != 0 {
		t.Errorf("a hold that did not apply stored %d events", n)
	}
	// A transition.
	ok := tx(t, db, func(g *gorm.DB) ([]bool, error) {
		return d.Transit(g, []queue.Transition{
			{Hold: queue.Hold{RunID: "b", Owner: "w2", Attempt: b.Attempt, Events: evs("b", 3)}, Status: model.StatusWaiting,
				AvailableAt: t0.Add(time.Hour)},
			{Hold: queue.Hold{RunID: "c", Owner: "w2", Attempt: c.Attempt, Events: []model.Event{{RunID: "c", Seq: 900, At: t0, Type: "stray"}}},
				Status: model.StatusQueued},
		})
	})
	if fmt.Sprint(ok) != "[true false]" || count("b") != 3 || count("c") != 0 {
		t.Errorf("transitions applied %v; b has %d events (want 3), c %d (want 0)", ok, count("b"), count("c"))
	}
	// Outcomes: a with more events than one statement takes, c with few,
	// b (waiting) not.
	outs := []queue.Outcome{
		{RunID: "a", Owner: "w1", Attempt: a.Attempt, Status: model.StatusSucceeded, Finished: t0, Events: evs("a", 1200)},
		{RunID: "c", Owner: "w1", Attempt: c.Attempt, Status: model.StatusSucceeded, Finished: t0, Events: evs("c", 2)},
		{RunID: "b", Owner: "w2", Attempt: b.Attempt, Status: model.StatusSucceeded, Finished: t0,
			Events: []model.Event{{RunID: "b", Seq: 900, At: t0, Type: "stray"}}},
	}
	fin := tx(t, db, func(g *gorm.DB) ([]bool, error) { return d.Finish(g, outs) })
	if fmt.Sprint(fin) != "[true true false]" || count("a") != 2702 || count("c") != 2 || count("b") != 3 {
		t.Errorf("outcomes applied %v; events of a %d (want 2702), c %d (want 2), b %d (want 3)", fin, count("a"), count("c"), count("b"))
	}
	// A few outcomes with their events, outside a transaction where the
	// driver says they are one statement.
	d2 := claimOne(t, db, d, "d", "w1")
	one := []queue.Outcome{{RunID: "d", Owner: "w1", Attempt: d2.Attempt, Status: model.StatusFailed, Error: "x", Finished: t0, Events: evs("d", 4)}}
	if d.Single([]any{one[0]}) {
		if ok, err := d.Finish(db.DB, one); err != nil || fmt.Sprint(ok) != "[true]" {
			t.Fatalf("single outcome: %v %v", ok, err)
		}
	} else {
		tx(t, db, func(g *gorm.DB) ([]bool, error) { return d.Finish(g, one) })
	}
	if r := get(t, db, "d"); r.Status != model.StatusFailed || count("d") != 4 {
		t.Errorf("d: %s with %d events", r.Status, count("d"))
	}
}
