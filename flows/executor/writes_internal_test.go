package executor

import (
	"testing"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/redact"
)

// A block's or an iteration's finished event is stored with its own
// checkpoint, never by another's write (a parallel block's, another
// iteration's) or a flush of events alone: a crash before its checkpoint
// would leave it finished in the log and run it again. The run's end
// takes every event.
func TestFinishedEventWaitsForItsCheckpoint(t *testing.T) {
	w := &Worker{}
	w.cfg.defaults()
	x := &execution{w: w, run: &model.Run{ID: "r", Trigger: "manual"}, red: redact.New()}
	x.emitIt(&iteration{index: 1}, PendingEvent{Type: "block_finished", Block: "call", Checkpoint: "call"})
	x.emit(PendingEvent{Type: "log", Block: "other"})
	x.emit(PendingEvent{Type: "block_finished", Block: "other", Checkpoint: "other"})
	x.emitIt(&iteration{index: 2}, PendingEvent{Type: "block_finished", Block: "call", Checkpoint: "call"})
	take := func(cps ...string) (got []string) {
		x.flushMu.Lock()
		defer x.flushMu.Unlock()
		var rows []model.Event
		if cps == nil {
			rows = x.takeRowsForLocked(nil)
		} else {
			var cs []model.Checkpoint
			for _, c := range cps {
				cs = append(cs, model.Checkpoint{Block: c})
			}
			rows = x.takeRowsForLocked(cs)
		}
		for _, r := range rows {
			got = append(got, r.Type+"/"+r.Block)
		}
		return got
	}
	if got := take(); len(got) != 1 || got[0] != "log/other" {
		t.Fatalf("events alone: %v, want the log line only", got)
	}
	if got := take(iterationKey("call", 2)); len(got) != 1 || got[0] != "iteration_finished/call" {
		t.Fatalf("iteration 2's checkpoint: %v, want its iteration_finished only", got)
	}
	if got := take("other"); len(got) != 1 || got[0] != "block_finished/other" {
		t.Fatalf("other's checkpoint: %v, want its block_finished only", got)
	}
	x.flushMu.Lock()
	rest := x.takeRowsLocked()
	x.flushMu.Unlock()
	if len(rest) != 1 || rest[0].Type != "iteration_finished" {
		t.Fatalf("the run's end: %v, want iteration 1's iteration_finished", rest)
	}
}
