// Package bench holds the benchmarks that compare Hushflow's design with
// the naive way of doing the same work, and the program that runs every
// benchmark of the repository beside its baseline (bench/cmd/report,
// `make bench`), which writes the summary table of docs/performance.md.
//
// Its benchmarks:
//
//	BenchmarkFlow/engine  one run of a 3-block flow, in process, without the
//	                      database: every field through compiled engine
//	                      programs, the `if` through expr, events redacted
//	                      by a redact.Redactor built for the run
//	BenchmarkFlow/naive   the same run the naive way: a fresh goja runtime
//	                      and RunString per expression, events redacted by
//	                      a strings.Replacer built for the run
//	BenchmarkRunThroughput/postgres
//	                      the same flow end to end through a real server on
//	                      PostgreSQL (API, queue, workers, events): runs/s
package bench
