package flows

import (
	"slices"
	"strings"
	"sync"
	"testing"

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
