package engine

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The iterations of a block with each see `item` and `index`: in a field
// (in process), in a code block in the sandbox, and in a condition;
// elsewhere the names are not defined.
func TestEachInScope(t *testing.T) {
	item, err := DecodeJSON([]byte(`{"name":"ada","n":2}`))
	if err != nil {
		t.Fatal(err)
	}
	each := &Each{Item: item, Index: 3}

	t.Run("field", func(t *testing.T) {
		p, err := testEngine.Compile(Field, "({name: item.name, twice: item.n * 2, index})")
		if err != nil {
			t.Fatal(err)
		}
		if iso, why := p.Isolated(); iso {
			t.Errorf("needs the sandbox: %s", why)
		}
		env, _, _ := newTestEnv()
		env.Each = each
		out, err := p.Run(context.Background(), env)
		want := map[string]any{"name": "ada", "twice": int64(4), "index": int64(3)}
		if err != nil || !reflect.DeepEqual(Plain(out), want) {
			t.Fatalf("got %#v %v", Plain(out), err)
		}
		env.Each = nil
		if _, err := p.Run(context.Background(), env); err == nil || !strings.Contains(err.Error(), "item is not defined") {
			t.Fatalf("outside each: %v", err)
		}
	})

	t.Run("sandbox", func(t *testing.T) {
		p, err := testEngine.Compile(Code, "return {name: item.name, index, keys: Object.keys(item)}", WithSandbox(testSandbox(t)))
		if err != nil {
			t.Fatal(err)
		}
		env, _, _ := newTestEnv()
		env.Each = each
		out, err := p.Run(context.Background(), env)
		want := map[string]any{"name": "ada", "index": int64(3), "keys": []any{"name", "n"}}
		if err != nil || !reflect.DeepEqual(Plain(out), want) {
			t.Fatalf("got %#v %v", Plain(out), err)
		}
	})

	t.Run("condition", func(t *testing.T) {
		c, err := CompileCondition(`item.name == "ada" && index == 3`, InEach())
		if err != nil {
			t.Fatal(err)
		}
		env, _, _ := newTestEnv()
		env.Each = each
		if ok, err := c.Eval(context.Background(), env); err != nil || !ok {
			t.Fatalf("got %v %v", ok, err)
		}
		_, err = CompileCondition(`index > 0`)
		var ee *Error
		if !errors.As(err, &ee) || !strings.Contains(ee.Message, "each") {
			t.Fatalf("outside each: %v", err)
		}
	})
}

// References says whether a program reads item or index without binding
// the name itself, for the check at save.
func TestReferencesEach(t *testing.T) {
	for src, want := range map[string]bool{
		"item.name":                               true,
		"`${index}: ${input.x}`":                  true,
		"input.list.map(item => item.x)":          false,
		"input.list.map((x, index) => x + index)": false,
		"input.list.map(({item}) => item)":        false,
		"input.list.map(([item]) => item)":        false,
		"input.item + steps.index":                false,
		"({item: 1}).item":                        false,
	} {
		p, err := testEngine.Compile(Field, src)
		if err != nil {
			t.Fatal(src, err)
		}
		if got := p.References().Each; got != want {
			t.Errorf("%s: Each %v, want %v", src, got, want)
		}
	}
	for src, want := range map[string]bool{
		"return item":                                true,
		"const item = 1; return item":                false,
		"for (const item of input.l) {}; return 1":   false,
		"try { x() } catch (index) { return index }": false,
		"function item() {}; return item()":          false,
	} {
		p, err := testEngine.Compile(Code, src, WithInProcess())
		if err != nil {
			t.Fatal(src, err)
		}
		if got := p.References().Each; got != want {
			t.Errorf("%s: Each %v, want %v", src, got, want)
		}
	}
}
