package executor

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/engine"
)

// TestIssue16CodeDeadlineDocumented (issue 16, item 19): a code block in
// a flow runs until its block's timeout (attempt compiles it with
// engine.WithTimeout(timeout), default Config.DefaultBlockTimeout), not
// until engine.DefaultCodeTimeout, which applies only to Go callers that
// pass no timeout. docs/engine.md's limits table said 10 s; it must say
// what runs.
func TestIssue16CodeDeadlineDocumented(t *testing.T) {
	var c Config
	c.defaults()
	doc, err := os.ReadFile("../../docs/engine.md")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for line := range strings.SplitSeq(string(doc), "\n") {
		if strings.HasPrefix(line, "| deadline |") {
			row = line
		}
	}
	seconds := func(d interface{ Seconds() float64 }) string { return fmt.Sprintf("%g s", d.Seconds()) }
	for _, want := range []string{
		seconds(engine.DefaultFieldTimeout) + " for a field",
		"block's `timeout` (" + seconds(c.DefaultBlockTimeout) + " unless the block sets one)",
		seconds(engine.DefaultCodeTimeout) + " for a code block compiled from Go without `WithTimeout`",
	} {
		if !strings.Contains(row, want) {
			t.Errorf("docs/engine.md deadline row %q does not say %q", row, want)
		}
	}
}
