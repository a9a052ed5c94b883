package store

import (
	"context"
	"database/sql/driver"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Tx runs fn in one transaction, as gorm's Transaction does, but begins
// and ends it with statements (BEGIN, COMMIT, ROLLBACK) on a connection
// taken from the pool for it, rather than with a database/sql Tx. A
// database/sql Tx starts a goroutine to watch its context, and every
// query inside it another one to watch the Tx's; each is a thread woken
// on an idle server, which at a low rate costs more than the statements
// (docs/performance.md, "Cost per run at a low rate, third round"). The
// store's hot transactions (the Batcher's) go through here.
//
// The transaction takes SQLite's write lock at its start (BEGIN
// IMMEDIATE, as _txlock=immediate does for a database/sql Tx). fn's tx
// is bound to the connection; fn must not keep it. When fn fails or
// panics, or the commit fails, the transaction is rolled back; a
// connection whose rollback fails too is closed rather than given back
// to the pool in the middle of a transaction.
func (db *DB) Tx(ctx context.Context, fn func(tx *gorm.DB) error) (err error) {
	sqlDB, err := db.DB.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	begin := "BEGIN"
	if db.Dialect == SQLite {
		begin = "BEGIN IMMEDIATE"
	}
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		return err
	}
	open := true
	defer func() {
		if !open {
			return
		}
		// Rolled back even when ctx is done, within a bound.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, rerr := conn.ExecContext(rctx, "ROLLBACK"); rerr != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	tx := db.DB.Session(&gorm.Session{Context: ctx, NewDB: true})
	tx.Statement.ConnPool = conn
	if err := fn(tx); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	open = false
	return nil
}

// Short is the context for a short read on a hot path (a lookup by key).
// On SQLite it is ctx without its cancellation: the read runs in this
// process in well under a millisecond and takes no lock it could wait
// for (WAL readers do not wait for the writer), while a cancellable
// context costs two goroutines per statement, database/sql's watcher of
// its rows and the driver's interrupter. On PostgreSQL it is ctx: there
// cancellation is what ends a statement on a connection that stopped
// answering.
func (db *DB) Short(ctx context.Context) context.Context {
	if db.Dialect == SQLite {
		return context.WithoutCancel(ctx)
	}
	return ctx
}
