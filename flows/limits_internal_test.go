package flows

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/redact"
)

// An event's data over the size limit is stored as a truncated preview with
// a marker; the cut happens after redaction and never inside a mask.
func TestEventPayloadTruncatedAfterRedaction(t *testing.T) {
	s := &Service{cfg: Config{MaxEventBytes: 120}}
	s.cfg.defaults()
	s.cfg.MaxEventBytes = 120
	red := redact.New()
	secret := "sk_live_0123456789abcdefXYZ"
	red.Add("API_TOKEN", secret)
	for pad := 60; pad < 140; pad++ {
		data := map[string]any{"message": strings.Repeat("x", pad) + secret + strings.Repeat("y", 200)}
		out := s.boundedJSON(red.Value(data))
		if strings.Contains(out, "sk_live") {
			t.Fatalf("pad %d: value in stored data: %s", pad, out)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("pad %d: stored data is not JSON: %s", pad, out)
		}
		preview, _ := m["preview"].(string)
		if m["truncated"] != true || !strings.Contains(preview, "[truncated:") {
			t.Fatalf("pad %d: no truncation marker: %s", pad, out)
		}
		if i := strings.LastIndex(preview, "[REDAC"); i >= 0 && !strings.HasPrefix(preview[i:], "[REDACTED:API_TOKEN]") {
			t.Fatalf("pad %d: a mask was cut: %s", pad, preview)
		}
	}
}

// A run stores at most MaxEventsPerRun events; the last stored one says
// that later events were dropped, and run_finished is always kept.
func TestEventsPerRunLimit(t *testing.T) {
	s := &Service{}
	s.cfg.defaults()
	s.cfg.MaxEventsPerRun = 5
	seq, stored := 1, 1
	var evs []pendingEvent
	for i := 0; i < 10; i++ {
		evs = append(evs, pendingEvent{Type: "log", Data: map[string]any{"message": fmt.Sprint(i)}})
	}
	evs = append(evs, pendingEvent{Type: "run_finished", Data: map[string]any{"status": "succeeded"}})
	rows := s.redactEvents("r", &seq, &stored, nil, evs)
	var types []string
	for _, r := range rows {
		types = append(types, r.Type)
	}
	got := strings.Join(types, ",")
	if got != "log,log,log,events_truncated,run_finished" {
		t.Fatalf("stored %s", got)
	}
}
