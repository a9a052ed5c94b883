package flows

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
