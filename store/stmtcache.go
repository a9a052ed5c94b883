package store

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
	"strings"
	"sync"
)

// SQLite parses every statement it is given. gorm's own statement cache
// (PrepareStmt) keeps statements prepared outside transactions only: one
// first prepared in a transaction belongs to it, and every later
// transaction prepares it again, which made parsing a fifth of the
// server's CPU per run at 30 runs/s (docs/performance.md, "Cost per run
// at a low rate"). stmtConnector keeps instead each connection's prepared
// statements in the connection, whatever runs them.

// maxConnStmts bounds the statements kept per connection. Multi-row
// inserts of different sizes and IN lists of different lengths are
// different statements; the least recently used idle one goes first.
const maxConnStmts = 256

// stmtConnector opens connections of drv that keep their statements.
type stmtConnector struct {
	drv driver.Driver
	dsn string
}

func (c *stmtConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	for _, need := range []bool{implements[driver.ConnBeginTx](conn), implements[driver.ConnPrepareContext](conn),
		implements[driver.QueryerContext](conn), implements[driver.ExecerContext](conn)} {
		if !need {
			conn.Close()
			return nil, errors.New("store: the SQLite driver lacks a context method")
		}
	}
	return &stmtConn{Conn: conn, lru: list.New(), byQuery: map[string]*list.Element{}}, nil
}

func (c *stmtConnector) Driver() driver.Driver { return c.drv }

func implements[T any](v any) bool { _, ok := v.(T); return ok }

// stmtConn is a connection that keeps its prepared statements. database/sql
// uses a connection from one goroutine at a time; rows it returned may
// still be open while it runs other statements (in a transaction), so a
// statement with open rows is neither reused nor closed: a statement asked
// for again meanwhile is prepared for that use only.
type stmtConn struct {
	driver.Conn
	mu      sync.Mutex // guards lru, byQuery and each entry's rows (rows close from any goroutine)
	lru     *list.List // of *cachedStmt, most recently used first
	byQuery map[string]*list.Element
	// prepared counts the statements this connection prepared.
	prepared int
}

type cachedStmt struct {
	query string
	si    driver.Stmt
	rows  int // rows of this statement still open
}

// acquire returns the kept statement for query, prepared if needed, and
// marks it in use when rows will be read from it; release undoes that. A
// statement kept nowhere (the cache is full of statements in use, or this
// one is) is returned with owned true: the caller closes it.
func (c *stmtConn) acquire(ctx context.Context, query string) (cs *cachedStmt, owned bool, err error) {
	c.mu.Lock()
	if e, ok := c.byQuery[query]; ok {
		cs = e.Value.(*cachedStmt)
		if cs.rows == 0 {
			c.lru.MoveToFront(e)
			c.mu.Unlock()
			return cs, false, nil
		}
		c.mu.Unlock()
		si, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
		if err != nil {
			return nil, false, err
		}
		return &cachedStmt{query: query, si: si}, true, nil
	}
	c.mu.Unlock()
	si, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, false, err
	}
	cs = &cachedStmt{query: query, si: si}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prepared++
	if c.lru.Len() >= maxConnStmts {
		// Drop the least recently used statement no rows are read from.
		for e := c.lru.Back(); e != nil; e = e.Prev() {
			if old := e.Value.(*cachedStmt); old.rows == 0 {
				c.lru.Remove(e)
				delete(c.byQuery, old.query)
				_ = old.si.Close()
				break
			}
		}
		if c.lru.Len() >= maxConnStmts {
			return cs, true, nil
		}
	}
	c.byQuery[query] = c.lru.PushFront(cs)
	return cs, false, nil
}

func (c *stmtConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	cs, owned, err := c.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	if owned {
		return cs.si, nil
	}
	// database/sql closes what it prepared when it is done with it; the
	// connection keeps the statement.
	return keptStmt{cs.si}, nil
}

func (c *stmtConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *stmtConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if script(query, args) {
		return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	cs, owned, err := c.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	if owned {
		defer cs.si.Close()
	}
	return cs.si.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *stmtConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if script(query, args) {
		return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	}
	cs, owned, err := c.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	if !owned {
		c.mu.Lock()
		cs.rows++
		c.mu.Unlock()
	}
	rows, err := cs.si.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		c.done(cs, owned)
		return nil, err
	}
	return &stmtRows{Rows: rows, c: c, cs: cs, owned: owned}, nil
}

// script reports whether query, given args, is not worth keeping: a text
// that may hold several statements (a migration's script, run once), or
// a savepoint's, whose name changes each time (gorm's nested
// transactions). Those go to the driver as they are. Any other statement
// is kept, with parameters or without: the transactions' BEGIN IMMEDIATE
// and COMMIT, and the periodic reads that take no parameter (the secrets
// observer's count, each second), were parsed again each time
// (docs/performance.md, "ninth round").
func script(query string, args []driver.NamedValue) bool {
	if len(args) > 0 {
		return false
	}
	if strings.Contains(query, ";") {
		return true
	}
	for _, p := range []string{"SAVEPOINT", "RELEASE", "ROLLBACK TO"} {
		if len(query) >= len(p) && strings.EqualFold(query[:len(p)], p) {
			return true
		}
	}
	return false
}

// done ends a use of cs that read rows.
func (c *stmtConn) done(cs *cachedStmt, owned bool) {
	if owned {
		_ = cs.si.Close()
		return
	}
	c.mu.Lock()
	cs.rows--
	c.mu.Unlock()
}

func (c *stmtConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *stmtConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *stmtConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *stmtConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *stmtConn) Close() error {
	c.mu.Lock()
	for e := c.lru.Front(); e != nil; e = e.Next() {
		_ = e.Value.(*cachedStmt).si.Close()
	}
	c.lru.Init()
	clear(c.byQuery)
	c.mu.Unlock()
	return c.Conn.Close()
}

// keptStmt is a kept statement handed to database/sql, whose Close leaves
// it to its connection.
type keptStmt struct{ driver.Stmt }

func (keptStmt) Close() error { return nil }

func (s keptStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s keptStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

// stmtRows ends its statement's use when closed.
type stmtRows struct {
	driver.Rows
	c     *stmtConn
	cs    *cachedStmt
	owned bool
	once  sync.Once
}

func (r *stmtRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(func() { r.c.done(r.cs, r.owned) })
	return err
}

// The column type methods of the driver's rows, which database/sql looks
// for on the rows it is given.

func (r *stmtRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *stmtRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *stmtRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *stmtRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *stmtRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
