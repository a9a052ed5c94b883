package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"
)

// The names a masking pass reports are those of the values it masked, in
// any form, also where two values' masks merge into one "[REDACTED]";
// text without a value reports nothing.
func TestFound(t *testing.T) {
	r := newR(t, "API_TOKEN", "tok_9f8e7d6c5b4a", "DB_PASSWORD", "pw_0a1b2c3d4e5f", "", "unnamed_value_42")
	cases := []struct {
		name string
		v    any
		want []string
	}{
		{"none", map[string]any{"body": "nothing here", "n": 3}, nil},
		{"string", "echo tok_9f8e7d6c5b4a", []string{"API_TOKEN"}},
		{"base64 in a nested list", map[string]any{"a": []any{"x", base64.StdEncoding.EncodeToString([]byte("user:pw_0a1b2c3d4e5f"))}}, []string{"DB_PASSWORD"}},
		{"merged", "tok_9f8e7d6c5b4apw_0a1b2c3d4e5f", []string{"API_TOKEN", "DB_PASSWORD"}},
		{"map key", map[string]any{"tok_9f8e7d6c5b4a": 1}, []string{"API_TOKEN"}},
		{"bytes", []byte("pw_0a1b2c3d4e5f"), []string{"DB_PASSWORD"}},
		{"unnamed", "unnamed_value_42", []string{""}},
		{"twice", []any{"tok_9f8e7d6c5b4a", "tok_9f8e7d6c5b4a"}, []string{"API_TOKEN"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f Found
			got := r.ValueFound(c.v, &f)
			if !slices.Equal(f.Names(), c.want) || f.Len() != len(c.want) {
				t.Errorf("found %q, want %q", f.Names(), c.want)
			}
			// The masking is that of Value.
			if a, b := jsonOf(t, got), jsonOf(t, r.Value(c.v)); a != b {
				t.Errorf("ValueFound gave %s, Value %s", a, b)
			}
		})
	}
	var f Found
	if s := r.StringFound("a tok_9f8e7d6c5b4a b", &f); s != "a [REDACTED:API_TOKEN] b" || !slices.Equal(f.Names(), []string{"API_TOKEN"}) {
		t.Errorf("StringFound: %q %q", s, f.Names())
	}
	var nilR *Redactor
	var g Found
	if nilR.ValueFound("tok_9f8e7d6c5b4a", &g); g.Len() != 0 {
		t.Errorf("nil redactor found %q", g.Names())
	}
}

// A Writer reports the names of the values it masked, also of one written
// a byte at a time.
func TestWriterFound(t *testing.T) {
	r := newR(t, "API_TOKEN", "tok_9f8e7d6c5b4a", "DB_PASSWORD", "pw_0a1b2c3d4e5f")
	var out bytes.Buffer
	w := r.NewWriter(&out)
	for _, c := range []byte("line one\nthe token tok_9f8e7d6c5b4a\n") {
		w.Write([]byte{c})
	}
	if got := w.Found(); !slices.Equal(got, []string{"API_TOKEN"}) {
		t.Errorf("found %q", got)
	}
	w.Close()
	if out.String() != "line one\nthe token [REDACTED:API_TOKEN]\n" {
		t.Errorf("wrote %q", out.String())
	}
	w2 := r.NewWriter(&out)
	w2.Write([]byte("nothing to see\n"))
	w2.Close()
	if got := w2.Found(); got != nil {
		t.Errorf("found %q in clean text", got)
	}
}

// Noting the names costs nothing when nothing matches: no allocation.
func TestFoundNoMatchNoAlloc(t *testing.T) {
	r := newR(t, "API_TOKEN", "tok_9f8e7d6c5b4a")
	s := "an ordinary log line with nothing secret in it at all"
	var f Found
	if n := testing.AllocsPerRun(100, func() { _ = r.StringFound(s, &f) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
