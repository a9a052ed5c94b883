package flows

import "sync"

// broker fans stored events out to live subscribers in this process.
// Subscribers in other processes poll the database (see Follow).
type broker struct {
	mu   sync.Mutex // guards subs
	subs map[string]map[chan struct{}]bool
}

func newBroker() *broker { return &broker{subs: map[string]map[chan struct{}]bool{}} }

// subscribe returns a channel that receives a signal whenever events of
// runID are stored; cancel releases it.
func (b *broker) subscribe(runID string) (ch chan struct{}, cancel func()) {
	ch = make(chan struct{}, 1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs[runID] == nil {
		b.subs[runID] = map[chan struct{}]bool{}
	}
	b.subs[runID][ch] = true
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs[runID], ch)
		if len(b.subs[runID]) == 0 {
			delete(b.subs, runID)
		}
	}
}

func (b *broker) notify(runID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs[runID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
