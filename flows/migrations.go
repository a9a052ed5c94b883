package flows

import (
	"embed"

	"github.com/hushflow/hushflow/store"
)

// Migrations creates the flow and run tables (frozen SQL in migrations/).
func Migrations() []store.Migration { return store.SQLMigrations(migrationFS, "migrations") }

//go:embed migrations/*.sql
var migrationFS embed.FS
