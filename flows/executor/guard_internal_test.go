package executor

import (
	"reflect"
	"testing"

	"github.com/hushflow/hushflow/flows/model"
)

// The guard keys pins by the name a value is masked under, so a pin
// follows the value: the same value pinned in two places goes only where
// both allow, a value of another environment under a taken name gets its
// own name, and what a run learnt comes back after a resume.
func TestGuardFollowsValues(t *testing.T) {
	vis := []model.VisibleSecret{
		{Name: "K", Value: "dev-value-0123456789", AllowedHosts: nil, Previous: []string{"old-dev-value-0123456789"}},
		{Name: "PINNED", Value: "pinned-value-0123456789", AllowedHosts: []string{"a.example", "b.example"}},
	}
	w := &Worker{redactors: newRedactorCache()}
	var g guard
	red := w.redactorFor(vis)
	g.start(red, vis, nil)
	if p := g.pins(); !reflect.DeepEqual(p, map[string][]string{"PINNED": {"a.example", "b.example"}}) {
		t.Fatalf("start: %v", p)
	}
	// Production's K: another value under a taken name, pinned.
	g.learn("K", "production", "prod-value-0123456789", []string{"a.example"})
	if got := red.String("x prod-value-0123456789 x"); got != "x [REDACTED:K@production] x" {
		t.Errorf("masked as %q", got)
	}
	// The same value pinned again elsewhere: only where both allow.
	g.learn("PINNED", "production", "pinned-value-0123456789", []string{"b.example", "c.example"})
	want := map[string][]string{"PINNED": {"b.example"}, "K@production": {"a.example"}}
	if p := g.pins(); !reflect.DeepEqual(p, want) {
		t.Errorf("pins %v, want %v", p, want)
	}
	// An earlier version is masked under its secret's name.
	if got := red.String("old-dev-value-0123456789"); got != "[REDACTED:K]" {
		t.Errorf("earlier version: %q", got)
	}
	// A resumed run learns the same again from its checkpoint.
	ms := g.masks()
	var g2 guard
	red2 := w.redactorFor(vis)
	g2.start(red2, vis, nil)
	g2.restore(ms)
	if p := g2.pins(); !reflect.DeepEqual(p["K@production"], []string{"a.example"}) {
		t.Errorf("after restore: %v", p)
	}
	if got := red2.String("prod-value-0123456789"); got != "[REDACTED:K@production]" {
		t.Errorf("after restore: %q", got)
	}
	// Each name knows the secret it masks (for exposure alerts), also
	// after a resume; a secrets.mask value is no secret.
	g2.learn("", "", "masked-at-run-time-0123456789", nil)
	for l, want := range map[string]origin{"K": {secret: "K"}, "PINNED": {secret: "PINNED"}, "K@production": {secret: "K", environment: "production"}} {
		if o, ok := g2.originOf(l); !ok || o != want {
			t.Errorf("origin of %s: %+v %v, want %+v", l, o, ok, want)
		}
	}
	if o, ok := g2.originOf(""); ok {
		t.Errorf("a secrets.mask value has origin %+v", o)
	}
}

// Issue 20 item 1: what a script derives from a value the run read is
// learnt under the value's name, pinned with it, and kept by checkpoints
// with the value itself as a source, so that a resumed run masks the
// derived values it had and finds new ones.
func TestGuardDerivedValues(t *testing.T) {
	vis := []model.VisibleSecret{{Name: "PINNED", Value: "Pinned-Value-0123456789xyz", AllowedHosts: []string{"a.example"}}}
	w := &Worker{redactors: newRedactorCache()}
	var g guard
	red := w.redactorFor(vis)
	g.start(red, vis, nil)
	g.derive("nothing read yet: PINNED-VALUE-0123456789XYZ")
	if got := red.String("PINNED-VALUE-0123456789XYZ"); got != "PINNED-VALUE-0123456789XYZ" {
		t.Errorf("a value the run did not read is no source: %q", got)
	}
	g.learn("PINNED", "development", "Pinned-Value-0123456789xyz", []string{"a.example"}) // the script reads it
	g.deriveValue(map[string]any{"upper": []any{"x PINNED-VALUE-0123456789XYZ y"}})
	if got := red.String("PINNED-VALUE-0123456789XYZ"); got != "[REDACTED:PINNED]" {
		t.Errorf("derived value masked as %q", got)
	}
	if names := red.Matches("PINNED-VALUE-0123456789XYZ"); len(names) != 1 || names[0] != "PINNED" {
		t.Errorf("the derived value carries the pins of PINNED: %v", names)
	}
	ms := g.masks()
	var g2 guard
	red2 := w.redactorFor(vis)
	g2.start(red2, vis, nil)
	g2.restore(ms)
	if got := red2.String("PINNED-VALUE-0123456789XYZ"); got != "[REDACTED:PINNED]" {
		t.Errorf("after restore: %q", got)
	}
	g2.derive("log: " + "zyx9876543210-eulav-dennip")
	if got := red2.String("zyx9876543210-eulav-dennip"); got != "[REDACTED:PINNED]" {
		t.Errorf("the restored source gives new derived values: %q", got)
	}
}
