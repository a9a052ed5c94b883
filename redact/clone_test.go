package redact

import "testing"

func TestCloneIsIndependent(t *testing.T) {
	base := New()
	base.AddAll(map[string]string{"A": "alpha-value-123", "B": "bravo-value-456"})
	c := base.Clone()
	c.Add("RUN", "runtime-mask-789")
	if got := c.String("alpha-value-123 runtime-mask-789"); got != "[REDACTED:A] [REDACTED:RUN]" {
		t.Fatalf("clone: %q", got)
	}
	if got := base.String("runtime-mask-789"); got != "runtime-mask-789" {
		t.Fatalf("a clone's value reached the original: %q", got)
	}
	base.Add("C", "charlie-value-000")
	if got := c.String("charlie-value-000"); got != "charlie-value-000" {
		t.Fatalf("the original's later value reached the clone: %q", got)
	}
	if got := c.String("bravo-value-456"); got != "[REDACTED:B]" {
		t.Fatalf("clone lost a value: %q", got)
	}
}
