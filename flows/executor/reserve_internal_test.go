package executor

import (
	"sync"
	"testing"
	"time"
)

// A run queued through this process while the claim loop holds the free
// slots for a claim waits for the claim to give back those it did not
// fill, and starts at once in one of them, rather than be queued for the
// next claim (which, with nothing else to wake it, could be a poll away).
func TestReserveWaitsForClaimInProgress(t *testing.T) {
	w := New(Config{})
	w.reserveWait = time.Hour
	var runs sync.WaitGroup
	d := &dispatch{runs: &runs, slots: make(chan struct{}, 2)}
	w.disp = d

	// The claim loop takes both free slots and claims.
	w.claiming <- struct{}{}
	d.slots <- struct{}{}
	d.slots <- struct{}{}
	got := make(chan *Reservation)
	go func() { got <- w.Reserve() }()
	// The claim found one run: the other slot goes back.
	<-d.slots
	<-w.claiming

	v := <-got
	if v == nil {
		t.Fatal("Reserve gave up while a claim held the free slots; want the slot the claim gave back")
	}
	if w.backlog.Load() {
		t.Error("backlog set although the run got a slot")
	}
	v.Cancel()
	if n := len(d.slots); n != 1 {
		t.Errorf("%d slots taken after Cancel, want 1 (the claimed run's)", n)
	}

	// With every slot taken by runs, Reserve gives up and says why.
	d.slots <- struct{}{}
	if v := w.Reserve(); v != nil {
		t.Fatal("Reserve took a slot although all were taken")
	}
	if !w.backlog.Load() {
		t.Error("backlog not set when the slots were full")
	}
}

// A claim the database does not answer (it holds the free slots) makes
// Reserve give up after reserveWait, not wait for the claim: the run is
// then queued, as its insert would have to wait for the database anyway.
func TestReserveGivesUpOnAStuckClaim(t *testing.T) {
	w := New(Config{})
	w.reserveWait = time.Millisecond
	var runs sync.WaitGroup
	d := &dispatch{runs: &runs, slots: make(chan struct{}, 1)}
	w.disp = d
	w.claiming <- struct{}{} // a claim in progress, holding the slot,
	d.slots <- struct{}{}    // which it never gives back
	got := make(chan *Reservation)
	go func() { got <- w.Reserve() }()
	select {
	case v := <-got:
		if v != nil {
			t.Fatal("Reserve took a slot held by a claim")
		}
	case <-time.After(time.Minute):
		t.Fatal("Reserve still waits for a claim that does not end")
	}
	if !w.backlog.Load() {
		t.Error("backlog not set when Reserve gave up")
	}
}
