package beat

import (
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	base := time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		now    time.Duration // after base
		d      time.Duration
		phase  time.Duration
		expect time.Duration
	}{
		{0, time.Second, 0, time.Second},                                                      // on a beat: the next one
		{300 * time.Millisecond, time.Second, 0, 700 * time.Millisecond},                      // within a second
		{300 * time.Millisecond, time.Second, 400 * time.Millisecond, 100 * time.Millisecond}, // before this second's beat
		{500 * time.Millisecond, time.Second, 400 * time.Millisecond, 900 * time.Millisecond}, // after it
		{2 * time.Second, 5 * time.Second, 250 * time.Millisecond, 3250 * time.Millisecond},   // 19:00:05.25
		{7 * time.Millisecond, 10 * time.Millisecond, 0, 3 * time.Millisecond},
	} {
		if got := until(base.Add(c.now), c.d, c.phase); got != c.expect {
			t.Errorf("until(+%v, %v, phase %v) = %v, want %v", c.now, c.d, c.phase, got, c.expect)
		}
	}
}

// Loops of periods that divide each other meet on the longer one's beats:
// what makes them share a wake-up.
func TestBeatsMeet(t *testing.T) {
	base := time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
	phase := 730 * time.Millisecond
	now := base.Add(1234 * time.Millisecond)
	five := now.Add(until(now, 5*time.Second, phase))
	for at := now; at.Before(five); {
		at = at.Add(until(at, time.Second, phase))
		if at.After(five) {
			t.Fatalf("the 1 s beats passed the 5 s beat %v at %v", five, at)
		}
		if at.Equal(five) {
			return
		}
	}
	t.Fatalf("no 1 s beat at the 5 s beat %v", five)
}

// A Ticker delivers a beat each time it is armed again.
func TestTicker(t *testing.T) {
	k := NewTicker(10 * time.Millisecond)
	defer k.Stop()
	for i := range 3 {
		select {
		case <-k.C:
		case <-time.After(10 * time.Second):
			t.Fatalf("beat %d never came", i)
		}
		k.Next()
	}
}
