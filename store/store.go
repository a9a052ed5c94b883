// Package store opens Hushflow's database: an embedded SQLite file by
// default, PostgreSQL when a URL is given. It applies versioned migrations
// and translates driver errors into the sentinels of errors.go, so that no
// other package sees a gorm or driver error type.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/libtnb/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
	msqlite "modernc.org/sqlite"
)

// Dialect names a supported database.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Config says which database to open.
type Config struct {
	// DatabaseURL is a PostgreSQL URL (postgres://user:pass@host:5432/db).
	// Empty means the embedded SQLite file in DataDir.
	DatabaseURL string
	// DataDir holds the SQLite file (hushflow.db) and, by default, the key
	// file. Created with mode 0700 when missing.
	DataDir string
	// Logger receives store messages; nil means slog.Default().
	Logger *slog.Logger
	// SQLiteSync is SQLite's synchronous mode: "normal" (the default: a
	// commit is in the WAL file when it returns, which survives the
	// process being killed, and is on disk at the next checkpoint) or
	// "full" (each commit waits for the WAL file's fsync, which survives
	// a power loss too).
	SQLiteSync string
}

// DB is an open database.
type DB struct {
	*gorm.DB
	Dialect Dialect
	// Location is a description of the database safe to show (no password).
	Location string
	// log receives what Migrate did (nil: slog.Default()).
	log *slog.Logger
}

// Open opens the configured database and checks that it answers. The
// returned error names the database's host or file but never a password.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	gcfg := &gorm.Config{
		Logger:                 logger.Discard, // SQL is never logged: parameters could hold data.
		TranslateError:         false,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	}
	if cfg.DatabaseURL == "" {
		return openSQLite(ctx, cfg, gcfg, log)
	}
	return openPostgres(ctx, cfg, gcfg, log)
}

func openSQLite(ctx context.Context, cfg Config, gcfg *gorm.Config, log *slog.Logger) (*DB, error) {
	dir := cfg.DataDir
	if dir == "" {
		dir = "hushflow-data"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, "hushflow.db")
	// The database file (and its -wal and -shm files, which SQLite creates
	// with the same mode) is readable by this user only.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	_ = os.Chmod(path, 0o600)
	// The driver is modernc.org/sqlite (pure Go) under the libtnb/sqlite
	// gorm dialector; docs/performance.md, "SQLite driver", says why.
	// Transactions take the write lock at BEGIN (_txlock=immediate), which
	// the queue relies on. Times are text in SQLite and compared as text
	// (the queue's available_at <= ?, schedule_ticks' key):
	// _time_format=sqlite writes them as 2006-01-02 15:04:05.999999999-07:00,
	// the layout of every database written before (by glebarez/sqlite), so
	// old rows and new parameters compare in time order. _texttotime=0
	// leaves expressions over time columns (MIN(available_at)) as text, as
	// before; the dialector would turn it on.
	sync := "NORMAL"
	switch cfg.SQLiteSync {
	case "", "normal":
	case "full":
		sync = "FULL"
	default:
		return nil, fmt.Errorf("SQLite synchronous mode %q: want normal or full", cfg.SQLiteSync)
	}
	dsn := "file:" + path + "?_txlock=immediate&_time_format=sqlite&_texttotime=0" +
		"&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(" + sync + ")"
	// Each connection keeps its prepared statements (stmtcache.go). The
	// dialector would add _inttotime=1 to a DSN it opens itself.
	conn := sql.OpenDB(&stmtConnector{drv: &msqlite.Driver{}, dsn: dsn + "&_inttotime=1"})
	gdb, err := gorm.Open(sqlite.New(sqlite.Config{Conn: conn}), gcfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	// SQLite has one writer at a time; a few connections let readers go on
	// while busy_timeout queues writers. All of them stay open: a closed
	// one is reopened, its statements prepared again, at the next burst.
	sqlDB.SetMaxOpenConns(4)
	sqlDB.SetMaxIdleConns(4)
	if err := ping(ctx, gdb); err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	log.Info("database", "dialect", "sqlite", "path", path)
	return &DB{DB: gdb, Dialect: SQLite, Location: path, log: log}, nil
}

func openPostgres(ctx context.Context, cfg Config, gcfg *gorm.Config, log *slog.Logger) (*DB, error) {
	where := DescribeURL(cfg.DatabaseURL)
	gdb, err := gorm.Open(postgres.New(postgres.Config{DSN: cfg.DatabaseURL}), gcfg)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to PostgreSQL at %s: %s", where, cleanErr(err, cfg.DatabaseURL))
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	// Idle connections are kept up to the open limit: under bursty load a
	// smaller idle pool closes and reopens connections all the time (a new
	// PostgreSQL backend is a fork and a cold catalog cache); unused ones
	// still close after five idle minutes.
	sqlDB.SetMaxOpenConns(20)
	sqlDB.SetMaxIdleConns(20)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	if err := ping(ctx, gdb); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("cannot connect to PostgreSQL at %s: %s", where, cleanErr(err, cfg.DatabaseURL))
	}
	return &DB{DB: gdb, Dialect: Postgres, Location: where, log: log}, nil
}

func ping(ctx context.Context, gdb *gorm.DB) error {
	sqlDB, err := gdb.DB()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return sqlDB.PingContext(ctx)
}

// ForUpdate makes q lock the rows it reads until its transaction ends:
// FOR UPDATE on PostgreSQL; on SQLite, whose transactions take the one
// write lock at their start (_txlock=immediate), q as it is. Domain
// packages call it instead of testing the dialect.
func (db *DB) ForUpdate(q *gorm.DB) *gorm.DB {
	if db.Dialect == Postgres {
		return q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return q
}

// Ping reports whether the database answers (readiness).
func (db *DB) Ping(ctx context.Context) error { return ping(ctx, db.DB) }

// Close closes the connection pool.
func (db *DB) Close() error {
	sqlDB, err := db.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// DescribeURL returns "host:port/database" of a PostgreSQL URL or key=value
// DSN, without user or password.
func DescribeURL(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return u.Host + u.Path
	}
	host, port, db := "", "", ""
	for _, f := range strings.Fields(raw) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "host":
			host = v
		case "port":
			port = v
		case "dbname":
			db = v
		}
	}
	if host == "" {
		return "(unparsable database URL)"
	}
	s := host
	if port != "" {
		s += ":" + port
	}
	if db != "" {
		s += "/" + db
	}
	return s
}

// cleanErr shortens a driver error to its last cause and removes anything
// of the URL that could carry a password.
func cleanErr(err error, rawURL string) string {
	msg := err.Error()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		msg = pgErr.Message
	} else if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		msg = msg[i+2:]
	}
	if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "***")
		}
	}
	return strings.ReplaceAll(msg, rawURL, DescribeURL(rawURL))
}

// Translate maps driver errors to the sentinels of this package. Every
// package that queries the database passes its errors through it.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %s", ErrConflict, pgErr.ConstraintName)
	}
	if msg := err.Error(); strings.Contains(msg, "UNIQUE constraint failed") {
		return fmt.Errorf("%w: %s", ErrConflict, strings.TrimPrefix(msg, "constraint failed: "))
	}
	if IsUnavailable(err) {
		return &unavailableError{err: err}
	}
	return err
}

// unavailableError wraps a driver error that means the database did not
// answer; it matches both ErrUnavailable and the driver error.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() []error {
	return []error{ErrUnavailable, e.err}
}

// IsLockTimeout reports whether err is PostgreSQL's lock_not_available
// (55P03): a lock was not granted within the transaction's lock_timeout.
func IsLockTimeout(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}

// IsUnavailable reports whether err means that the database did not answer
// (as opposed to refusing a statement): a refused, reset or closed
// connection, a connection terminated by the server (pg_terminate_backend,
// a restart), a server starting up or shutting down, too many
// connections, SQLite busy past its timeout, or a full disk (on either:
// the write is refused whole, and goes through once space is freed). Such an error changed
// nothing that was not committed; the same work may be retried later.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) {
		return true
	}
	// The caller's own deadline or cancel is not the database's fault
	// (context.DeadlineExceeded is also a net.Error).
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"): // connection exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03": // admin/crash shutdown, cannot connect now
			return true
		case pgErr.Code == "53300", pgErr.Code == "53400": // too many connections, configuration limit
			return true
		case pgErr.Code == "53100": // disk full
			return true
		}
		return false
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"conn closed", "connection reset", "broken pipe", "connection refused",
		"unexpected EOF", "SQLITE_BUSY", "database is locked", "the database system is",
		"database or disk is full", "SQLITE_FULL"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// IsRetryable reports whether err is a serialization or lock conflict that a
// caller may retry (PostgreSQL serialization failure or deadlock, SQLite busy).
func IsRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	if err != nil {
		msg := err.Error()
		return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
	}
	return false
}
