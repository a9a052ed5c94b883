package apptest

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and
// ends the goroutine, as t.Fatalf does, without failing the real test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestEventually(t *testing.T) {
	t.Run("met", func(t *testing.T) {
		calls := 0
		Eventually(t, 10*time.Second, "three calls", func() error {
			calls++
			if calls < 3 {
				return fmt.Errorf("%d calls", calls)
			}
			return nil
		})
		if calls != 3 {
			t.Fatalf("cond called %d times, want 3", calls)
		}
	})
	t.Run("never met", func(t *testing.T) {
		rec := &fatalRecorder{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			Eventually(rec, 100*time.Millisecond, "the impossible", func() error { return errors.New("still 42") })
			t.Error("Eventually returned although cond never returned nil")
		}()
		<-done
		if !strings.Contains(rec.msg, "waiting for the impossible: still 42") || !strings.Contains(rec.msg, "100ms") {
			t.Fatalf("failure message %q does not name what was awaited and what was seen", rec.msg)
		}
	})
}
