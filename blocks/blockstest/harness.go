package blockstest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/hushflow/hushflow/blocks"
	"github.com/hushflow/hushflow/egress"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/redact"
)

// Harness plays the executor for block tests: it builds an Input whose
// Emit collects events, whose Script runs the engine in process with the
// given secrets, and whose HTTP client is an egress client (127.0.0.1
// allowed unless Policy says otherwise) with the secrets' pinning. Every
// secret is registered with the run's redactor up front, as the executor
// does.
type Harness struct {
	T       testing.TB
	Red     *redact.Redactor
	Secrets map[string]string
	In      *blocks.Input

	mu      sync.Mutex // guards events, refused and results
	events  []blocks.Event
	refused []string
	results []string // errors and outputs of Run, as the executor would store them
}

// Options configure a Harness.
type Options struct {
	// Policy is the egress policy; nil allows 127.0.0.1 only.
	Policy *egress.Policy
	// Allowed pins secrets to hosts.
	Allowed map[string][]string
	// Input is the trigger payload (`input`).
	Input any
	// Steps are earlier blocks' outputs by id (`steps.<id>.output`).
	Steps map[string]any
}

// NewHarness returns a harness with secrets (name -> value).
func NewHarness(t testing.TB, secrets map[string]string, o Options) *Harness {
	h := &Harness{T: t, Red: redact.New(), Secrets: secrets}
	h.Red.AddAll(secrets)
	// The canary hook: at the end of the test, every event, error and
	// output seen through the harness is checked for the secrets.
	t.Cleanup(func() {
		h.mu.Lock()
		texts := append([]string(nil), h.results...)
		h.mu.Unlock()
		h.AssertNoLeak(texts...)
	})
	pol := egress.Policy{}
	if o.Policy != nil {
		pol = *o.Policy
	} else {
		p, _ := egress.ParseAllow("127.0.0.1/32")
		pol = p
	}
	pin := &egress.Pinning{Match: h.Red.Matches, Allowed: egress.Static(o.Allowed), OnRefuse: func(s, host string) {
		h.mu.Lock()
		h.refused = append(h.refused, s+"@"+host)
		h.mu.Unlock()
	}}
	tr := egress.NewTransport(pol)
	t.Cleanup(tr.CloseIdleConnections)
	env := &engine.Env{
		Secrets: mapResolver(secrets),
		Input:   o.Input,
		Steps:   o.Steps,
		Run:     engine.RunInfo{ID: "run-1", Flow: "f", Project: "p", Environment: "development", Block: "b"},
		OnSecret: func(name string, _ engine.Scope, v string) {
			h.Red.Add(name, v)
		},
		OnMask: func(v string) { h.Red.Add("", v) },
		OnLog: func(r engine.LogRecord) {
			h.emit(blocks.Event{Type: "log", Data: map[string]any{"level": r.Level, "message": r.Message}})
		},
	}
	scripts := engine.New(engine.Config{}) // in process: tests only
	h.In = &blocks.Input{
		RunID: "run-1", FlowName: "f", Project: "p", Environment: "development", BlockID: "b", Attempt: 1,
		Emit: h.emit,
		Script: func(ctx context.Context, kind, src string) (any, error) {
			p, err := scripts.Compile(engine.Kind(kind), src, engine.WithInProcess())
			if err != nil {
				return nil, err
			}
			return p.Run(ctx, env)
		},
		Mask:   func(v string) { h.Red.Add("", v) },
		Redact: h.Red.String,
		MaskOf: h.Red.MaskOf,
		HTTP:   egress.Client(tr, pin, true),
	}
	return h
}

func (h *Harness) emit(e blocks.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
}

// Events returns the events emitted so far (not redacted).
func (h *Harness) Events() []blocks.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]blocks.Event(nil), h.events...)
}

// EventsOf returns the events of one type.
func (h *Harness) EventsOf(typ string) []blocks.Event {
	var out []blocks.Event
	for _, e := range h.Events() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Refused returns the pinning refusals (secret@host) so far.
func (h *Harness) Refused() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.refused...)
}

// Decode builds a block of info from a config, as the executor does.
func (h *Harness) Decode(info blocks.Info, config map[string]any, env *blocks.Env) (blocks.Block, error) {
	r := blocks.NewRegistry()
	if err := r.Register(info); err != nil {
		return nil, err
	}
	return r.Decode(info.ID, config, env)
}

// Run decodes and runs a block. Its error and output are kept for the
// leak check that runs when the test ends.
func (h *Harness) Run(ctx context.Context, info blocks.Info, config map[string]any, env *blocks.Env) (any, error) {
	b, err := h.Decode(info, config, env)
	if err != nil {
		return nil, err
	}
	defer blocks.Release(b)
	out, err := b.Run(ctx, h.In)
	var rec string
	if err != nil {
		rec = err.Error()
	} else if data, jerr := json.Marshal(h.Red.Value(out)); jerr == nil {
		rec = string(data)
	}
	h.mu.Lock()
	h.results = append(h.results, rec)
	h.mu.Unlock()
	return out, err
}

// AssertNoLeak fails the test when a secret value, or its base64 or URL
// escaped form, appears in the redacted events or in any of texts after
// redaction with the run's redactor (what the executor stores).
func (h *Harness) AssertNoLeak(texts ...string) {
	h.T.Helper()
	for _, e := range h.Events() {
		data, err := json.Marshal(h.Red.Value(e.Data))
		if err != nil {
			h.T.Fatalf("event %s: %v", e.Type, err)
		}
		h.check("event "+e.Type, string(data))
	}
	for i, s := range texts {
		h.check(fmt.Sprintf("text %d", i), h.Red.String(s))
	}
}

func (h *Harness) check(where, s string) {
	h.T.Helper()
	if names := h.Red.Matches(s); len(names) > 0 {
		h.T.Errorf("%s: carries %v: %s", where, names, s)
	}
	for name, v := range h.Secrets {
		for _, form := range Forms(v) {
			if strings.Contains(s, form) {
				h.T.Errorf("%s: carries secret %s (form %q)", where, name, form)
			}
		}
	}
}

// Forms returns the forms of v searched for leaks: the value, its base64
// (std, URL, raw) and URL escapings.
func Forms(v string) []string {
	return []string{v,
		base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v)),
		url.QueryEscape(v), url.PathEscape(v)}
}

// mapResolver resolves secrets from a map.
type mapResolver map[string]string

func (m mapResolver) Resolve(_ context.Context, name string, sc engine.Scope) (string, error) {
	if v, ok := m[name]; ok {
		return v, nil
	}
	return "", fmt.Errorf("secret %q is not defined in project p, environment development: %w", name, engine.ErrUnknownSecret)
}

func (m mapResolver) Names(context.Context) ([]string, error) {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out, nil
}
