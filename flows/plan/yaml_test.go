package plan_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/plan"
)

// TestYAMLNamesLineAndColumn (issue 18 item 10): a YAML definition's
// problems say where they are in the YAML, as a malformed JSON one does:
// syntax errors their line, structural ones the line and column of the
// field, and Compile's problems, located with the Source, the line and
// column of the field or, inside an expression, of the character.
func TestYAMLNamesLineAndColumn(t *testing.T) {
	for _, c := range []struct {
		name       string
		doc        string
		line, col  int // Line, Column (parsing) or DocLine, DocColumn (Compile)
		whatInText string
	}{
		{"syntax", "name: x\ntrigger: {type: manual}\nblocks:\n  - id: a\n    type: log: x\n", 5, 0, "mapping values are not allowed"},
		{"duplicate key", "name: x\ntrigger: {type: manual}\nname: y\nblocks: []\n", 3, 0, `mapping key "name" already defined at line 1`},
		{"wrong type", "name: x\ntrigger: {type: manual}\nblocks:\n  - id: a\n    type: log\n    retry:\n      attempts: many\n", 7, 17, "blocks.retry.attempts is a string, where a whole number is wanted"},
		{"unknown field", "name: x\ntrigger: {type: manual}\nblocks:\n  - id: a\n    type: log\n    config: {message: \"'hi'\"}\n    retries: 3\n", 7, 5, `unknown field "retries"`},
		{"bad duration", "name: x\ntrigger: {type: manual}\nblocks:\n  - id: a\n    type: log\n    config: {message: \"'hi'\"}\n  - id: b\n    type: log\n    timeout: 10 s\n    config: {message: \"'hi'\"}\n", 9, 5, `invalid duration "10 s"`},
		// Compile's problems.
		{"expression on one line", "name: x\ntrigger: {type: manual}\nblocks:\n  - id: a\n    type: log\n    config:\n      message: \"'a' + (1 +\"\n", 7, 27, "SyntaxError"},
		{"expression in a literal block", "name: x\ntrigger: {type: manual}\nblocks:\n  - id: a\n    type: code\n    config:\n      code: |\n        const x = 1\n        return x + )\n", 9, 20, "SyntaxError"},
		{"expression in a literal block, end of input", "name: x\ntrigger: {type: manual}\nblocks:\n  - id: a\n    type: code\n    config:\n      code: |\n        const x = 1\n        return x +\n", 0, 0, "SyntaxError"},
		{"unknown field of a block", "name: x\ntrigger: {type: manual}\nblocks:\n  - id: a\n    type: log\n    config:\n      message: \"'hi'\"\n      mesage: \"'hi'\"\n", 8, 7, `did you mean "message"?`},
		{"missing required field", "name: x\ntrigger: {type: manual}\nblocks:\n  - id: first\n    type: log\n    config: {message: \"'x'\"}\n  - id: second\n    type: log\n", 7, 5, "required field is missing"},
		{"duplicate id", "name: x\ntrigger: {type: manual}\nblocks:\n  - id: a\n    type: log\n    config: {message: \"'x'\"}\n  - id: a\n    type: log\n    config: {message: \"'y'\"}\n", 7, 5, "duplicate block id"},
		{"on_error id taken", "name: x\ntrigger: {type: manual}\nblocks:\n  - {id: a, type: log, config: {message: \"'x'\"}}\non_error:\n  - {id: a, type: log, config: {message: \"'y'\"}}\n", 6, 6, "is already the id of a block of the flow"},
		{"trigger field", "name: x\ntrigger:\n  type: schedule\n  cron: \"61 * * * *\"\nblocks:\n  - {id: a, type: log, config: {message: \"'x'\"}}\n", 4, 3, "invalid cron"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, src, err := plan.ParseYAMLDefinition([]byte(c.doc))
			if err == nil {
				_, err = plan.Compile(d, blocks.Default, engine.New(engine.Config{}))
				src.Locate(err)
			}
			var inv *plan.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("%v", err)
			}
			var p *plan.Problem
			for i := range inv.Problems {
				if strings.Contains(inv.Problems[i].Message, c.whatInText) {
					p = &inv.Problems[i]
				}
			}
			if p == nil {
				t.Fatalf("no problem says %q: %+v", c.whatInText, inv.Problems)
			}
			line, col := p.Line, p.Column
			if p.Block != "" || p.Field != "" {
				line, col = p.DocLine, p.DocColumn
			}
			if c.name == "expression in a literal block, end of input" {
				// goja's position of the end of input: on the document's
				// line of the code's last line or the one after.
				if line != 9 && line != 10 {
					t.Errorf("problem %s (doc %d:%d), want line 9 or 10 of the document", p, p.DocLine, p.DocColumn)
				}
				return
			}
			if line != c.line || col != c.col {
				t.Errorf("problem %s (doc %d:%d, line %d column %d), want line %d column %d", p, p.DocLine, p.DocColumn, p.Line, p.Column, c.line, c.col)
			}
		})
	}
}
