package store

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Migration is one versioned schema change. IDs are applied in the order
// of the list given to Migrate and recorded in schema_migrations; an applied
// ID is never run again, so a migration is never edited once released: add
// a new one.
//
// A migration's schema change is frozen SQL, one text per dialect (never a
// gorm model of today's Go types, which would change the meaning of an old
// migration the day a field is added). Up, when set, runs after the SQL in
// the same transaction, for data that needs Go (generated ids).
type Migration struct {
	ID  string             // e.g. "0001_projects"; unique across the program
	SQL map[Dialect]string // statements separated by ";" at the end of a line
	Up  func(tx *gorm.DB) error
}

// SQLMigrations reads the migrations of a package from fsys: one file per
// migration and dialect, named <id>.<dialect>.sql ("0010_flows.postgres.sql",
// "0010_flows.sqlite.sql") in dir, applied in the order of their ids. It
// panics when a migration lacks a dialect: the files are part of the
// program.
func SQLMigrations(fsys fs.FS, dir string) []Migration {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		panic(fmt.Sprintf("store: read migrations: %v", err))
	}
	byID := map[string]map[Dialect]string{}
	for _, e := range entries {
		name := e.Name()
		base, ok := strings.CutSuffix(name, ".sql")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(base, '.')
		if i < 0 {
			panic(fmt.Sprintf("store: migration file %s: want <id>.<dialect>.sql", name))
		}
		id, dialect := base[:i], Dialect(base[i+1:])
		if dialect != Postgres && dialect != SQLite {
			panic(fmt.Sprintf("store: migration file %s: unknown dialect %q", name, dialect))
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, name))
		if err != nil {
			panic(fmt.Sprintf("store: read migration %s: %v", name, err))
		}
		if byID[id] == nil {
			byID[id] = map[Dialect]string{}
		}
		byID[id][dialect] = string(b)
	}
	ids := make([]string, 0, len(byID))
	for id, sql := range byID {
		if sql[Postgres] == "" || sql[SQLite] == "" {
			panic(fmt.Sprintf("store: migration %s needs both %s.postgres.sql and %s.sqlite.sql", id, id, id))
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]Migration, len(ids))
	for i, id := range ids {
		out[i] = Migration{ID: id, SQL: byID[id]}
	}
	return out
}

// statements splits a migration's SQL into statements: each ends with ";"
// at the end of a line; lines starting with "--" are comments.
func statements(sql string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

type schemaMigration struct {
	ID        string `gorm:"primaryKey;size:128"`
	AppliedAt time.Time
}

func (schemaMigration) TableName() string { return "schema_migrations" }

// Migrate applies the migrations not yet recorded, each in its own
// transaction. On PostgreSQL an advisory lock makes replicas that start at
// the same time apply them once.
func (db *DB) Migrate(ctx context.Context, migrations []Migration) error {
	seen := map[string]bool{}
	for _, m := range migrations {
		if m.ID == "" || seen[m.ID] {
			return fmt.Errorf("migrate: empty or duplicate migration id %q", m.ID)
		}
		seen[m.ID] = true
	}
	conn := db.WithContext(ctx)
	if db.Dialect == Postgres {
		// Hold one connection for the lock's lifetime.
		sqlDB, err := db.DB.DB()
		if err != nil {
			return err
		}
		c, err := sqlDB.Conn(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.ExecContext(ctx, "SELECT pg_advisory_lock(726354)"); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		defer c.ExecContext(context.Background(), "SELECT pg_advisory_unlock(726354)")
	}
	if err := conn.AutoMigrate(&schemaMigration{}); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var done []schemaMigration
	if err := conn.Find(&done).Error; err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	applied := map[string]bool{}
	var unknown []string
	for _, d := range done {
		applied[d.ID] = true
		if !seen[d.ID] {
			unknown = append(unknown, d.ID)
		}
	}
	log := db.log
	if log == nil {
		log = slog.Default()
	}
	if len(unknown) > 0 && len(migrations) > 0 { // (none given: the caller only opens it)
		// A newer Hushflow migrated this database (a rollback, or an old
		// replica restarted during an upgrade). Migrations add, so this
		// one goes on; what only the newer one knows it ignores.
		sort.Strings(unknown)
		log.Warn("the database was migrated by a newer Hushflow: this one does not know some of its changes; run the newer version",
			"unknown_migrations", strings.Join(unknown, ", "))
	}
	for _, m := range migrations {
		if applied[m.ID] {
			continue
		}
		err := conn.Transaction(func(tx *gorm.DB) error {
			if m.SQL != nil {
				sql, ok := m.SQL[db.Dialect]
				if !ok {
					return fmt.Errorf("no SQL for %s", db.Dialect)
				}
				for _, st := range statements(sql) {
					if err := tx.Exec(st).Error; err != nil {
						return fmt.Errorf("%s: %w", firstLine(st), err)
					}
				}
			}
			if m.Up != nil {
				if err := m.Up(tx); err != nil {
					return err
				}
			}
			return tx.Create(&schemaMigration{ID: m.ID, AppliedAt: time.Now().UTC()}).Error
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", m.ID, err)
		}
		if len(done) > 0 { // an upgrade (a new database is not news)
			log.Info("applied migration", "id", m.ID)
		}
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
