package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// Query runs q with args on db's connection (its transaction, if it is
// one) through database/sql itself, not gorm's Raw, which builds the
// statement again value by value (clause.Expr.Build and AddVar: 4% of a
// PostgreSQL run's CPU at 30 runs/s, from the few hot statements that
// carry a run's checkpoint, outcome and events; docs/performance.md,
// "seventh round"). q is written with ? placeholders, which become $1,
// $2, ... on PostgreSQL: it must hold no other ?.
func Query(db *gorm.DB, q string, args ...any) (*sql.Rows, error) {
	return db.Statement.ConnPool.QueryContext(rawContext(db), placeholders(db, q), args...)
}

// Exec is Query for a statement that returns no rows.
func Exec(db *gorm.DB, q string, args ...any) (sql.Result, error) {
	return db.Statement.ConnPool.ExecContext(rawContext(db), placeholders(db, q), args...)
}

func rawContext(db *gorm.DB) context.Context {
	if ctx := db.Statement.Context; ctx != nil {
		return ctx
	}
	return context.Background()
}

// placeholders numbers q's ? placeholders for PostgreSQL.
func placeholders(db *gorm.DB, q string) string {
	if db.Dialector.Name() != "postgres" {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + strings.Count(q, "?")*3)
	n := 0
	for {
		i := strings.IndexByte(q, '?')
		if i < 0 {
			b.WriteString(q)
			return b.String()
		}
		n++
		b.WriteString(q[:i])
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
		q = q[i+1:]
	}
}

// Values is head, n rows of width placeholders ("(?, ?, ?)"), then tail:
// the VALUES of a written-out INSERT of n rows (or, one row wide, the
// list of an IN).
func Values(head string, n, width int, tail string) string {
	row := "(?" + strings.Repeat(", ?", width-1) + ")"
	var sb strings.Builder
	sb.Grow(len(head) + n*(len(row)+2) + len(tail))
	sb.WriteString(head)
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(row)
	}
	sb.WriteString(tail)
	return sb.String()
}
