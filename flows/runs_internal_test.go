package flows

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// insertIfCurrent writes every column of runs: a column added to Run but
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
		t.Errorf("insertIfCurrent's statement has %d values for %d columns", n, len(want))
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

// A deletion that cannot lock runs within its timeout (a long write
// holds them) deletes nothing and says to try again (503), rather than
// wait for as long as the write takes. PostgreSQL only: SQLite's
// deletions wait for the write lock as every write does (busy_timeout).
func TestDeleteLockTimesOut(t *testing.T) {
	db := storetest.Open(t, storetest.PostgresConfig(t), nil)
	if err := db.Exec("CREATE TABLE runs (id text PRIMARY KEY)").Error; err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { deleteLockTimeout = d }(deleteLockTimeout)
	deleteLockTimeout = 50 * time.Millisecond
	hold := db.Begin()
	defer hold.Rollback()
	if err := hold.Exec("LOCK TABLE runs IN EXCLUSIVE MODE").Error; err != nil {
		t.Fatal(err)
	}
	s := &Service{db: db}
	err := db.Transaction(func(tx *gorm.DB) error { return s.lockRuns(tx) })
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "runs were being written for more than 50ms; nothing was deleted, try again") {
		t.Fatalf("lockRuns while another transaction holds runs: %v", err)
	}
}
