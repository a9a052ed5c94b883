package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"gorm.io/gorm"
)

// Batcher writes the small records of many concurrent callers (run
// events, audit records, run outcomes) in shared transactions. A write
// waits while earlier batches are being committed; every write that queued
// up meanwhile then goes to the database in one transaction, rows of the
// same model in one multi-row INSERT. Under load this turns one commit per
// record into one commit per batch, without adding latency when the
// server is idle. Write returns only when its rows are committed, so a
// caller may rely on them as it would on its own transaction.
//
// When nothing is queued and a commit slot is free, the caller commits
// its write itself (with whatever queued meanwhile) instead of handing it
// to a loop: at a low rate the two goroutine switches of the hand-off,
// each waking an idle thread, cost more than the commit's own work.
//
// A batch that fails is retried write by write, each in its own
// transaction, so that one bad write never costs the others theirs.
type Batcher struct {
	db   *DB
	reqs chan *batchReq
	// slots holds a token per batch being committed (at most batchLoops,
	// by the loops or by callers committing their own).
	slots chan struct{}
	wg    sync.WaitGroup

	mu     sync.RWMutex // guards closed; held for reading while sending on reqs
	closed bool
}

// Write is one caller's part of a batch.
type Write struct {
	// Merge, when set, is applied first in the batch's transaction, with
	// the Merges of the same Key of every write of the batch in one call
	// (one statement for many writes). A write whose item did not apply
	// (for example: an update whose condition no longer holds) has its
	// Rows dropped; an error fails the transaction.
	Merge *Merge
	// Rows holds slices of models ([]flows.Event, []secrets.AuditRecord,
	// ...). The rows of one model from every write of the batch are
	// inserted together.
	Rows []any
	// Durable makes the batch's commit wait for the disk. A batch of
	// writes none of which is durable is committed on PostgreSQL with
	// synchronous_commit off (for that transaction only): a crash of the
	// database server may lose its last fraction of a second, never make
	// it inconsistent; a crash of Hushflow loses nothing committed.
	Durable bool
}

// Merge is one write's part of a merged statement.
type Merge struct {
	Key  string
	Item any
	// Apply applies items (of the batch's writes with this Key, in order)
	// in tx and reports for each whether it applied. The Apply of the
	// first write with the Key is used.
	Apply func(tx *gorm.DB, items []any) ([]bool, error)
	// Single, when set, reports whether Apply runs items as one
	// statement. A durable batch whose writes all have Merges of one Key
	// that are, and no Rows, is that statement alone, without a
	// transaction around it: a statement commits atomically on its own,
	// and the BEGIN and COMMIT round trips are saved (a run's checkpoint,
	// or its outcome with its last events, on PostgreSQL at a low rate).
	Single func(items []any) bool
}

type batchReq struct {
	w    Write
	done chan result
}

type result struct {
	applied bool
	err     error
}

// maxBatchRows bounds the rows of one batch (and so one transaction).
const maxBatchRows = 2000

// batchLoops is how many batches may be in flight at once: one collects
// writes while the other commits.
const batchLoops = 2

// NewBatcher starts a Batcher on db; Close stops it.
func NewBatcher(db *DB) *Batcher {
	b := &Batcher{db: db, reqs: make(chan *batchReq, 512), slots: make(chan struct{}, batchLoops)}
	b.wg.Add(batchLoops)
	for range batchLoops {
		go func() { defer b.wg.Done(); b.loop() }()
	}
	return b
}

// Write stores w and returns when it is committed. applied is false when
// w.Merge's item did not apply (its rows were not inserted). After Close, Write
// still works, in a transaction of its own.
func (b *Batcher) Write(ctx context.Context, w Write) (applied bool, err error) {
	r := &batchReq{w: w, done: make(chan result, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		res := b.apply(ctx, []*batchReq{r})
		return res[0].applied, res[0].err
	}
	if len(b.reqs) == 0 {
		select {
		case b.slots <- struct{}{}:
			// Idle: commit here. The read lock keeps Close waiting.
			defer b.mu.RUnlock()
			b.run(r)
			res := <-r.done
			return res.applied, res.err
		default:
		}
	}
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		b.mu.RUnlock()
		return false, ctx.Err()
	}
	b.mu.RUnlock()
	res := <-r.done
	return res.applied, res.err
}

// Close writes what is queued and stops the Batcher. It is safe to call
// more than once.
func (b *Batcher) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.reqs)
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}

func (b *Batcher) loop() {
	for first := range b.reqs {
		b.slots <- struct{}{}
		b.run(first)
	}
}

// run commits first with the writes queued behind it, holding a slot
// (which it gives back), and answers each write.
func (b *Batcher) run(first *batchReq) {
	batch := []*batchReq{first}
	n := rowCount(first.w)
drain:
	for n < maxBatchRows {
		select {
		case r, ok := <-b.reqs:
			if !ok {
				break drain
			}
			batch = append(batch, r)
			n += rowCount(r.w)
		default:
			break drain
		}
	}
	res := b.apply(context.Background(), batch)
	<-b.slots
	for i, r := range batch {
		r.done <- res[i]
	}
}

// apply commits batch in one transaction; if that fails and the batch has
// more than one write, each write is retried alone.
func (b *Batcher) apply(ctx context.Context, batch []*batchReq) []result {
	res, err := b.commit(ctx, batch)
	if err == nil {
		return res
	}
	if len(batch) == 1 {
		return []result{{err: err}}
	}
	out := make([]result, len(batch))
	for i, r := range batch {
		one, err := b.commit(ctx, []*batchReq{r})
		if err != nil {
			out[i] = result{err: err}
		} else {
			out[i] = one[0]
		}
	}
	return out
}

// insertChunk is the most rows of a model one INSERT of a batch takes.
const insertChunk = 500

func (b *Batcher) commit(ctx context.Context, batch []*batchReq) ([]result, error) {
	res := make([]result, len(batch))
	durable, merges := false, false
	for i, r := range batch {
		durable = durable || r.w.Durable
		merges = merges || r.w.Merge != nil
		res[i].applied = true
	}
	// Without merges every write applies: its rows can be grouped now.
	var order []reflect.Type
	var groups map[reflect.Type]reflect.Value
	if !merges {
		var err error
		if order, groups, err = groupRows(batch, res); err != nil {
			return nil, err
		}
		if len(order) == 0 {
			return res, nil
		}
		// One INSERT that must wait for the disk needs no transaction
		// around it: it commits atomically on its own, without the
		// BEGIN and COMMIT round trips (an audit record, at a low rate).
		// Rows that insert themselves in several statements (several
		// runs' inserts) get a transaction: a statement that failed
		// after another committed would leave a write stored whose
		// caller is told it failed.
		if rows := groups[order[0]]; len(order) == 1 && rows.Len() <= insertChunk && oneStatement(rows.Interface()) &&
			(durable || b.db.Dialect == SQLite) {
			if err := insertRows(b.db.WithContext(ctx), groups[order[0]].Interface()); err != nil {
				return nil, Translate(err)
			}
			return res, nil
		}
		// On PostgreSQL a row that leads others (a run's insert with the
		// audit records of its first read) goes with them in one
		// statement: one round trip where a transaction takes four.
		if len(order) == 2 && durable && b.db.Dialect == Postgres {
			if ok, err := joined(b.db.WithContext(ctx), groups[order[0]].Interface(), groups[order[1]].Interface()); ok {
				if err != nil {
					return nil, Translate(err)
				}
				return res, nil
			}
		}
	}
	if merges && durable {
		if ok, err := b.single(ctx, batch, res); ok || err != nil {
			return res, err
		}
	}
	err := b.db.Tx(ctx, func(tx *gorm.DB) error {
		if !durable && b.db.Dialect == Postgres {
			if err := tx.Exec("SET LOCAL synchronous_commit = off").Error; err != nil {
				return err
			}
		}
		if merges {
			if err := applyMerges(tx, batch, res); err != nil {
				return err
			}
			var err error
			if order, groups, err = groupRows(batch, res); err != nil {
				return err
			}
		}
		for _, t := range order {
			if err := insertRows(tx, groups[t].Interface()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, Translate(err)
	}
	return res, nil
}

// single applies batch as its one merged statement, without a
// transaction, when it is one (see Merge.Single); ok is false when it is
// not, and nothing was done.
func (b *Batcher) single(ctx context.Context, batch []*batchReq, res []result) (ok bool, err error) {
	first := batch[0].w.Merge
	items := make([]any, len(batch))
	for i, r := range batch {
		m := r.w.Merge
		if m == nil || m.Key != first.Key || hasRows(r.w) {
			return false, nil
		}
		items[i] = m.Item
	}
	if first.Single == nil || !first.Single(items) {
		return false, nil
	}
	if err := applyMerges(b.db.WithContext(ctx), batch, res); err != nil {
		return true, Translate(err)
	}
	return true, nil
}

// groupRows gathers the rows of one model from every applied write of
// batch, models in order of first appearance.
// A RowsInserter is a slice of rows (a Write's Rows) that inserts itself
// with a statement written out (Exec), which the Batcher uses rather than
// gorm's Create: for a run's audit records, gorm building the INSERT from
// the model cost more than SQLite's execution of it.
type RowsInserter interface {
	InsertRows(db *gorm.DB) error
}

// A OneStatementInserter is a RowsInserter that says whether it inserts
// its rows (up to 500) in one statement, which the Batcher may then run
// without a transaction around it.
type OneStatementInserter interface {
	RowsInserter
	OneStatement() bool
}

// A LeadInserter inserts its rows in one statement that PostgreSQL can
// run as a WITH clause of the statement inserting the rows that follow
// it in a batch (a FollowInserter): both then commit together, in one
// statement.
type LeadInserter interface {
	OneStatementInserter
	// LeadStatement is the INSERT statement of the rows and its
	// arguments; none is the error when it inserts no row (a condition
	// of its own that did not hold), nil when it always does.
	LeadStatement() (q string, args []any, none error)
}

// A FollowInserter inserts its rows, on PostgreSQL, in one statement
// where a condition holds.
type FollowInserter interface {
	OneStatementInserter
	// FollowStatement is the PostgreSQL INSERT statement that inserts
	// the rows, all of them when cond (an SQL condition) holds and none
	// otherwise, and its arguments.
	FollowStatement(cond string) (q string, args []any)
}

// joined inserts lead and then follow, when they are a LeadInserter and
// a FollowInserter of one statement each, as one statement: the lead's
// INSERT as its WITH clause, the rows that follow inserted only if the
// lead's were. ok is false when they are not, and nothing was done.
// A lead that inserted nothing fails it with the lead's none error, and
// nothing is stored.
func joined(db *gorm.DB, lead, follow any) (ok bool, err error) {
	l, lok := lead.(LeadInserter)
	f, fok := follow.(FollowInserter)
	if !lok || !fok || !l.OneStatement() || !f.OneStatement() || reflect.ValueOf(follow).Len() > insertChunk {
		return false, nil
	}
	lq, largs, none := l.LeadStatement()
	fq, fargs := f.FollowStatement("EXISTS (SELECT 1 FROM lead)")
	res, err := Exec(db, "WITH lead AS ("+lq+" RETURNING 1) "+fq, append(largs, fargs...)...)
	if err != nil {
		return true, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return true, err
	}
	if n == 0 {
		return true, cmp.Or(none, errors.New("store: the lead rows of a batch inserted nothing"))
	}
	return true, nil
}

// oneStatement reports whether rows (a slice of models, inserted with
// gorm's Create, or a RowsInserter) are inserted in one statement, up to
// insertChunk of them.
func oneStatement(rows any) bool {
	if r, ok := rows.(OneStatementInserter); ok {
		return r.OneStatement()
	}
	_, custom := rows.(RowsInserter)
	return !custom
}

// insertRows inserts rows, a slice of models or a RowsInserter.
func insertRows(db *gorm.DB, rows any) error {
	if r, ok := rows.(RowsInserter); ok {
		return r.InsertRows(db)
	}
	return db.CreateInBatches(rows, insertChunk).Error
}

func groupRows(batch []*batchReq, res []result) ([]reflect.Type, map[reflect.Type]reflect.Value, error) {
	var order []reflect.Type
	groups := map[reflect.Type]reflect.Value{}
	for i, r := range batch {
		if !res[i].applied {
			continue
		}
		for _, rows := range r.w.Rows {
			v := reflect.ValueOf(rows)
			if v.Kind() != reflect.Slice {
				return nil, nil, errors.New("store: Batcher rows must be slices of models")
			}
			if v.Len() == 0 {
				continue
			}
			t := v.Type()
			g, ok := groups[t]
			if !ok {
				order = append(order, t)
				g = reflect.MakeSlice(t, 0, v.Len())
			}
			groups[t] = reflect.AppendSlice(g, v)
		}
	}
	return order, groups, nil
}

// applyMerges applies the Merges of batch, one call per Key, and records
// in res which did not apply.
func applyMerges(tx *gorm.DB, batch []*batchReq, res []result) error {
	type group struct {
		apply func(*gorm.DB, []any) ([]bool, error)
		items []any
		idx   []int
	}
	var keys []string
	groups := map[string]*group{}
	for i, r := range batch {
		m := r.w.Merge
		if m == nil {
			continue
		}
		g := groups[m.Key]
		if g == nil {
			g = &group{apply: m.Apply}
			groups[m.Key] = g
			keys = append(keys, m.Key)
		}
		g.items = append(g.items, m.Item)
		g.idx = append(g.idx, i)
	}
	for _, k := range keys {
		g := groups[k]
		ok, err := g.apply(tx, g.items)
		if err != nil {
			return err
		}
		if len(ok) != len(g.items) {
			return fmt.Errorf("store: merge %q applied %d results for %d items", k, len(ok), len(g.items))
		}
		for j, i := range g.idx {
			res[i].applied = ok[j]
		}
	}
	return nil
}

// hasRows reports whether w has Rows to insert.
func hasRows(w Write) bool {
	for _, rows := range w.Rows {
		if v := reflect.ValueOf(rows); v.Kind() == reflect.Slice && v.Len() > 0 {
			return true
		}
	}
	return false
}

// rowCount is the number of rows w writes: 1 for itself, its Rows, and
// those its Merge's item stores, when it counts them (RowCount).
func rowCount(w Write) int {
	n := 1
	if m := w.Merge; m != nil {
		if c, ok := m.Item.(interface{ RowCount() int }); ok {
			n += c.RowCount()
		}
	}
	for _, rows := range w.Rows {
		if v := reflect.ValueOf(rows); v.Kind() == reflect.Slice {
			n += v.Len()
		}
	}
	return n
}
