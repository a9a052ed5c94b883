package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Migration is one versioned schema change. IDs are applied in the order
// of the list given to Migrate and recorded in schema_migrations; an applied
// ID is never run again, so a migration is never edited once released: add
// a new one.
type Migration struct {
	ID string // e.g. "0001_projects"; unique across the program
	Up func(tx *gorm.DB) error
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
	for _, d := range done {
		applied[d.ID] = true
	}
	for _, m := range migrations {
		if applied[m.ID] {
			continue
		}
		err := conn.Transaction(func(tx *gorm.DB) error {
			if err := m.Up(tx); err != nil {
				return err
			}
			return tx.Create(&schemaMigration{ID: m.ID, AppliedAt: time.Now().UTC()}).Error
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", m.ID, err)
		}
	}
	return nil
}
