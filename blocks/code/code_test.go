package code_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/blocks/blockstest"
	"github.com/hushflow/hushflow/blocks/code"
	"github.com/hushflow/hushflow/blocks/httpblock"
)

const canary = `cd_Wm3&<q>"%\Hs07`

func TestContract(t *testing.T) {
	blockstest.Run(t, code.Info())
	if f, _ := code.Info().Spec.Field("code"); !f.Raw {
		t.Error("code is not a Raw field")
	}
}

// TestCode runs an http block against a local server, then a code block
// over its output, as a flow would.
func TestCode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"items": []any{map[string]any{"id": 1}, map[string]any{"id": 2}}})
	}))
	defer srv.Close()
	sec := map[string]string{"K": canary}
	h0 := blockstest.NewHarness(t, sec, blockstest.Options{})
	out, err := h0.Run(context.Background(), httpblock.Info(), map[string]any{"url": srv.URL}, &blocks.Env{})
	if err != nil {
		t.Fatal(err)
	}
	h := blockstest.NewHarness(t, sec, blockstest.Options{Steps: map[string]any{"call": map[string]any{"output": out}}})
	src := `const items = steps.call.output.body.items;
console.log('got', items.length, 'items');
console.warn('key is ' + secrets.K);
await null;
return {ids: items.map(i => i.id), status: steps.call.output.status};`
	res, err := h.Run(context.Background(), code.Info(), map[string]any{"code": src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	if string(b) != `{"ids":[1,2],"status":200}` {
		t.Fatalf("output %s", b)
	}
	logs := h.EventsOf("log")
	if len(logs) != 2 || logs[0].Data["message"] != "got 2 items" {
		t.Fatalf("logs %v", logs)
	}
	h.AssertNoLeak()

	// Errors carry the line; the secret in an error is redacted.
	_, err = h.Run(context.Background(), code.Info(), map[string]any{"code": "throw new Error('bad ' + secrets.K)"}, nil)
	if err == nil || !strings.Contains(err.Error(), "bad") {
		t.Fatalf("%v", err)
	}
	h.AssertNoLeak(err.Error())
	if _, err := h.Run(context.Background(), code.Info(), map[string]any{}, nil); err == nil {
		t.Fatal("empty code accepted")
	}
}
