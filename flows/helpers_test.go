package flows_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eventList is "type:block type:block ..." of an events response.
func eventList(resp map[string]any) string {
	var out []string
	es, _ := resp["events"].([]any)
	for _, e := range es {
		m, _ := e.(map[string]any)
		b, _ := m["block"].(string)
		out = append(out, fmt.Sprint(m["type"], ":", b))
	}
	return strings.Join(out, " ")
}
