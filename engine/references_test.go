package engine

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestReferences(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
		src  string
		want Refs
	}{
		{"template", Field, "`Bearer ${secrets.API_TOKEN}`", Refs{Secrets: []string{"API_TOKEN"}, LongestLiteral: 7}},
		{"bracket", Field, `secrets["API-KEY"] + secrets['B']`, Refs{Secrets: []string{"API-KEY", "B"}}},
		{"header object", Field, "({\"Authorization\": `Bearer ${secrets.ANTHROPIC_API_KEY}`, \"X-Id\": input.id})",
			Refs{Secrets: []string{"ANTHROPIC_API_KEY"}, Inputs: []string{"id"}, LongestLiteral: 13}},
		{"steps", Field, "steps.call.output.body.id + steps['other'].output", Refs{Steps: []string{"call", "other"}}},
		{"dedupe and sort", Field, "[secrets.Z, secrets.A, secrets.Z, steps.b.output, steps.a.output, steps.b.x]",
			Refs{Secrets: []string{"A", "Z"}, Steps: []string{"a", "b"}}},
		{"dynamic", Field, "secrets[input.name]", Refs{Inputs: []string{"name"}, DynamicSecrets: true}},
		{"methods are not secrets", Field, "secrets.mask(input.token)", Refs{Inputs: []string{"token"}}},
		{"nested in calls", Field, "encodeURIComponent(secrets.TOKEN).slice(0, 4)", Refs{Secrets: []string{"TOKEN"}}},
		{"optional chain", Field, "input?.user?.name ?? steps?.call?.output", Refs{Inputs: []string{"user"}, Steps: []string{"call"}}},
		{"code block", Code, `
const token = secrets.SLACK_BOT_TOKEN;
const signing = await secrets.get("SLACK_SIGNING_SECRET", {project: "billing"});
for (const item of input.items) {
  console.log(item, steps.fetch.output.count);
}
function f() { return secrets["INNER"]; }
return f();`, Refs{Secrets: []string{"INNER", "SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"},
			Steps: []string{"fetch"}, Inputs: []string{"items"}, LongestLiteral: 7}}, // "billing"; names do not count
		{"secrets.get dynamic", Code, "return await secrets.get(input.name)", Refs{Inputs: []string{"name"}, DynamicSecrets: true}},
		{"none", Field, "'plain'", Refs{LongestLiteral: 5}},
		{"literal beside a secret", Field, "secrets.K || 'xoxb-1234-5678'", Refs{Secrets: []string{"K"}, LongestLiteral: 14}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := testEngine.Compile(tt.kind, tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.References(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", p.References(), tt.want)
			}
		})
	}
}

func TestReferencesSyntaxError(t *testing.T) {
	_, err := testEngine.Compile(Field, "secrets.")
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrSyntax) || e.Line != 1 {
		t.Fatalf("err %v: want *Error with ErrSyntax at line 1", err)
	}
}

func ExampleProgram_References() {
	p, err := New(Config{}).Compile(Field, "({\"Authorization\": `Bearer ${secrets.API_TOKEN}`, \"X-Run\": steps.call.output.id})")
	if err != nil {
		panic(err)
	}
	refs := p.References()
	fmt.Println(refs.Secrets, refs.Steps)
	// Output: [API_TOKEN] [call]
}
