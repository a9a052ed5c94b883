package secrets

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hushflow/hushflow/internal/startstop"
	"github.com/hushflow/hushflow/store"
)

// Observer keeps Config.Observe (the server log's redactor) knowing every
// live value: every version of every secret that still holds ciphertext,
// whichever process wrote it. ObserveAll loads them at start; the watch
// polls a change counter of the versions (their number and the number
// wiped: both only grow, since version rows are never removed) and loads
// what is new when it moves, so a value created or updated on another
// replica is known within one interval.
type Observer struct {
	startstop.Base
	s *Store
	// every is the poll interval.
	every time.Duration
	last  changeCount
	seen  map[versionKey]bool
}

type versionKey struct {
	id      string
	version int
}

type changeCount struct {
	Versions int64
	Wiped    int64
}

// NewObserver returns the observer of s's values, polling every interval
// (1s when zero) once started.
func (s *Store) NewObserver(every time.Duration) *Observer {
	if every <= 0 {
		every = time.Second
	}
	return &Observer{s: s, every: every, seen: map[versionKey]bool{}}
}

// ObserveAll passes every live value not passed yet to Config.Observe and
// returns how many it passed. A value that does not decrypt is left out
// (logged and audited as a decrypt_failure). The load is audited as one
// redaction_load record (actor "server-log").
func (o *Observer) ObserveAll(ctx context.Context) (int, error) {
	s := o.s
	if s.observe == nil {
		return 0, nil
	}
	c, err := o.count(ctx)
	if err != nil {
		return 0, err
	}
	var rows []secretRow
	if err := s.db.WithContext(ctx).Where("deleted_at IS NULL").Find(&rows).Error; err != nil {
		return 0, store.Translate(err)
	}
	byID := make(map[string]*secretRow, len(rows))
	for i := range rows {
		byID[rows[i].ID] = &rows[i]
	}
	var vers []versionRow
	if err := s.db.WithContext(ctx).Where("wiped = ?", false).Find(&vers).Error; err != nil {
		return 0, store.Translate(err)
	}
	n := 0
	for i := range vers {
		v := &vers[i]
		row, ok := byID[v.SecretID]
		k := versionKey{v.SecretID, v.Version}
		if !ok || o.seen[k] {
			continue
		}
		if _, _, err := s.open(ctx, row, v, "server-log", "", ""); err != nil {
			continue // logged and audited by open
		}
		o.seen[k] = true
		n++
	}
	if n > 0 {
		rec := AuditRecord{ID: newID(), At: s.now(), Actor: "server-log", Action: ActionRedactionLoad,
			Detail: strconv.Itoa(n) + " secret values loaded into the server log's redactor"}
		if err := s.db.WithContext(ctx).Create(&rec).Error; err != nil {
			return n, fmt.Errorf("record redaction load: %w", store.Translate(err))
		}
	}
	o.last = c
	return n, nil
}

// Watch starts the poll (until ctx is done or Stop).
func (o *Observer) Watch(ctx context.Context) {
	o.Start(ctx, func(ctx context.Context) {
		t := time.NewTicker(o.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			c, err := o.count(ctx)
			if err != nil || c == o.last {
				continue // a database error: the next tick tries again
			}
			if _, err := o.ObserveAll(ctx); err != nil && ctx.Err() == nil {
				o.s.log.Warn("load new secret values into the server log's redactor", "err", err)
			}
		}
	})
}

// count reads the change counter of the secret versions.
func (o *Observer) count(ctx context.Context) (changeCount, error) {
	var c changeCount
	err := o.s.db.WithContext(ctx).Raw(`SELECT COUNT(*) AS versions, COALESCE(SUM(CASE WHEN wiped THEN 1 ELSE 0 END), 0) AS wiped FROM secret_versions`).
		Scan(&c).Error
	return c, store.Translate(err)
}
