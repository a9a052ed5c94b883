// Command river measures github.com/riverqueue/river on PostgreSQL on this
// machine: jobs per second from the first insert to the last completion,
// insert-to-completion latency, and what PostgreSQL does per job.
//
// Two modes:
//
//	noop  river alone: each job is inserted with Client.Insert (its own
//	      transaction) and worked by a worker that does nothing.
//	run   river carrying a Hushflow run's own writes: a `runs` row inserted
//	      in the same transaction as the job (Client.InsertTx), and a worker
//	      that, in one transaction, inserts the run's events (one multi-row
//	      INSERT), marks the run finished and completes the job with
//	      river.JobCompleteTx.
//
// Each invocation creates a fresh database river_bench_<random> next to
// -database-url, runs river's migrations, measures, and drops it. See
// README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/url"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

type config struct {
	mode          string
	jobs          int
	clients       int
	workers       int
	rate          int
	pool          int
	events        int
	fetchCooldown time.Duration
	fetchPoll     time.Duration
	databaseURL   string
	label         string
}

func main() {
	var c config
	flag.StringVar(&c.mode, "mode", "noop", "noop (river alone) or run (runs row + events written with the job)")
	flag.IntVar(&c.jobs, "jobs", 4000, "jobs measured")
	flag.IntVar(&c.clients, "clients", 16, "concurrent inserting clients, one insert (transaction) per job")
	flag.IntVar(&c.workers, "workers", 100, "river QueueConfig.MaxWorkers of the default queue")
	flag.IntVar(&c.rate, "rate", 0, "offered jobs per second (0: as fast as the clients can insert)")
	flag.IntVar(&c.pool, "pool", 20, "pgxpool MaxConns (shared by the inserting clients and river)")
	flag.IntVar(&c.events, "events", 9, "event rows written per run (mode run)")
	flag.DurationVar(&c.fetchCooldown, "fetch-cooldown", 0, "river Config.FetchCooldown (0: river's default, 100ms)")
	flag.DurationVar(&c.fetchPoll, "fetch-poll-interval", 0, "river Config.FetchPollInterval (0: river's default, 1s)")
	flag.StringVar(&c.databaseURL, "database-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL server to create the benchmark database on (any database of it)")
	flag.StringVar(&c.label, "label", "", "label printed in the RESULT line")
	flag.Parse()
	if c.mode != "noop" && c.mode != "run" {
		log.Fatalf("-mode %q: want noop or run", c.mode)
	}
	if err := run(context.Background(), c); err != nil {
		log.Fatal(err)
	}
}

// counter counts the SQL statements sent through the pool, by query name
// (river's queries carry a "-- name: X" comment) or first words.
type counter struct {
	mu sync.Mutex
	m  map[string]int
}

type ctxKey struct{}

func (c *counter) add(sql string) {
	k := stmtKind(sql)
	c.mu.Lock()
	c.m[k]++
	c.mu.Unlock()
}

func (c *counter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

func (c *counter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.add(d.SQL)
	return ctx
}
func (c *counter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *counter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (c *counter) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	c.add(d.SQL)
}
func (c *counter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
func (c *counter) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	c.add("COPY " + d.TableName.Sanitize())
	return ctx
}
func (c *counter) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

func stmtKind(sql string) string {
	s := strings.TrimSpace(sql)
	if rest, ok := strings.CutPrefix(s, "-- name: "); ok {
		name, _, _ := strings.Cut(rest, " ")
		return "river " + name
	}
	f := strings.Fields(s)
	switch {
	case len(f) == 0:
		return "(empty)"
	case len(f) == 1:
		return strings.ToUpper(f[0])
	case strings.EqualFold(f[0], "begin"), strings.EqualFold(f[0], "commit"), strings.EqualFold(f[0], "rollback"):
		return strings.ToUpper(f[0])
	default:
		n := min(len(f), 3)
		return strings.Join(f[:n], " ")
	}
}

func isTxControl(k string) bool { return k == "BEGIN" || k == "COMMIT" || k == "ROLLBACK" }

// NoopArgs is a job of mode noop.
type NoopArgs struct {
	N int `json:"n"`
}

func (NoopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[NoopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[NoopArgs]) error { return nil }

// RunArgs is a job of mode run: it carries the run's id.
type RunArgs struct {
	RunID string `json:"run_id"`
}

func (RunArgs) Kind() string { return "run" }

type runWorker struct {
	river.WorkerDefaults[RunArgs]
	pool   *pgxpool.Pool
	events int
}

// Work does a run's own writes: its events (one multi-row INSERT, as
// Hushflow's event writer does) and its final status, in the transaction
// that completes the job.
func (w *runWorker) Work(ctx context.Context, job *river.Job[RunArgs]) error {
	started := time.Now().UTC()
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	var sb strings.Builder
	sb.WriteString("INSERT INTO events (run_id, seq, at, type, block, data) VALUES ")
	args := []any{job.Args.RunID, started}
	types := []string{"block_started", "block_log", "block_finished"}
	blocks := []string{"score", "label", "report"}
	for i := 0; i < w.events; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "($1, %d, $2, '%s', '%s', '{\"msg\":\"label even-%d with [REDACTED]\"}')",
			i+2, types[i%3], blocks[(i/3)%3], i)
	}
	if _, err := tx.Exec(ctx, sb.String(), args...); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE runs SET status = 'succeeded', output = $2, started_at = $3, finished_at = now() WHERE id = $1`,
		job.Args.RunID, `{"label":"even-2"}`, started); err != nil {
		return err
	}
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

const schema = `
CREATE TABLE runs (
	id varchar(36) PRIMARY KEY,
	project_id varchar(36) NOT NULL,
	project varchar(63) NOT NULL,
	flow_id varchar(36) NOT NULL,
	flow varchar(63) NOT NULL,
	flow_version bigint NOT NULL,
	environment varchar(63) NOT NULL,
	trigger varchar(16) NOT NULL,
	status varchar(16) NOT NULL,
	input text,
	output text,
	error text,
	cancel_req boolean NOT NULL DEFAULT false,
	queued_at timestamptz NOT NULL,
	started_at timestamptz,
	finished_at timestamptz,
	created_by varchar(128)
);
CREATE INDEX runs_project_queued ON runs (project_id, queued_at);
CREATE INDEX runs_flow_id ON runs (flow_id);
CREATE TABLE events (
	id bigserial PRIMARY KEY,
	run_id varchar(36) NOT NULL,
	seq bigint NOT NULL,
	at timestamptz NOT NULL,
	type varchar(32) NOT NULL,
	block varchar(63),
	data text
);
CREATE UNIQUE INDEX events_run_seq ON events (run_id, seq);
`

type pgStats struct{ xactCommit, tupInserted, tupUpdated, tupDeleted int64 }

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func uuidLike() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU returns the busy and total jiffies of all CPUs (/proc/stat).
func machineCPU() (busy, total int64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		var x int64
		fmt.Sscan(v, &x)
		total += x
		if i != 3 && i != 4 { // idle, iowait
			busy += x
		}
	}
	return busy, total
}

func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	i = max(1, min(i, len(s)))
	return s[i-1].Round(time.Millisecond)
}

func run(ctx context.Context, c config) (err error) {
	admin, err := pgx.Connect(ctx, c.databaseURL)
	if err != nil {
		return fmt.Errorf("connect %s: %w", c.databaseURL, err)
	}
	defer admin.Close(ctx)
	dbName := "river_bench_" + randomHex(6)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		return err
	}
	defer func() {
		_, derr := admin.Exec(context.Background(), "DROP DATABASE "+dbName+" WITH (FORCE)")
		err = errors.Join(err, derr)
	}()
	u, err := url.Parse(c.databaseURL)
	if err != nil {
		return err
	}
	u.Path = "/" + dbName

	// The monitor connection reads the statistics and waits for the last
	// job; its own transactions are counted and subtracted.
	mon, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return err
	}
	defer mon.Close(ctx)
	var monQueries atomic.Int64
	monQuery := func(sql string, args []any, dst ...any) error {
		monQueries.Add(1)
		return mon.QueryRow(ctx, sql, args...).Scan(dst...)
	}

	pcfg, err := pgxpool.ParseConfig(u.String())
	if err != nil {
		return err
	}
	pcfg.MaxConns = int32(c.pool)
	cnt := &counter{m: map[string]int{}}
	pcfg.ConnConfig.Tracer = cnt
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river migrations: %w", err)
	}
	if _, err := pool.Exec(ctx, schema); err != nil {
		return err
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, noopWorker{})
	river.AddWorker(workers, &runWorker{pool: pool, events: c.events})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: c.workers}},
		Workers:           workers,
		FetchCooldown:     c.fetchCooldown,
		FetchPollInterval: c.fetchPoll,
		Logger:            slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	total := c.jobs + c.clients // warm-up jobs, then the measured ones
	events, cancelSub := client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: total * 2,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled, river.EventKindJobSnoozed},
	})
	defer cancelSub()
	if err := client.Start(ctx); err != nil {
		return err
	}
	var stopOnce sync.Once
	stop := func() error {
		var serr error
		stopOnce.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			serr = client.Stop(sctx)
			pool.Close()
		})
		return serr
	}
	defer func() { err = errors.Join(err, stop()) }()

	var (
		mu      sync.Mutex
		done    = make(map[int64]time.Time, total)
		failed  atomic.Int64
		allDone = make(chan struct{})
		wantN   atomic.Int64
	)
	wantN.Store(int64(c.clients))
	go func() {
		for ev := range events {
			now := time.Now()
			if ev.Kind != river.EventKindJobCompleted {
				failed.Add(1)
				log.Printf("job %d: %s %v", ev.Job.ID, ev.Kind, ev.Job.Errors)
			}
			mu.Lock()
			done[ev.Job.ID] = now
			n := int64(len(done))
			mu.Unlock()
			if n == wantN.Load() {
				allDone <- struct{}{}
			}
		}
	}()

	insert := func(i int) (int64, error) {
		if c.mode == "noop" {
			res, err := client.Insert(ctx, NoopArgs{N: i}, nil)
			if err != nil {
				return 0, err
			}
			return res.Job.ID, nil
		}
		tx, err := pool.Begin(ctx)
		if err != nil {
			return 0, err
		}
		defer tx.Rollback(ctx)
		id := uuidLike()
		if _, err := tx.Exec(ctx, `INSERT INTO runs (id, project_id, project, flow_id, flow, flow_version, environment, trigger, status, input, queued_at, created_by)
VALUES ($1, $2, 'bench', $3, 'three', 1, 'development', 'manual', 'queued', $4, now(), 'admin')`,
			id, "5f0c2c4e-9a51-4a8e-9d1e-0d6b2f1f6a11", "0a7d3e91-3c55-4c4b-8f1d-6f7e9b2a4c22", fmt.Sprintf(`{"n":%d}`, i)); err != nil {
			return 0, err
		}
		res, err := client.InsertTx(ctx, tx, RunArgs{RunID: id}, nil)
		if err != nil {
			return 0, err
		}
		return res.Job.ID, tx.Commit(ctx)
	}

	// Warm up: one job per client (connections, prepared statements).
	var wg sync.WaitGroup
	for i := 0; i < c.clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := insert(-1 - i); err != nil {
				log.Fatalf("warm-up insert: %v", err)
			}
		}()
	}
	wg.Wait()
	select {
	case <-allDone:
	case <-time.After(30 * time.Second):
		return errors.New("warm-up jobs not done after 30s")
	}
	wantN.Store(int64(total))

	readStats := func() (pgStats, error) {
		var s pgStats
		err := monQuery("SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database WHERE datname = $1",
			[]any{dbName}, &s.xactCommit, &s.tupInserted, &s.tupUpdated, &s.tupDeleted)
		return s, err
	}
	// An idle PostgreSQL 15 backend flushes its statistics after 10 s
	// (PGSTAT_IDLE_INTERVAL), a busy one at most once a second.
	time.Sleep(11 * time.Second)
	monBefore := monQueries.Load()
	before, err := readStats()
	if err != nil {
		return err
	}
	stmtBefore := cnt.snapshot()
	cpuBefore := cpuTime()
	busyBefore, totalBefore := machineCPU()

	// Measure.
	started := make([]time.Time, c.jobs)
	ids := make([]int64, c.jobs)
	jobs := make(chan int)
	var insertErr atomic.Value
	for w := 0; w < c.clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				started[i] = time.Now()
				id, err := insert(i)
				if err != nil {
					insertErr.Store(err)
					continue
				}
				ids[i] = id
			}
		}()
	}
	t0 := time.Now()
	for i := 0; i < c.jobs; i++ {
		if c.rate > 0 {
			// Job i is offered at t0 + i/rate; a feeder that fell behind
			// catches up instead of dropping the offered load.
			time.Sleep(time.Until(t0.Add(time.Duration(i) * time.Second / time.Duration(c.rate))))
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	insertedIn := time.Since(t0)
	if e := insertErr.Load(); e != nil {
		return fmt.Errorf("insert: %v", e)
	}
	select {
	case <-allDone:
	case <-time.After(5 * time.Minute):
		mu.Lock()
		n := len(done)
		mu.Unlock()
		return fmt.Errorf("%d of %d jobs done after 5 minutes", n-c.clients, c.jobs)
	}
	cpuUsed := cpuTime() - cpuBefore
	busyAfter, totalAfter := machineCPU()
	machineBusy := float64(busyAfter-busyBefore) / float64(max(1, totalAfter-totalBefore))
	// Stop river and close the pool: exiting backends flush their
	// statistics (river's shutdown statements are counted with the rest).
	if err := stop(); err != nil {
		return err
	}
	stmtAfter := cnt.snapshot()
	time.Sleep(1100 * time.Millisecond)
	after, err := readStats()
	if err != nil {
		return err
	}
	monTx := monQueries.Load() - monBefore - 1 // the "after" read is not yet in the statistics it returns

	// Figures.
	mu.Lock()
	lat := make([]time.Duration, 0, c.jobs)
	last := t0
	for i, id := range ids {
		d, ok := done[id]
		if !ok {
			mu.Unlock()
			return fmt.Errorf("job %d (id %d) has no completion event", i, id)
		}
		lat = append(lat, d.Sub(started[i]))
		if d.After(last) {
			last = d
		}
	}
	mu.Unlock()
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("%d jobs did not complete", f)
	}
	var notCompleted int64
	if err := monQuery("SELECT count(*) FROM river_job WHERE state <> 'completed'", nil, &notCompleted); err != nil {
		return err
	}
	if notCompleted > 0 {
		return fmt.Errorf("%d river_job rows not completed", notCompleted)
	}
	// Cross-check from the database's timestamps (finalized_at is the
	// worker's finish time, before a batched completion commits).
	var dbP50, dbP99 float64
	if err := monQuery(`SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finalized_at - created_at)),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM finalized_at - created_at))
FROM river_job WHERE id = ANY($1)`, []any{ids}, &dbP50, &dbP99); err != nil {
		return err
	}
	if c.mode == "run" {
		var finished, evs int64
		if err := monQuery("SELECT count(*) FROM runs WHERE status = 'succeeded' AND finished_at IS NOT NULL", nil, &finished); err != nil {
			return err
		}
		if err := monQuery("SELECT count(*) FROM events", nil, &evs); err != nil {
			return err
		}
		if finished != int64(total) || evs != int64(total*c.events) {
			return fmt.Errorf("%d runs finished, %d events; want %d and %d", finished, evs, total, total*c.events)
		}
	}

	n := float64(c.jobs)
	span := last.Sub(t0)
	per := func(v int64) float64 { return float64(v) / n }
	stmts := map[string]int{}
	var sqlN, txN int
	for k, v := range stmtAfter {
		d := v - stmtBefore[k]
		if d == 0 {
			continue
		}
		stmts[k] = d
		if isTxControl(k) {
			txN += d
		} else {
			sqlN += d
		}
	}
	cooldown, poll := c.fetchCooldown, c.fetchPoll
	if cooldown == 0 {
		cooldown = river.FetchCooldownDefault
	}
	if poll == 0 {
		poll = river.FetchPollIntervalDefault
	}
	fmt.Printf("machine: nproc %d, %s; PostgreSQL on the same machine\n", runtime.NumCPU(), cpuModel())
	fmt.Printf("river v0.51.1, mode %s: %d jobs, %d clients, MaxWorkers %d, FetchCooldown %s, FetchPollInterval %s, pool %d, rate %d/s\n",
		c.mode, c.jobs, c.clients, c.workers, cooldown, poll, c.pool, c.rate)
	fmt.Printf("inserted in %s (%.0f/s); first insert to last completion %s: %.0f jobs/s\n",
		insertedIn.Round(time.Millisecond), n/insertedIn.Seconds(), span.Round(time.Millisecond), n/span.Seconds())
	fmt.Printf("insert-to-completion latency (insert call to completion event): p50 %s, p90 %s, p99 %s, max %s\n",
		pct(lat, 50), pct(lat, 90), pct(lat, 99), pct(lat, 100))
	fmt.Printf("  cross-check, river_job finalized_at - created_at: p50 %.0fms, p99 %.0fms\n", dbP50*1000, dbP99*1000)
	fmt.Printf("per job, PostgreSQL (pg_stat_database, monitor's %d transactions subtracted): %.2f commits, %.2f rows inserted, %.2f rows updated, %.2f rows deleted\n",
		monTx, per(after.xactCommit-before.xactCommit-monTx), per(after.tupInserted-before.tupInserted),
		per(after.tupUpdated-before.tupUpdated), per(after.tupDeleted-before.tupDeleted))
	fmt.Printf("per job, statements sent through the pool: %.2f SQL + %.2f BEGIN/COMMIT; bench process CPU %.0f µs/job; machine CPU %.0f%% busy (all %d cores, every process)\n",
		float64(sqlN)/n, float64(txN)/n, float64(cpuUsed.Microseconds())/n, machineBusy*100, runtime.NumCPU())
	keys := make([]string, 0, len(stmts))
	for k := range stmts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return stmts[keys[i]] > stmts[keys[j]] })
	for _, k := range keys {
		fmt.Printf("  %7.3f  %s\n", float64(stmts[k])/n, k)
	}
	fmt.Printf("RESULT\tlabel=%s\tmode=%s\tworkers=%d\tcooldown=%s\tpoll=%s\trate=%d\tjobs_s=%.0f\tp50_ms=%d\tp99_ms=%d\tcommits=%.2f\tins=%.2f\tupd=%.2f\tsql=%.2f\ttxctl=%.2f\tbusy=%.0f\n",
		c.label, c.mode, c.workers, cooldown, poll, c.rate, n/span.Seconds(), pct(lat, 50).Milliseconds(), pct(lat, 99).Milliseconds(),
		per(after.xactCommit-before.xactCommit-monTx), per(after.tupInserted-before.tupInserted), per(after.tupUpdated-before.tupUpdated),
		float64(sqlN)/n, float64(txN)/n, machineBusy*100)
	return nil
}
