package executor

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hushflow/hushflow/flows/model"
	"github.com/hushflow/hushflow/store"
)

// pendingInsert is the insert of a run that started before its row was
// stored (Reservation.StartInserting). The run's first commit stores it,
// before any block acts: with the audit record of its secrets' load, and
// of its first read when a block's configuration reads a secret (one
// commit a run fewer than an insert of its own: on SQLite one
// transaction, on PostgreSQL one statement). Whoever queued the run
// waits for that commit and answers only then, as it did for its own
// insert.
type pendingInsert struct {
	rows    any // a store.RowsInserter that inserts the run
	batcher *store.Batcher
	// stored is called once the row is stored, before the waiter hears
	// of it (it registers the run with the heartbeat).
	stored func()

	mu sync.Mutex // guards via; held while the rows are committed alone
	// via is the run's secrets once they hold the rows (RunSecrets.Lead).
	via model.RunSecrets

	once sync.Once
	done chan struct{} // closed once err is final
	err  error
}

// insertWait is how long whoever queued a run waits for its first commit
// before it has the row stored alone: a run whose first block takes a
// while to evaluate (or whose secrets load waits for the database) is
// answered for all the same.
const insertWait = 100 * time.Millisecond

func newPendingInsert(rows any, batcher *store.Batcher) *pendingInsert {
	return &pendingInsert{rows: rows, batcher: batcher, done: make(chan struct{})}
}

// finish records how the insert went; only the first call counts.
func (p *pendingInsert) finish(err error) {
	p.once.Do(func() {
		p.err = err
		if err == nil && p.stored != nil {
			p.stored()
		}
		close(p.done)
	})
}

// result reports whether the insert is over and, if so, its error.
func (p *pendingInsert) result() (over bool, err error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// wait returns the insert's error once it is over, having the row
// stored (flush) when no commit of the run did within insertWait.
func (p *pendingInsert) wait() error {
	t := time.NewTimer(insertWait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.flush(context.Background())
	}
	<-p.done
	return p.err
}

// handTo has the run's secrets store the rows with their next commit.
func (p *pendingInsert) handTo(rs model.RunSecrets) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if over, _ := p.result(); over || p.via != nil {
		return
	}
	p.via = rs
	rs.Lead(p.rows, p.finish)
}

// flush stores the row now, when no commit has yet: with the next commit
// of the run's secrets when they hold it (which carries it, or waits for
// the one in progress that does), alone otherwise. The run's goroutine
// and its waiter may both call it.
func (p *pendingInsert) flush(ctx context.Context) {
	if over, _ := p.result(); over {
		return
	}
	ctx = context.WithoutCancel(ctx)
	p.mu.Lock()
	via := p.via
	if via == nil {
		if over, _ := p.result(); !over {
			_, err := p.batcher.Write(ctx, store.Write{Rows: []any{p.rows}, Durable: true})
			p.finish(err)
		}
	}
	p.mu.Unlock()
	if via != nil {
		_ = via.Flush(ctx) // its error is the insert's, given to finish
	}
}

// errNotStored is matched by the error of every write of a run whose
// insert failed: such a run is dropped, never retried (its waiter has
// its error).
var errNotStored = errors.New("the run was not stored")

type notStoredError struct{ err error }

func (e *notStoredError) Error() string        { return "the run was not stored: " + e.err.Error() }
func (e *notStoredError) Is(target error) bool { return target == errNotStored }

// flushInsert stores the run's row now, when no commit has yet (flush).
// A run calls it before any block acts and before any write of its own.
func (x *execution) flushInsert(ctx context.Context) error {
	p := x.insert
	if p == nil {
		return nil
	}
	p.flush(ctx)
	if over, err := p.result(); !over {
		return &notStoredError{errors.New("no commit stored it")}
	} else if err != nil {
		return &notStoredError{err}
	}
	return nil
}

// notStored reports whether the run's insert failed (the run is then
// dropped: nothing of it is stored).
func (x *execution) notStored() bool {
	if x.insert == nil {
		return false
	}
	over, err := x.insert.result()
	return over && err != nil
}
