package store_test

import (
	"errors"
	"testing"

	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
	"gorm.io/gorm"
)

// store.Query and store.Exec number ? placeholders for PostgreSQL and run
// on the transaction the *gorm.DB is: a write there goes with its
// rollback.
func TestRawStatements(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			db := storetest.Open(t, b.Config(t), nil)
			rows, err := store.Query(db.DB, `SELECT CAST(? AS TEXT) || CAST(? AS TEXT), CAST(? AS INTEGER) + 1`, "a", "b", 41)
			if err != nil {
				t.Fatal(err)
			}
			var s string
			var n int
			for rows.Next() {
				if err := rows.Scan(&s, &n); err != nil {
					t.Fatal(err)
				}
			}
			rows.Close()
			if s != "ab" || n != 42 {
				t.Fatalf("got %q and %d, want ab and 42", s, n)
			}
			if err := db.Exec(`CREATE TABLE raw_t (v TEXT)`).Error; err != nil {
				t.Fatal(err)
			}
			undo := errors.New("roll back")
			err = db.Transaction(func(tx *gorm.DB) error {
				if _, err := store.Exec(tx, `INSERT INTO raw_t (v) VALUES (?), (?)`, "x", "y"); err != nil {
					return err
				}
				var in int64
				tx.Raw(`SELECT COUNT(*) FROM raw_t`).Scan(&in)
				if in != 2 {
					t.Errorf("inside the transaction: %d rows, want 2", in)
				}
				return undo
			})
			if !errors.Is(err, undo) {
				t.Fatal(err)
			}
			var after int64
			db.Raw(`SELECT COUNT(*) FROM raw_t`).Scan(&after)
			if after != 0 {
				t.Errorf("after the rollback: %d rows, want 0", after)
			}
		})
	}
}
