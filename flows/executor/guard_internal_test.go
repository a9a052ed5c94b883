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
	g.start(red, vis)
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
	g2.start(red2, vis)
	g2.restore(ms)
	if p := g2.pins(); !reflect.DeepEqual(p["K@production"], []string{"a.example"}) {
		t.Errorf("after restore: %v", p)
	}
	if got := red2.String("prod-value-0123456789"); got != "[REDACTED:K@production]" {
		t.Errorf("after restore: %q", got)
	}
}
