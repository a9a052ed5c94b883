package jsvm

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// One watchdog goroutine interrupts every runtime whose deadline passed or
// whose context ended. It is cheaper than a timer per evaluation: a run
// costs a map insert and delete. The goroutine ticks every watchTick while
// runs are registered and exits after watchIdle without any.
const (
	watchTick = 2 * time.Millisecond
	watchIdle = time.Second
)

type watchEntry struct {
	ctx      context.Context
	rt       *goja.Runtime
	deadline time.Time
	timeout  time.Duration
}

var dog struct {
	mu      sync.Mutex // guards entries and running
	entries map[*watchEntry]struct{}
	running bool
}

func watch(ctx context.Context, rt *goja.Runtime, deadline time.Time) *watchEntry {
	e := &watchEntry{ctx: ctx, rt: rt, deadline: deadline, timeout: time.Until(deadline)}
	dog.mu.Lock()
	defer dog.mu.Unlock()
	if dog.entries == nil {
		dog.entries = make(map[*watchEntry]struct{})
	}
	dog.entries[e] = struct{}{}
	if !dog.running {
		dog.running = true
		go watchLoop()
	}
	return e
}

func (e *watchEntry) stop() {
	dog.mu.Lock()
	defer dog.mu.Unlock()
	delete(dog.entries, e)
}

func watchLoop() {
	t := time.NewTicker(watchTick)
	defer t.Stop()
	idleSince := time.Now()
	for now := range t.C {
		var fire []*watchEntry
		dog.mu.Lock()
		for e := range dog.entries {
			if now.After(e.deadline) || e.ctx.Err() != nil {
				fire = append(fire, e)
				delete(dog.entries, e)
			}
		}
		if len(dog.entries) > 0 || len(fire) > 0 {
			idleSince = now
		} else if now.Sub(idleSince) > watchIdle {
			dog.running = false
			dog.mu.Unlock()
			return
		}
		dog.mu.Unlock()
		for _, e := range fire {
			if err := e.ctx.Err(); err != nil && !now.After(e.deadline) {
				e.rt.Interrupt(ctxError(err, Limits{Timeout: e.timeout}))
				continue
			}
			e.rt.Interrupt(&Error{Code: CodeTimeout, Message: fmt.Sprintf("evaluation exceeded its deadline of %s", e.timeout.Round(time.Millisecond))})
		}
	}
}
