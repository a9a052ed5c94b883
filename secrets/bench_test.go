package secrets_test

import (
	"fmt"
	"testing"

	"github.com/hushflow/hushflow/secrets"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/hushflow/hushflow/store/storetest"
)

// Resolution benchmarks, on each database:
//
//   - cold: Store.Resolve, as for a run's first read of a name: one query for
//     the visible definitions, one for the current version, unwrap the data
//     key, decrypt, and one audit insert;
//   - warm: RunResolver.Resolve of a name the run already read in the same
//     block: a map lookup under a mutex, no database, no crypto;
//   - warm, new block: a cached value read by another block of the run:
//     no crypto, one audit insert.
func BenchmarkResolve(b *testing.B) {
	for _, be := range storetest.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			db := storetest.Open(b, be.Config(b), schema.All())
			s := setup(b, db)
			for i := range 20 {
				sc := []secrets.Scope{{}, {Environment: "production"}, {Project: "billing"}, {Project: "billing", Environment: "production"}}[i%4]
				create(b, s, fmt.Sprintf("K%02d", i), "bench-value-"+secrets.NewKey(), sc)
			}
			b.Run("cold", func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					_, _, err := s.Resolve(ctx, secrets.Access{Project: "billing", Environment: "production",
						Name: fmt.Sprintf("K%02d", i%20), RunID: "bench", BlockID: "b", Actor: "run"})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("warm", func(b *testing.B) {
				rr := s.NewRunResolver("billing", "production", "bench-warm")
				names := make([]string, 20)
				for i := range names {
					names[i] = fmt.Sprintf("K%02d", i)
					if _, _, err := rr.Resolve(ctx, "b", names[i], secrets.Scope{}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if _, _, err := rr.Resolve(ctx, "b", names[i%20], secrets.Scope{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("warm_new_block", func(b *testing.B) {
				rr := s.NewRunResolver("billing", "production", "bench-warm2")
				if _, _, err := rr.Resolve(ctx, "b", "K00", secrets.Scope{}); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if _, _, err := rr.Resolve(ctx, fmt.Sprintf("block%d", i), "K00", secrets.Scope{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("redaction_load_20", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.ResolvedValues(ctx, "billing", "production"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
