package redact

import (
	"fmt"
	"sync"
	"testing"
)

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

// Clones of one Redactor that add names at the same time keep their own
// masks: they shared the room after the base's masks and wrote into it
// together (a data race under -race, and a clone could show another
// clone's name).
func TestClonesAddNamesConcurrently(t *testing.T) {
	base := New()
	base.Add("BASE", "base-value-0123456789")
	base.Add("", "x-grow-the-masks-array-0123456789")
	base.Add("THIRD", "third-value-0123456789") // 3 masks in room for 4
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := base.Clone()
			name, v := fmt.Sprintf("N%d", i), fmt.Sprintf("clone-%d-value-0123456789", i)
			c.Add(name, v)
			if got, want := c.String(v), "[REDACTED:"+name+"]"; got != want {
				t.Errorf("clone %d: %q, want %q", i, got, want)
			}
		}()
	}
	wg.Wait()
}
