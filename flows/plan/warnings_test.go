package plan_test

import (
	"encoding/json"
	"errors"
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

// TestMalformedJSONNamesLineAndColumn (issue 18 item 10): a definition
// that is not JSON says where it breaks, in the document's lines.
func TestMalformedJSONNamesLineAndColumn(t *testing.T) {
	for _, c := range []struct {
		doc        string
		line, col  int
		whatInText string
	}{
		{"{\"name\": \"x\",\n \"trigger\": {\"type\": \"manual\"},\n \"blocks\": [ {\"id\": \"a\" \"type\": \"log\"} ]}", 3, 25, "after object key:value pair"},
		{"{\"name\": \"x\",\n \"blocks\": 7}", 2, 12, "blocks is a number, where an array is wanted"},
		{"{\"name\": \"x\", \"env\": " + strings.Repeat("[", 10_001), 1, 10_021, "definition nests deeper than 10000 levels"},
	} {
		_, err := plan.ParseDefinition([]byte(c.doc))
		var inv *plan.InvalidError
		if !errors.As(err, &inv) || len(inv.Problems) != 1 {
			t.Fatalf("%.80q: %v", c.doc, err)
		}
		p := inv.Problems[0]
		if p.Line != c.line || p.Column != c.col || !strings.Contains(p.Message, c.whatInText) {
			t.Errorf("%.80q: problem %+v, want line %d column %d", c.doc, p, c.line, c.col)
		}
	}
}

// A retry's backoff cannot be negative: refused at save, naming the block
// and field (it gave negative waits, retry_in_ms -1000, at run time).
func TestNegativeBackoffRefused(t *testing.T) {
	var d model.Definition
	if err := json.Unmarshal([]byte(`{"name":"f","trigger":{"type":"manual"},"blocks":[
		{"id":"a","type":"log","retry":{"attempts":3,"backoff":"-1s"},"config":{"message":"'a'"}},
		{"id":"b","type":"log","retry":{"attempts":3,"backoff":"0s"},"config":{"message":"'b'"}}]}`), &d); err != nil {
		t.Fatal(err)
	}
	_, err := plan.Compile(d, blocks.Default, engine.New(engine.Config{}))
	var inv *plan.InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != 1 || inv.Problems[0].Block != "a" || inv.Problems[0].Field != "retry.backoff" ||
		inv.Problems[0].Message != "backoff must not be negative (-1s)" {
		t.Fatalf("%v", err)
	}
}

// A value whose own decoder refuses it (a duration that does not parse)
// names its block and field, and does not call valid JSON invalid.
func TestBadDurationNamesBlockAndField(t *testing.T) {
	_, err := plan.ParseDefinition([]byte(`{"name":"x","trigger":{"type":"manual"},"blocks":[
		{"id":"a","type":"log","config":{"message":"'a'"}},
		{"id":"b","type":"log","retry":{"attempts":2,"backoff":"abc"},"config":{"message":"'b'"}}]}`))
	var inv *plan.InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != 1 {
		t.Fatalf("%v", err)
	}
	p := inv.Problems[0]
	if p.Block != "b" || p.Field != "retry" || !strings.HasPrefix(p.Message, `definition is not valid: invalid duration "abc"`) {
		t.Errorf("problem %+v", p)
	}
}

// A block timeout under a second is most likely seconds written as a bare
// number (milliseconds): a warning says so.
func TestShortTimeoutWarns(t *testing.T) {
	var d model.Definition
	if err := json.Unmarshal([]byte(`{"name":"f","trigger":{"type":"manual"},"blocks":[
		{"id":"a","type":"log","timeout":10,"config":{"message":"'a'"}},
		{"id":"b","type":"log","timeout":"2s","config":{"message":"'b'"}}]}`), &d); err != nil {
		t.Fatal(err)
	}
	p, err := plan.Compile(d, blocks.Default, engine.New(engine.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Warnings) != 1 || p.Warnings[0] != `block "a" timeout is 10ms: a number is milliseconds (write "10s" for seconds)` {
		t.Errorf("warnings %q", p.Warnings)
	}
}

// A name a field or a code block reads that nothing defines (a typo of
// steps, secrets or input, a helper never written) is a warning of the
// plan, by block, field, line and column, with the likely name; the flow
// still saves (the line may never run).
func TestUnknownNameWarning(t *testing.T) {
	var d model.Definition
	err := json.Unmarshal([]byte(`{"name":"f","trigger":{"type":"manual"},"blocks":[
		{"id":"a","type":"http","config":{"url":"'https://api.example.com'","headers":"({Authorization: `+"`Bearer ${secret.API_TOKEN}`"+`})"}},
		{"id":"b","type":"code","config":{"code":"const total = 1\nreturn total + stpes.a.output.status"}},
		{"id":"c","type":"code","config":{"code":"return steps.b.output + input.x"}}]}`), &d)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Compile(d, blocks.Default, engine.New(engine.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`block "a" field "headers" 1:28: unknown name secret: it is defined nowhere, so reading it fails when this line runs; did you mean "secrets"?`,
		`block "b" field "code" 2:16: unknown name stpes: it is defined nowhere, so reading it fails when this line runs; did you mean "steps"?`,
	}
	if strings.Join(p.Warnings, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(p.Warnings, "\n"), strings.Join(want, "\n"))
	}
}

// A save reports every problem at once: a constant over its field's
// maximum (a 2h delay) or of the wrong type (a flow block's version '3')
// beside problems of other blocks, where before those came only once
// every other problem was fixed (new-user trial).
func TestSaveReportsEveryProblemAtOnce(t *testing.T) {
	var d model.Definition
	err := json.Unmarshal([]byte(`{"name":"f","trigger":{"type":"schedule","cron":"61 * * * *"},"blocks":[
		{"id":"wait","type":"delay","config":{"duration":"'2h'"}},
		{"id":"child","type":"flow","config":{"flow":"'other'","version":"'3'"}},
		{"id":"x","type":"nosuchtype","config":{}}]}`), &d)
	if err != nil {
		t.Fatal(err)
	}
	_, err = plan.CompileForSave(d, blocks.Default, engine.New(engine.Config{}))
	var inv *plan.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("err %v", err)
	}
	var got []string
	for _, p := range inv.Problems {
		got = append(got, p.Block+"."+p.Field)
	}
	for _, want := range []string{".trigger.cron", "wait.duration", "child.version", "x.type"} {
		if !strings.Contains(strings.Join(got, " "), want) {
			t.Errorf("problems %q lack %s", got, want)
		}
	}
	// A cron with spaces is not quoted back (it is not name-like), and
	// the message has no placeholder for it either.
	if m := inv.Problems[0].Message; m != "invalid cron expression: end of range (61) above maximum (59): 61" {
		t.Errorf("cron problem: %q", m)
	}
}

// A block field of the wrong JSON type names its block, not only the
// field path (which has no index): `if: false` in the second block.
func TestTypeErrorNamesTheBlock(t *testing.T) {
	_, err := plan.ParseDefinition([]byte(`{"name":"x","trigger":{"type":"manual"},"blocks":[
		{"id":"first","type":"log","config":{"message":"'a'"}},
		{"id":"second","type":"log","if":false,"config":{"message":"'b'"}}]}`))
	var inv *plan.InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != 1 {
		t.Fatalf("%v", err)
	}
	if p := inv.Problems[0]; p.Block != "second" || p.Field != "if" || !strings.Contains(p.Message, "blocks.if is a bool, where a string is wanted") {
		t.Fatalf("problem %+v", p)
	}
}
