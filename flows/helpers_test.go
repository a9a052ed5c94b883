package flows_test

import (
	"errors"

	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hushflow/hushflow/internal/apptest"
)

// waitFor waits until ok holds (apptest.Eventually).
func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	apptest.Eventually(t, d, what, func() error {
		if ok() {
			return nil
		}
		return errors.New("not yet")
	})
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
