package secrets_test

import (
	"strconv"
	"testing"

	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

// BenchmarkRunLoad is what a run pays on SQLite to load its scope's
// secrets (three of them): the joined read, the decryption and the
// redaction_load record. go test -run '^$' -bench RunLoad -benchmem
// ./secrets/ shows its allocations per run.
func BenchmarkRunLoad(b *testing.B) {
	db := storetest.Open(b, storetest.SQLiteConfig(b), schema.All())
	s := setup(b, db)
	for i := range 3 {
		create(b, s, "K"+strconv.Itoa(i), "load-bench-value-"+strconv.Itoa(i), secrets.Scope{Project: "billing"})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.NewRunResolver("billing", "production", "run-"+strconv.Itoa(i)).Load(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
