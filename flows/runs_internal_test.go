package flows

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/apperr"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// A run's insert writes every column of runs: a column added to Run but
// not to runColumns would be left to its default in a webhook's runs.
func TestRunColumnsAreAll(t *testing.T) {
	sch, err := schema.Parse(&Run{}, &sync.Map{}, schema.NamingStrategy{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range strings.Split(runColumns, ",") {
		got = append(got, strings.Trim(strings.TrimSpace(c), `"`))
	}
	want := slices.Clone(sch.DBNames)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("runColumns names %v\nruns has %v", got, want)
	}
	if n := strings.Count(strings.SplitN(insertSQL, "WHERE", 2)[0], "?"); n != len(want) {
		t.Errorf("the insert of a webhook's run has %d values for %d columns", n, len(want))
	}
}

// The startup line and the prune's log line say a retention as
// HUSHFLOW_RUN_RETENTION takes it.
func TestRetentionString(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "off", 720 * time.Hour: "30d", 36 * time.Hour: "36h",
		time.Hour: "1h", 90 * time.Minute: "1h30m0s"} {
		if got := retentionString(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

// A deletion that cannot lock runs (a long write holds them) waits one
// attempt (deleteLockAttempt) at a time, deleteLockPause apart, so that
// the flows' new runs are not held behind it for longer, and after
// deleteLockWait deletes nothing and says to try again (503). PostgreSQL only: SQLite's deletions wait
// for the write lock as every write does (busy_timeout).
func TestDeleteLockTimesOut(t *testing.T) {
	db := storetest.Open(t, storetest.PostgresConfig(t), nil)
	if err := db.Exec("CREATE TABLE runs (id text PRIMARY KEY)").Error; err != nil {
		t.Fatal(err)
	}
	defer func(a, p, w time.Duration) { deleteLockAttempt, deleteLockPause, deleteLockWait = a, p, w }(deleteLockAttempt, deleteLockPause, deleteLockWait)
	deleteLockAttempt, deleteLockPause, deleteLockWait = 20*time.Millisecond, 20*time.Millisecond, 200*time.Millisecond
	hold := db.Begin()
	defer hold.Rollback()
	if err := hold.Exec("LOCK TABLE runs IN ROW EXCLUSIVE MODE").Error; err != nil {
		t.Fatal(err)
	}
	s := &Service{db: db}
	tries := 0
	err := s.deleting(context.Background(), func(tx *gorm.DB) error { tries++; return s.lockRuns(tx) })
	e, ok := apperr.As(err)
	if !ok || e.Kind != apperr.Unavailable || !errors.Is(err, errRunsBusy) ||
		e.Message != "runs were being stored for more than 200ms, so their count could not be taken: nothing was deleted; try again" {
		t.Fatalf("a deletion while another transaction writes runs: %v", err)
	}
	if tries < 2 {
		t.Errorf("%d tries, want several", tries)
	}
}
