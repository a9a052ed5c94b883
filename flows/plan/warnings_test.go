package plan_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/plan"
)

// TestIssue16ChainedComparisonWarning (issue 16, item 18): a chained
// comparison without parentheses, which goja reads right to left, is a
// warning of the plan (flows.Service.Save returns it), by block and
// field, in fields and in code blocks.
func TestIssue16ChainedComparisonWarning(t *testing.T) {
	var d model.Definition
	err := json.Unmarshal([]byte(`{"name":"f","trigger":{"type":"manual"},"blocks":[
		{"id":"a","type":"log","config":{"message":"String(1 < input.n < 10)"}},
		{"id":"b","type":"code","config":{"code":"return 1 < input.n && input.n < 10"}},
		{"id":"c","type":"code","config":{"code":"const x = 1\nreturn x >= input.n > 0"}}]}`), &d)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Compile(d, blocks.Default, engine.New(engine.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 2 || !strings.HasPrefix(p.Warnings[0], `block "a" field "message" 1:8: a chained comparison (a < b < c)`) ||
		!strings.HasPrefix(p.Warnings[1], `block "c" field "code" 2:8: a chained comparison (a >= b > c)`) {
		t.Fatalf("warnings %q", p.Warnings)
	}
}
