package queue_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/flows"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/queue"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
)

// BenchmarkRunCycle is the queue's share of one run on each database: the
// run row inserted, claimed, one checkpoint held with two events, and the
// outcome recorded with the last, each write alone as the executor's
// Batcher makes them at a low rate (one statement on PostgreSQL, a
// transaction on SQLite). It measures the database and its driver without the HTTP
// server, the engine and the blocks (issue 17 compares SQLite drivers
// with it).
func BenchmarkRunCycle(b *testing.B) {
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			db := storetest.Open(b, be.Config(b), flows.Migrations())
			d := queue.New(db)
			now := time.Now().UTC()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				runCycle(b, db, d, i, now)
			}
		})
	}
}

// runCycle is one run's writes to the queue, numbered i: its row
// inserted, claimed, one checkpoint held with two events, and the outcome
// recorded with the last.
func runCycle(tb testing.TB, db *store.DB, d queue.Driver, i int, now time.Time) {
	tb.Helper()
	id := fmt.Sprintf("run-%08d", i)
	r := model.Run{ID: id, ProjectID: "p", Project: "p", FlowID: "f", Flow: "f", FlowVersion: 1,
		Environment: "development", Trigger: "webhook", Status: model.StatusQueued, Input: `{"n":1}`,
		QueuedAt: now, AvailableAt: now}
	if err := db.Create(&r).Error; err != nil {
		tb.Fatal(err)
	}
	got, err := d.Claim(db.DB, "w1", 1, now.Add(time.Second), now.Add(time.Minute))
	if err != nil || len(got) != 1 {
		tb.Fatalf("claim: %d %v", len(got), err)
	}
	h := queue.Hold{RunID: id, Owner: "w1", Attempt: got[0].Attempt, Checkpoints: []model.Checkpoint{
		{RunID: id, Block: "call", State: "done", Output: []byte(`{"status":200}`), CreatedAt: now}},
		Events: []model.Event{
			{RunID: id, Seq: 2, At: now, Type: "block_started", Block: "call"},
			{RunID: id, Seq: 3, At: now, Type: "block_finished", Block: "call", Data: `{"status":200}`},
		}}
	if ok, err := write(db, d, []any{h}, func(tx *gorm.DB) ([]bool, error) { return d.Hold(tx, []queue.Hold{h}) }); err != nil || !ok[0] {
		tb.Fatalf("hold: %v %v", ok, err)
	}
	o := queue.Outcome{RunID: id, Owner: "w1", Attempt: got[0].Attempt,
		Status: model.StatusSucceeded, Output: `{"total":6}`, Input: `{"n":1}`, Finished: now,
		Events: []model.Event{{RunID: id, Seq: 4, At: now, Type: "run_finished", Data: `{"status":"succeeded"}`}}}
	if ok, err := write(db, d, []any{o}, func(tx *gorm.DB) ([]bool, error) { return d.Finish(tx, []queue.Outcome{o}) }); err != nil || !ok[0] {
		tb.Fatalf("finish: %v %v", ok, err)
	}
}

// TestRunCyclePages counts the pages a run's writes change on SQLite,
// each written to the write-ahead log once per commit that changes it
// (at a low rate each write is a commit of its own): the log's frames
// were a tenth of a run's CPU at 30 runs/s. The indexes on a run's lease
// and on its flow's open runs hold open runs only (migration 0019b), so
// a run's outcome takes its entries out of one page of each, where it
// moved them to another (the NULL lease, the flow's finished status):
// 27.35 pages a cycle in this test before, 25.35 after. The rescuer's
// and the concurrency limit's queries still read those indexes.
func TestRunCyclePages(t *testing.T) {
	db := storetest.Open(t, storetest.SQLiteConfig(t), flows.Migrations())
	d := queue.New(db)
	now := time.Now().UTC()
	for i := range 300 { // indexes of a few pages, as in use
		runCycle(t, db, d, i, now)
	}
	const cycles = 20
	frames := storetest.WALFrames(t, db, func() {
		for i := range cycles {
			runCycle(t, db, d, 300+i, now)
		}
	})
	per := float64(frames) / cycles
	t.Logf("%.2f pages written per run cycle (%d in %d cycles)", per, frames, cycles)
	if per > 26 {
		t.Errorf("a run cycle writes %.2f pages to the write-ahead log, want at most 26", per)
	}

	for _, c := range []struct{ query, index string }{
		{"SELECT COUNT(*) FROM runs WHERE flow_id = ? AND " + model.OpenSQL, "runs_flow_open"},
		{"SELECT id FROM runs WHERE status = ? AND lease_expires_at < ?", "runs_lease"},
	} {
		if got := storetest.SQLitePlan(t, db, c.query, "f", now); !strings.Contains(got, "INDEX "+c.index+" ") {
			t.Errorf("%s reads %q, not the index %s", c.query, got, c.index)
		}
	}
	for _, s := range model.OpenStatuses {
		if !strings.Contains(model.OpenSQL, "'"+s+"'") {
			t.Errorf("model.OpenSQL (%s) leaves out %s", model.OpenSQL, s)
		}
	}
	if n := strings.Count(model.OpenSQL, "'"); n != 2*len(model.OpenStatuses) {
		t.Errorf("model.OpenSQL (%s) names %d statuses, model.OpenStatuses %d", model.OpenSQL, n/2, len(model.OpenStatuses))
	}
}

// write runs f as the Batcher would for a write of items alone: as one
// statement where the driver says it is one, else in a transaction.
func write(db *store.DB, d queue.Driver, items []any, f func(tx *gorm.DB) ([]bool, error)) (ok []bool, err error) {
	if d.Single(items) {
		return f(db.DB)
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		ok, err = f(tx)
		return err
	})
	return ok, err
}

// BenchmarkClaimBacklog is one claim of 4 runs from a backlog of 10,000
// due runs of one project and 10 of another (one every 1,001 runs), the
// claimed runs queued again after each claim so that the backlog stays.
func BenchmarkClaimBacklog(b *testing.B) {
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			db := storetest.Open(b, be.Config(b), flows.Migrations())
			d := queue.New(db)
			now := time.Now().UTC().Add(-time.Hour)
			var rs []model.Run
			for i := range 10_010 {
				p := "busy"
				if i%1001 == 1000 {
					p = "quiet"
				}
				at := now.Add(time.Duration(i) * time.Millisecond)
				rs = append(rs, model.Run{ID: fmt.Sprintf("run-%08d", i), ProjectID: p, Project: p, FlowID: "f", Flow: "f", FlowVersion: 1,
					Environment: "development", Trigger: "webhook", Status: model.StatusQueued, Input: `{}`, QueuedAt: at, AvailableAt: at})
			}
			if err := db.CreateInBatches(rs, 500).Error; err != nil {
				b.Fatal(err)
			}
			claimFour(b, db, d, time.Now().UTC())
		})
	}
}

// BenchmarkClaimSleepers is one claim of 4 runs of the one project with
// due runs, beside 20,000 projects each with a run waiting until
// tomorrow (a durable delay): a claim must not cost what is not due.
func BenchmarkClaimSleepers(b *testing.B) {
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			db := storetest.Open(b, be.Config(b), flows.Migrations())
			d := queue.New(db)
			now := time.Now().UTC()
			var rs []model.Run
			for i := range 20_000 {
				p := fmt.Sprintf("sleepy-%05d", i)
				rs = append(rs, model.Run{ID: fmt.Sprintf("sleep-%05d", i), ProjectID: p, Project: p, FlowID: "f", Flow: "f", FlowVersion: 1,
					Environment: "development", Trigger: "manual", Status: model.StatusWaiting, Input: `{}`, QueuedAt: now, AvailableAt: now.Add(24 * time.Hour)})
			}
			for i := range 100 {
				rs = append(rs, model.Run{ID: fmt.Sprintf("due-%03d", i), ProjectID: "busy", Project: "busy", FlowID: "f", Flow: "f", FlowVersion: 1,
					Environment: "development", Trigger: "manual", Status: model.StatusQueued, Input: `{}`, QueuedAt: now, AvailableAt: now.Add(-time.Minute)})
			}
			if err := db.CreateInBatches(rs, 500).Error; err != nil {
				b.Fatal(err)
			}
			claimFour(b, db, d, now.Add(time.Second))
		})
	}
}

// claimFour claims 4 runs due at at, b.N times, and queues them again
// after each claim so that the backlog stays.
func claimFour(b *testing.B, db *store.DB, d queue.Driver, at time.Time) {
	for b.Loop() {
		got, err := d.Claim(db.DB, "w1", 4, at, at.Add(time.Minute))
		if err != nil || len(got) != 4 {
			b.Fatalf("claim: %d %v", len(got), err)
		}
		ids := make([]string, len(got))
		for i, r := range got {
			ids[i] = r.ID
		}
		if err := db.Model(&model.Run{}).Where("id IN ?", ids).Updates(map[string]any{"status": model.StatusQueued,
			"lease_owner": nil, "lease_expires_at": nil}).Error; err != nil {
			b.Fatal(err)
		}
	}
}
