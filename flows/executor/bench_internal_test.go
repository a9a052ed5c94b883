package executor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/flows/plan"
	"github.com/hushflow/hushflow/redact"
)

// BenchmarkCodeBlock runs one code block of a run as the executor does
// (the script in process, its log line and result learnt by the run's
// guard, its events redacted for storage), in a run whose scope has 20
// secrets, side by side (issue 20 item 1). Two blocks: derive logs a
// 12-character slice of its string and returns it upper-cased; use logs a
// line and returns 'Bearer ' + its string. Each runs three ways:
//
//	derive/no-secret          on input.token: derived values cost nothing
//	derive/secret             on secrets.API_TOKEN: the slice and the upper-cased
//	                          form are found and learnt (a redactor rebuild each)
//	derive/secret-no-derived  the same without looking for derived values (the
//	                          executor before issue 20; the slice shows in clear)
//	use/...                   the same three for a block that uses the secret
//	                          without deriving anything (the common case)
//
// The run's setup (the run's redactor, a clone of the cached one, and its
// guard) is part of each operation, as in a run.
func BenchmarkCodeBlock(b *testing.B) {
	bodies := map[string]string{
		"derive": "; console.log('token', t.slice(0, 12)); return {t: t.toUpperCase(), n: t.length}",
		"use":    "; console.log('calling the service'); return {auth: 'Bearer ' + t, n: t.length}",
	}
	vis := benchVisible()
	w := &Worker{redactors: newRedactorCache(), derivers: redact.NewDeriverCache(16)}
	w.cfg.defaults()
	eng := engine.New(engine.Config{})
	res := mapResolver{}
	for _, v := range vis {
		res[v.Name] = v.Value
	}
	ctx := context.Background()
	for _, c := range []struct {
		name, src string
		derive    bool
	}{
		{"derive/no-secret", "const t = input.token" + bodies["derive"], true},
		{"derive/secret", "const t = secrets.API_TOKEN" + bodies["derive"], true},
		{"derive/secret-no-derived", "const t = secrets.API_TOKEN" + bodies["derive"], false},
		{"use/no-secret", "const t = input.token" + bodies["use"], true},
		{"use/secret", "const t = secrets.API_TOKEN" + bodies["use"], true},
		{"use/secret-no-derived", "const t = secrets.API_TOKEN" + bodies["use"], false},
	} {
		b.Run(c.name, func(b *testing.B) {
			p, err := eng.Compile(engine.Code, c.src, engine.WithInProcess(), engine.WithOrderedResult())
			if err != nil {
				b.Fatal(err)
			}
			input := map[string]any{"token": "not_a_secret_but_as_long_as_one"}
			b.ReportAllocs()
			var rows []model.Event
			for b.Loop() {
				x := &execution{w: w, run: &model.Run{ID: "r"}, plan: &plan.Plan{}, input: input, steps: map[string]any{}}
				x.red = w.redactorFor(vis)
				x.guard.start(x.red, vis, w.derivers)
				if !c.derive {
					x.guard.drv = nil // finds nothing: derive returns at once
				}
				env := x.env("c")
				env.Secrets = res
				out, err := x.script(ctx, p, env)
				if err != nil {
					b.Fatal(err)
				}
				x.emit(PendingEvent{Type: "block_finished", Block: "c", Data: map[string]any{"output": engine.Plain(out)}})
				x.flushMu.Lock()
				rows = x.takeRowsLocked()
				x.flushMu.Unlock()
			}
			upper := strings.ToUpper(vis[0].Value)
			masked := len(rows) == 2 && !strings.Contains(rows[0].Data, vis[0].Value[:8]) && !strings.Contains(rows[1].Data, upper[:8])
			if masked != (c.name != "derive/secret-no-derived") {
				b.Fatalf("%s: events %v", c.name, rows)
			}
		})
	}
}

// benchVisible is a run's scope of 20 secrets, API_TOKEN among them.
func benchVisible() []model.VisibleSecret {
	rng := rand.New(rand.NewPCG(1, 2))
	vis := []model.VisibleSecret{{Name: "API_TOKEN", Value: "tok_9fK2&x<Q>7zLmW3pR8vN1"}}
	for i := range 19 {
		v := make([]byte, 24)
		for j := range v {
			v[j] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[rng.IntN(62)]
		}
		vis = append(vis, model.VisibleSecret{Name: fmt.Sprintf("SECRET_%02d", i), Value: string(v)})
	}
	return vis
}

type mapResolver map[string]string

func (m mapResolver) Resolve(_ context.Context, name string, _ engine.Scope) (string, error) {
	v, ok := m[name]
	if !ok {
		return "", fmt.Errorf("secret %q: %w", name, engine.ErrUnknownSecret)
	}
	return v, nil
}

func (m mapResolver) Names(context.Context) ([]string, error) { return nil, nil }
