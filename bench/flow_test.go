package bench

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/dop251/goja"
	"github.com/hushflow/hushflow/engine"
	"github.com/hushflow/hushflow/redact"
)

// The flow of the end-to-end benchmarks: an HTTP call that carries a
// secret in its URL, a header and its body, a message built from its
// response under an `if`, and a log line. Field -> expression, as stored.
var flowBlocks = []struct {
	id, typ, cond string
	fields        [][2]string
}{
	{id: "call", typ: "http", fields: [][2]string{
		{"method", "'POST'"},
		{"url", "`${env.API_BASE}/messages?token=${secrets.API_TOKEN}`"},
		{"headers", "({\"Authorization\": `Bearer ${secrets.API_TOKEN}`, \"Content-Type\": \"application/json\"})"},
		{"body", "({text: input.text, channel: input.channel})"},
	}},
	{id: "report", typ: "log", cond: "steps.call.output.status == 200", fields: [][2]string{
		{"message", "`sent ${steps.call.output.body.id} to ${input.channel}`"},
	}},
	{id: "done", typ: "log", fields: [][2]string{
		{"message", "`done: ${input.text}`"},
	}},
}

// visibleSecrets is what a run of the benchmark's scope can see (its
// redaction set): 20 secrets, API_TOKEN among them.
var visibleSecrets = func() map[string]string {
	rng := rand.New(rand.NewPCG(1, 2))
	m := map[string]string{"API_TOKEN": "tok_9fK2&x<Q>7zLmW3pR8vN1"}
	for i := range 19 {
		b := make([]byte, 24)
		for j := range b {
			b[j] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[rng.IntN(62)]
		}
		m[fmt.Sprintf("SECRET_%02d", i)] = string(b)
	}
	return m
}()

var (
	flowInput = map[string]any{"text": "hello from the benchmark", "channel": "#ops"}
	flowVars  = map[string]string{"API_BASE": "https://api.example.com"}
)

// response is what the HTTP block returns (it echoes the Authorization
// header, so the output holds the secret and must be redacted).
func response(auth string) map[string]any {
	return map[string]any{"status": float64(200), "headers": map[string]any{"Content-Type": "application/json"},
		"body": map[string]any{"id": "msg_1", "echo_auth": auth}}
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

// compiledFlow is the flow as saved: programs and conditions compiled once.
type compiledFlow struct {
	fields [][]*engine.Program
	conds  []*engine.Condition
}

func compileFlow(tb testing.TB) *compiledFlow {
	cf := &compiledFlow{}
	for _, b := range flowBlocks {
		var ps []*engine.Program
		for _, f := range b.fields {
			p, err := benchEngine.Compile(engine.Field, f[1], engine.WithInProcess())
			if err != nil {
				tb.Fatal(err)
			}
			ps = append(ps, p)
		}
		cf.fields = append(cf.fields, ps)
		var c *engine.Condition
		if b.cond != "" {
			var err error
			if c, err = engine.CompileCondition(b.cond); err != nil {
				tb.Fatal(err)
			}
		}
		cf.conds = append(cf.conds, c)
	}
	return cf
}

// runEngine executes one run the engine's way and returns the stored
// (redacted) events.
func runEngine(ctx context.Context, cf *compiledFlow, redacted bool) ([]string, error) {
	var red *redact.Redactor // nil masks nothing
	if redacted {
		red = redact.New()
		red.AddAll(visibleSecrets)
	}
	steps := map[string]any{}
	env := &engine.Env{Secrets: mapResolver(visibleSecrets), Input: flowInput, Steps: steps, Vars: flowVars,
		OnSecret: func(name string, _ engine.Scope, v string) { red.Add(name, v) }}
	var events []string
	store := func(typ, block string, data map[string]any) {
		b, _ := json.Marshal(red.Value(data))
		events = append(events, typ+" "+block+" "+string(b))
	}
	store("run_started", "", map[string]any{"input": flowInput})
	for i, b := range flowBlocks {
		if c := cf.conds[i]; c != nil {
			ok, err := c.Eval(ctx, env)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		cfg := make(map[string]any, len(b.fields))
		for j, f := range b.fields {
			v, err := cf.fields[i][j].Run(ctx, env)
			if err != nil {
				return nil, err
			}
			cfg[f[0]] = v
		}
		store("block_started", b.id, map[string]any{"type": b.typ, "config": cfg})
		out := blockOutput(b.typ, cfg)
		steps[b.id] = map[string]any{"output": out}
		store("block_finished", b.id, map[string]any{"output": out})
	}
	store("run_finished", "", map[string]any{"status": "succeeded"})
	return events, nil
}

func blockOutput(typ string, cfg map[string]any) any {
	if typ == "http" {
		h, _ := cfg["headers"].(map[string]any)
		auth, _ := h["Authorization"].(string)
		return response(auth)
	}
	return map[string]any{"message": cfg["message"]}
}

// naiveForms are the forms of v a naive redactor replaces, to cover about
// what redact.Redactor covers: the value, its JSON, URL (query and path)
// and HTML escapings, its hex and base64 (standard and URL, padded and
// raw) encodings.
func naiveForms(v string) []string {
	j, _ := json.Marshal(v)
	b := []byte(v)
	forms := []string{v, string(j[1 : len(j)-1]), url.QueryEscape(v), url.PathEscape(v), html.EscapeString(v),
		hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b), base64.URLEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// runNaive executes the same run the naive way: a fresh goja runtime and
// RunString for every expression (the `if` included), and the events
// redacted with a strings.Replacer of the forms of the visible values
// (naiveForms), built for the run.
func runNaive(ctx context.Context, redacted bool) ([]string, error) {
	var pairs []string
	for name, v := range visibleSecrets {
		if !redacted {
			break
		}
		for _, f := range naiveForms(v) {
			pairs = append(pairs, f, "[REDACTED:"+name+"]")
		}
	}
	rep := strings.NewReplacer(pairs...)
	steps := map[string]any{}
	eval := func(src string) (any, error) {
		rt := goja.New()
		secrets := rt.NewObject()
		for k, v := range visibleSecrets {
			_ = secrets.Set(k, v)
		}
		_ = rt.Set("secrets", secrets)
		_ = rt.Set("input", flowInput)
		_ = rt.Set("steps", steps)
		_ = rt.Set("env", flowVars)
		v, err := rt.RunString(src)
		if err != nil {
			return nil, err
		}
		return v.Export(), nil
	}
	var events []string
	store := func(typ, block string, data map[string]any) {
		b, _ := json.Marshal(data)
		events = append(events, typ+" "+block+" "+rep.Replace(string(b)))
	}
	store("run_started", "", map[string]any{"input": flowInput})
	for _, b := range flowBlocks {
		if b.cond != "" {
			ok, err := eval(b.cond)
			if err != nil {
				return nil, err
			}
			if ok != true {
				continue
			}
		}
		cfg := make(map[string]any, len(b.fields))
		for _, f := range b.fields {
			v, err := eval(f[1])
			if err != nil {
				return nil, err
			}
			cfg[f[0]] = v
		}
		store("block_started", b.id, map[string]any{"type": b.typ, "config": cfg})
		out := blockOutput(b.typ, cfg)
		steps[b.id] = map[string]any{"output": out}
		store("block_finished", b.id, map[string]any{"output": out})
	}
	store("run_finished", "", map[string]any{"status": "succeeded"})
	return events, nil
}

// TestFlowPathsAgree checks that both paths do the same work: the same
// events, and no secret in them.
func TestFlowPathsAgree(t *testing.T) {
	ctx := context.Background()
	a, err := runEngine(ctx, compileFlow(t), true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := runNaive(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) || len(a) != 8 {
		t.Fatalf("engine: %d events, naive: %d\n%s\n---\n%s", len(a), len(b), strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("event %d:\nengine %s\nnaive  %s", i, a[i], b[i])
		}
	}
	all := strings.Join(a, "\n")
	if !strings.Contains(all, "[REDACTED:API_TOKEN]") || strings.Contains(all, visibleSecrets["API_TOKEN"]) {
		t.Errorf("events not redacted: %s", all)
	}
}

// BenchmarkFlow runs one execution of the flow per iteration, in process
// and without the database, so that the difference is the design's:
// compiled, pooled evaluation and one-pass redaction against a fresh
// runtime per expression and a replacer. The expressions/ pair leaves
// redaction out (events are encoded, not masked).
func BenchmarkFlow(b *testing.B) {
	ctx := context.Background()
	for _, mode := range []struct {
		prefix   string
		redacted bool
	}{{"", true}, {"expressions/", false}} {
		b.Run(mode.prefix+"engine", func(b *testing.B) {
			cf := compileFlow(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := runEngine(ctx, cf, mode.redacted); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
		})
		b.Run(mode.prefix+"naive", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := runNaive(ctx, mode.redacted); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "runs/s")
		})
	}
}

// benchEngine compiles the benchmark's expressions.
var benchEngine = engine.New(engine.Config{})
