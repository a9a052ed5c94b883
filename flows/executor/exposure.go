package executor

import (
	"context"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/redact"
)

// Exposure alerts: a secret value in a place that should never hold one
// (see model.SinkOutput and the other sinks) is found by the same scan
// that masks it when its event is stored (redactEvents), or by a block
// that masks its own output first (exec, through blocks.Input.Exposed).
// The execution notes each (block, sink, secret) once and reports it to
// Config.OnExposure after the events that hold the mask are stored.

// exposureKey identifies one exposure of a run.
type exposureKey struct {
	block, sink, label string
}

// exposures is an execution's record of what it found and has yet to
// report.
type exposures struct {
	noted   map[exposureKey]bool // every exposure noted by this claim
	blocks  map[[2]string]bool   // (block, label) noted in any sink
	pending []exposureKey        // noted, not yet reported
}

// sinkOf returns the sink the data of an event of a run started by
// trigger reports, and the key of data that holds it; "" for an event of
// no sink. An http block's request holds the secrets it sends by design:
// only the response counts.
func sinkOf(trigger string, e *PendingEvent) (sink string, keys []string) {
	switch e.Type {
	case "block_finished":
		return model.SinkOutput, outputKeys
	case "http_response":
		return model.SinkHTTPResponse, responseKeys
	case "run_started":
		switch trigger {
		case "webhook":
			return model.SinkWebhookPayload, inputKeys
		case "flow", "rerun":
			// A sub-flow's input is what its parent run gave it, a
			// rerun's the run's it repeats: data of Hushflow, checked
			// where it came from.
			return "", nil
		}
		return model.SinkRunInput, inputKeys
	}
	return "", nil
}

var (
	outputKeys   = []string{"output"}
	responseKeys = []string{"headers", "body"}
	inputKeys    = []string{"input"}
)

// redactData masks data like red.Value, adding to f the names of the
// values found under keys.
func redactData(red *redact.Redactor, data map[string]any, keys []string, f *redact.Found) map[string]any {
	if data == nil {
		return nil
	}
	out := make(map[string]any, len(data))
	for k, v := range data {
		sink := false
		for _, s := range keys {
			sink = sink || s == k
		}
		if sink {
			out[red.String(k)] = red.ValueFound(v, f)
		} else {
			out[red.String(k)] = red.Value(v)
		}
	}
	return out
}

// noteExposure notes that block's data in sink held the values masked
// under labels. A block's output that holds a value its response (or its
// command's output) already held is not a second exposure: the output is
// made of what the block received.
func (x *execution) noteExposure(block, sink string, labels []string) {
	if len(labels) == 0 {
		return
	}
	x.expMu.Lock()
	defer x.expMu.Unlock()
	e := &x.exp
	if e.noted == nil {
		e.noted, e.blocks = map[exposureKey]bool{}, map[[2]string]bool{}
	}
	for _, l := range labels {
		if _, ok := x.guard.originOf(l); !ok {
			continue // a secrets.mask value, or an unnamed one: no stored secret
		}
		k := exposureKey{block: block, sink: sink, label: l}
		if e.noted[k] || sink == model.SinkOutput && e.blocks[[2]string{block, l}] {
			continue
		}
		e.noted[k] = true
		e.blocks[[2]string{block, l}] = true
		e.pending = append(e.pending, k)
	}
}

// reportExposures reports the exposures noted since the last report to
// Config.OnExposure. One that cannot be recorded (the database away) is
// kept for the next write and logged.
func (x *execution) reportExposures(ctx context.Context) {
	x.expMu.Lock()
	pending := x.exp.pending
	x.exp.pending = nil
	x.expMu.Unlock()
	if len(pending) == 0 || x.w.cfg.OnExposure == nil {
		return
	}
	var failed []exposureKey
	for _, k := range pending {
		o, _ := x.guard.originOf(k.label)
		env := o.environment
		if env == "" {
			env = x.run.Environment
		}
		err := x.w.cfg.OnExposure(context.WithoutCancel(ctx), model.Exposure{Run: x.run, Block: k.block, Sink: k.sink,
			Secret: o.secret, Environment: env, Loaded: x.loaded})
		if err != nil {
			x.w.log.Warn("record a secret exposure", "run_id", x.run.ID, "block", k.block, "sink", k.sink,
				"secret", o.secret, "err", x.red.Error(err))
			failed = append(failed, k)
		}
	}
	if len(failed) > 0 {
		x.expMu.Lock()
		x.exp.pending = append(failed, x.exp.pending...)
		x.expMu.Unlock()
	}
}
