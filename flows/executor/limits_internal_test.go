package executor

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/redact"
)

// An event's data over the size limit keeps its structure: its long
// strings are cut with a marker. The cut happens after redaction and never
// inside a mask.
func TestEventPayloadTruncatedAfterRedaction(t *testing.T) {
	w := &Worker{}
	w.cfg.defaults()
	w.cfg.MaxEventBytes = 400
	red := redact.New()
	secret := "sk_live_0123456789abcdefXYZ"
	red.Add("API_TOKEN", secret)
	for pad := 60; pad < 220; pad++ {
		data := map[string]any{"status": 200, "duration_ms": 12,
			"body": strings.Repeat("x", pad) + secret + strings.Repeat("y", 800)}
		out := w.boundedJSON(red.Value(data))
		if strings.Contains(out, "sk_live") {
			t.Fatalf("pad %d: value in stored data: %s", pad, out)
		}
		if len(out) > 400 {
			t.Fatalf("pad %d: %d bytes stored, over the limit", pad, len(out))
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("pad %d: stored data is not JSON: %s", pad, out)
		}
		if m["status"] != float64(200) || m["duration_ms"] != float64(12) {
			t.Fatalf("pad %d: structure lost: %s", pad, out)
		}
		body, _ := m["body"].(string)
		if !strings.Contains(body, "…[truncated: ") || !strings.HasPrefix(body, strings.Repeat("x", min(pad, 100))) {
			t.Fatalf("pad %d: no truncation marker: %s", pad, out)
		}
		if i := strings.LastIndex(body, "[REDAC"); i >= 0 && !strings.HasPrefix(body[i:], "[REDACTED:API_TOKEN]") {
			t.Fatalf("pad %d: a mask was cut: %s", pad, body)
		}
	}
}

// Data whose structure alone is over the limit is stored as a truncated
// preview with a marker.
func TestEventPayloadPreviewWhenStructureIsTooLarge(t *testing.T) {
	w := &Worker{}
	w.cfg.defaults()
	w.cfg.MaxEventBytes = 200
	data := map[string]any{}
	for i := range 100 {
		data[fmt.Sprintf("key%03d", i)] = i
	}
	out := w.boundedJSON(data)
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("stored data is not JSON: %s", out)
	}
	preview, _ := m["preview"].(string)
	if m["truncated"] != true || !strings.Contains(preview, "[truncated:") {
		t.Fatalf("no preview: %s", out)
	}
}

// A run stores at most MaxEventsPerRun events; the last stored one says
// that later events were dropped, and run_finished is always kept.
func TestEventsPerRunLimit(t *testing.T) {
	w := &Worker{}
	w.cfg.defaults()
	w.cfg.MaxEventsPerRun = 5
	seq, stored := 1, 1
	var evs []PendingEvent
	for i := 0; i < 10; i++ {
		evs = append(evs, PendingEvent{Type: "log", Data: map[string]any{"message": fmt.Sprint(i)}})
	}
	evs = append(evs, PendingEvent{Type: "run_finished", Data: map[string]any{"status": "succeeded"}})
	rows := w.redactEvents(nil, "r", &seq, &stored, nil, evs)
	var types []string
	for _, r := range rows {
		types = append(types, r.Type)
	}
	got := strings.Join(types, ",")
	if got != "log,log,log,events_truncated,run_finished" {
		t.Fatalf("stored %s", got)
	}
}
