package beat

import (
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	base := time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	for _, c := range []struct {
		now, d, phase, expect time.Duration
	}{
		{0, time.Second, 0, time.Second},                        // on a beat: the next one
		{300 * ms, time.Second, 0, 700 * ms},                    // within a second
		{300 * ms, time.Second, 400 * ms, 100 * ms},             // before this second's beat
		{500 * ms, time.Second, 400 * ms, 900 * ms},             // after it
		{2 * time.Second, 5 * time.Second, 250 * ms, 4250 * ms}, // 19:00:06.25, a second's beat
		{7 * ms, 10 * ms, 0, 3 * ms},                            // under a second: its own beats
		{1500 * ms, time.Hour, 0, time.Hour - 500*ms},           // an hour, ending on a second's beat
	} {
		if got := until(base.Add(c.now), c.d, c.phase); got != c.expect {
			t.Errorf("until(+%v, %v, phase %v) = %v, want %v", c.now, c.d, c.phase, got, c.expect)
		}
	}
}

// Every wait of a second or more ends on one of the second's beats, and
// waits at most its period and more than its period minus a second: the
// loops of such periods share the wake-ups.
func TestWaitsEndOnBeats(t *testing.T) {
	base := time.Date(2026, 12, 6, 19, 0, 0, 0, time.UTC)
	phase := 730 * time.Millisecond
	for _, d := range []time.Duration{time.Second, 2500 * time.Millisecond, 5 * time.Second, 30 * time.Second} {
		for now := base; now.Before(base.Add(3 * time.Second)); now = now.Add(37 * time.Millisecond) {
			w := until(now, d, phase)
			if w > d || w <= d-time.Second {
				t.Fatalf("until(%v, %v) = %v: outside (d-1s, d]", now.Format("05.000"), d, w)
			}
			if off := now.Add(w).Sub(base.Add(phase)) % time.Second; off != 0 {
				t.Fatalf("until(%v, %v) ends %v past a beat", now.Format("05.000"), d, off)
			}
		}
	}
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

func TestNewTickerRefusesNoPeriod(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewTicker(0) did not panic")
		}
	}()
	NewTicker(0)
}
