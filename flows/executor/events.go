package executor

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/redact"
)

// PendingEvent is an event not yet stored; Data holds real values and is
// redacted when stored.
type PendingEvent struct {
	At    time.Time
	Type  string
	Block string
	Data  map[string]any
	// Checkpoint, when set, is the checkpoint the event is stored with
	// (a block's or an iteration's end): a write of other checkpoints, or
	// of events alone, leaves it for that one, so that no block is seen
	// finished whose checkpoint was not stored (after a crash it runs
	// again, and would finish twice).
	Checkpoint string
}

// redactEvents turns pending events into stored rows: data redacted with
// red, then bounded in size (truncation happens after redaction, so a cut
// never exposes part of a value).
//
// For a run (x not nil), the data of events that should never hold a
// secret value (see sinkOf) is scanned for the names of the values it
// masks, by the same pass, and noted as exposures of the run.
func (w *Worker) redactEvents(x *execution, runID string, seq, stored *int, red *redact.Redactor, evs []PendingEvent) []model.Event {
	rows := make([]model.Event, 0, len(evs))
	if w.cfg.TestUnmaskedEvents {
		red = nil
	}
	for _, e := range evs {
		if *stored >= w.cfg.MaxEventsPerRun && e.Type != "run_finished" {
			continue
		}
		if *stored == w.cfg.MaxEventsPerRun-1 && e.Type != "run_finished" {
			e = PendingEvent{At: e.At, Type: "events_truncated", Data: map[string]any{
				"message": fmt.Sprintf("this run reached the limit of %d stored events; later events are dropped", w.cfg.MaxEventsPerRun)}}
		}
		*seq++
		*stored++
		var data string
		if sink, keys := sinkOf(triggerOf(x), &e); sink != "" && red != nil && x != nil {
			var f redact.Found
			data = w.boundedJSON(redactData(red, e.Data, keys, &f))
			if f.Len() > 0 {
				x.noteExposure(e.Block, sink, f.Names())
			}
		} else {
			data = w.boundedJSON(red.Value(e.Data))
		}
		if red != nil {
			w.redacted(data)
		}
		rows = append(rows, model.Event{RunID: runID, Seq: *seq, At: e.At, Type: e.Type, Block: e.Block, Data: data})
	}
	return rows
}

func triggerOf(x *execution) string {
	if x == nil || x.run == nil {
		return ""
	}
	if x.run.RerunOf != "" {
		// Its input is the run's it repeats, checked when that one ran:
		// what it holds was not pasted now.
		return "rerun"
	}
	return x.run.Trigger
}

// boundedJSON encodes v within MaxEventBytes. Data over it keeps its
// structure with its longest strings cut (each ends with a marker saying
// how much was kept); only data that still does not fit becomes a
// truncated preview with a marker. Cuts happen after redaction and never
// inside a mask.
func (w *Worker) boundedJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"unencodable": fmt.Sprint(v)})
	}
	max := w.cfg.MaxEventBytes
	if len(b) <= max {
		return string(b)
	}
	for limit := max / 2; limit >= 64; limit /= 2 {
		if short, err := json.Marshal(shortenStrings(v, limit, 0)); err == nil && len(short) <= max {
			return string(short)
		}
	}
	cut := cutText(string(b[:max]))
	tb, _ := json.Marshal(map[string]any{"truncated": true, "bytes": len(b),
		"preview": cut + fmt.Sprintf("…[truncated: %d of %d bytes shown]", len(cut), len(b))})
	return string(tb)
}

// shortenStrings returns a copy of v whose strings longer than limit bytes
// are cut to about limit, with a marker.
func shortenStrings(v any, limit, depth int) any {
	if depth > 64 {
		return v
	}
	switch x := v.(type) {
	case string:
		if len(x) <= limit {
			return x
		}
		cut := cutText(x[:limit])
		return cut + fmt.Sprintf("…[truncated: %d of %d bytes]", len(cut), len(x))
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = shortenStrings(e, limit, depth+1)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = shortenStrings(e, limit, depth+1)
		}
		return a
	}
	return v
}

// cutText makes a prefix safe to show: valid UTF-8, and not ending inside
// a mask such as "[REDACTED:NAME]" (also not inside its first letters,
// "[REDAC").
func cutText(cut string) string {
	cut = strings.ToValidUTF8(cut, "")
	if i := strings.LastIndexByte(cut, '['); i >= 0 {
		if tail := cut[i:]; !strings.Contains(tail, "]") &&
			(strings.HasPrefix(tail, "[REDACTED") || strings.HasPrefix("[REDACTED", tail)) {
			cut = cut[:i]
		}
	}
	return cut
}

// redacted reports the masks in stored text to the redactions hook.
func (w *Worker) redacted(data string) {
	if w.cfg.OnRedacted != nil {
		if n := strings.Count(data, "[REDACTED"); n > 0 {
			w.cfg.OnRedacted(n)
		}
	}
}

// EventRows numbers (after *seq) and redacts events of a run that no
// worker executes (the cancel of a queued run), as the executor stores
// them.
func (w *Worker) EventRows(runID string, seq *int, red *redact.Redactor, evs []PendingEvent) []model.Event {
	for i := range evs {
		if evs[i].At.IsZero() {
			evs[i].At = w.now()
		}
	}
	stored := 0
	return w.redactEvents(nil, runID, seq, &stored, red, evs)
}
