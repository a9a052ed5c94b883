package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/engine/jsvm"
)

// BenchmarkSandboxLargeSteps is a code block given a 60 KB response of
// an earlier block (1,000 items) that reads its length.
func BenchmarkSandboxLargeSteps(b *testing.B) {
	var items []string
	for i := range 1000 {
		items = append(items, fmt.Sprintf(`{"id":%d,"name":"item number %d","tags":["a","b"],"ok":true}`, i, i))
	}
	g := globals
	g.Steps = json.RawMessage(`{"call":{"output":{"status":200,"body":{"items":[` + strings.Join(items, ",") + `]}}}}`)
	p := testPool(b)
	for b.Loop() {
		if v, err := p.Run(context.Background(), jsvm.Code, "return steps.call.output.body.items.length", g, newHost(), jsvm.Limits{}); err != nil || v != int64(1000) {
			b.Fatal(v, err)
		}
	}
}
