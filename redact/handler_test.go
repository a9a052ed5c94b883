package redact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/slogtest"
	"time"
)

func TestHandlerSlogtest(t *testing.T) {
	var buf bytes.Buffer
	r := newR(t, "K", "secret-value")
	newHandler := func(t *testing.T) slog.Handler {
		buf.Reset()
		return NewHandler(slog.NewJSONHandler(&buf, nil), r)
	}
	result := func(t *testing.T) map[string]any {
		m := map[string]any{}
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	slogtest.Run(t, newHandler, result)
}

type token string

func (t token) LogValue() slog.Value { return slog.StringValue(string(t)) }

type user struct {
	Name, Password string
}

func TestHandlerMasks(t *testing.T) {
	var buf bytes.Buffer
	r := New()
	l := slog.New(NewHandler(slog.NewJSONHandler(&buf, nil), r))
	// With attributes recorded before the secret is known.
	l = l.With("early", "uses late-secret-1").WithGroup("g").With("k", "late-secret-1")
	r.Add("S", "late-secret-1")
	l.Info("msg late-secret-1",
		"plain", "late-secret-1",
		"late-secret-1", "as key",
		"valuer", token("late-secret-1"),
		"err", errors.New("failed: late-secret-1"),
		slog.Group("grp", "inner", "late-secret-1", slog.Group("deeper", "x", token("late-secret-1"))),
		"struct", user{"bob", "late-secret-1"},
		"map", map[string]any{"late-secret-1": []string{"late-secret-1"}},
		"n", 3,
	)
	out := buf.String()
	if strings.Contains(out, "late-secret-1") {
		t.Fatalf("leak: %s", out)
	}
	for _, want := range []string{`"msg":"msg [REDACTED:S]"`, `"early":"uses [REDACTED:S]"`, `"g":{"k":"[REDACTED:S]"`, `"n":3`, `"Password":"[REDACTED:S]"`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in %s", want, out)
		}
	}
}

type panicky struct{}

func (panicky) String() string { panic("boom secret-value") }

func TestHandlerDropsOnPanic(t *testing.T) {
	var buf bytes.Buffer
	r := newR(t, "K", "secret-value")
	h := NewHandler(slog.NewJSONHandler(&buf, nil), r)
	rec := slog.NewRecord(time.Time{}, slog.LevelInfo, "m", 0)
	rec.AddAttrs(slog.Any("p", panicky{}))
	err := h.Handle(context.Background(), rec)
	if err == nil || buf.Len() != 0 || strings.Contains(err.Error(), "secret-value") {
		t.Fatalf("err %v, out %q", err, buf.String())
	}
}
