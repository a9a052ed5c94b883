package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
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
// is bound to the connection; fn must not keep it, nor begin a
// transaction of its own on it (gorm's Transaction on tx would begin a
// second one on the connection, not a savepoint). When fn fails or
// panics, or the commit fails, the transaction is rolled back; a
// connection whose rollback fails too is closed rather than given back
// to the pool in the middle of a transaction. On PostgreSQL a commit
// that the server answers with ROLLBACK (a statement failed and fn did
// not say so) is an error, as database/sql's Tx.Commit makes it.
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
	if err := db.commit(ctx, conn); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	open = false
	return nil
}

// ErrRolledBack is the error of a commit that PostgreSQL answered with
// ROLLBACK: a statement of the transaction had failed.
var ErrRolledBack = errors.New("the transaction was rolled back: one of its statements failed")

func (db *DB) commit(ctx context.Context, conn *sql.Conn) error {
	if db.Dialect != Postgres {
		_, err := conn.ExecContext(ctx, "COMMIT")
		return err
	}
	// database/sql's Exec reports no command tag: ask pgx for it.
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("the connection is a %T, not pgx's", dc)
		}
		tag, err := sc.Conn().Exec(ctx, "COMMIT")
		if err != nil {
			return err
		}
		if tag.String() == "ROLLBACK" {
			return ErrRolledBack
		}
		return nil
	})
}

// Short is the context for a short statement on a hot path: a lookup by
// key, or a one-row insert. On SQLite it is ctx without its cancellation
// (and its deadline): the statement runs in this process in well under a
// millisecond (WAL readers do not wait for the writer; a writer waits at
// most SQLite's busy timeout for the write lock), while a cancellable
// context costs a goroutine per statement (the driver's interrupter) and
// one more for the rows of a read (database/sql's watcher), each waking
// an idle thread at a low rate. On PostgreSQL it is ctx: there
// cancellation is what ends a statement on a connection that stopped
// answering.
func (db *DB) Short(ctx context.Context) context.Context {
	if db.Dialect == SQLite {
		return context.WithoutCancel(ctx)
	}
	return ctx
}
