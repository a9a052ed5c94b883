package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hushflow/hushflow/internal/app"
	"github.com/hushflow/hushflow/internal/cores"
	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	// A setting given wrong is an error, never the default in silence.
	var bad []string
	count := func(name, rule string) int {
		s := os.Getenv(name)
		if s == "" {
			return 0 // the default
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			bad = append(bad, fmt.Sprintf("%s must be %s, not %q", name, rule, s))
		}
		return n
	}
	onOff := func(name string) bool {
		switch s := os.Getenv(name); s {
		case "", "off":
			return false
		case "on":
			return true
		default:
			bad = append(bad, fmt.Sprintf("%s must be on or off, not %q", name, s))
			return false
		}
	}
	workers := count("HUSHFLOW_WORKERS", "a number of at least 1 (runs executed at once), such as 64")
	maxRuns := count("HUSHFLOW_MAX_CONCURRENT_RUNS", "a number of at least 1, such as 10000")
	var rateLimit float64
	if s := os.Getenv("HUSHFLOW_RATE_LIMIT"); s != "" {
		var err error
		if rateLimit, err = strconv.ParseFloat(s, 64); err != nil || rateLimit == 0 {
			bad = append(bad, fmt.Sprintf("HUSHFLOW_RATE_LIMIT must be API requests per second per token, such as 100, or a negative number to turn the limit off, not %q", s))
		}
	}
	execOn, traceparent := onOff("HUSHFLOW_EXEC"), onOff("HUSHFLOW_TRACEPARENT")
	lease, leaseErr := time.ParseDuration(envOr("HUSHFLOW_RUN_LEASE", "30s"))
	grace, graceErr := time.ParseDuration(envOr("HUSHFLOW_SHUTDOWN_GRACE", "30s"))
	maxResumes, resumesErr := strconv.Atoi(envOr("HUSHFLOW_MAX_RESUMES", "10"))
	maxEach, eachErr := strconv.Atoi(envOr("HUSHFLOW_MAX_EACH_ITEMS", "1000"))
	retention, retentionErr := parseRetention(envOr("HUSHFLOW_RUN_RETENTION", "30d"))
	if retentionErr != nil {
		bad = append(bad, fmt.Sprintf("HUSHFLOW_RUN_RETENTION must be how long a run is kept after it ended, in days (30d) or as a duration of at least 1h (36h), up to 36500d, or off, not %q", os.Getenv("HUSHFLOW_RUN_RETENTION")))
	}
	auditRetention, auditErr := parseRetention(envOr("HUSHFLOW_AUDIT_RETENTION", "365d"))
	if auditErr != nil {
		bad = append(bad, fmt.Sprintf("HUSHFLOW_AUDIT_RETENTION must be how long the secrets audit keeps the records of reads, in days (365d) or as a duration of at least 1h (36h), up to 36500d, or off, not %q", os.Getenv("HUSHFLOW_AUDIT_RETENTION")))
	}
	role := envOr("HUSHFLOW_ROLE", "all")
	slack, slackErr := time.ParseDuration(envOr("HUSHFLOW_TIMER_SLACK", "5ms"))
	if slackErr != nil || slack < 0 || slack > 100*time.Millisecond {
		bad = append(bad, fmt.Sprintf("HUSHFLOW_TIMER_SLACK must be a duration from 0 (the slack the process started with) to 100ms, such as 5ms, not %q", os.Getenv("HUSHFLOW_TIMER_SLACK")))
	}
	cfg := app.Config{
		Addr:              envOr("HUSHFLOW_ADDR", "127.0.0.1:8080"),
		DataDir:           envOr("HUSHFLOW_DATA_DIR", "hushflow-data"),
		DatabaseURL:       os.Getenv("HUSHFLOW_DATABASE_URL"),
		SQLiteSync:        os.Getenv("HUSHFLOW_SQLITE_SYNC"),
		AdminToken:        os.Getenv("HUSHFLOW_ADMIN_TOKEN"),
		LogFormat:         envOr("HUSHFLOW_LOG_FORMAT", "text"),
		HTTPAllow:         os.Getenv("HUSHFLOW_HTTP_ALLOW"),
		Exec:              execOn,
		ExecAllow:         splitList(os.Getenv("HUSHFLOW_EXEC_ALLOW")),
		Workers:           workers,
		RunLease:          lease,
		ShutdownGrace:     grace,
		MaxResumes:        maxResumes,
		MaxEachItems:      maxEach,
		RunRetention:      retention,
		AuditRetention:    auditRetention,
		MasterKey:         os.Getenv("HUSHFLOW_MASTER_KEY"),
		MasterKeyFile:     os.Getenv("HUSHFLOW_MASTER_KEY_FILE"),
		RateLimit:         rateLimit,
		MaxConcurrentRuns: maxRuns,
		MetricsToken:      os.Getenv("HUSHFLOW_METRICS_TOKEN"),
		Traceparent:       traceparent,
		// An operator who sets GOMAXPROCS keeps that number.
		AdaptiveCores: os.Getenv("GOMAXPROCS") == "",
	}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Hushflow server (API, web UI and run workers)",
		Long: `Run the Hushflow server: the API, the web UI and the run workers.

With no HUSHFLOW_DATABASE_URL the data lives in an embedded SQLite file in
the data dir; set HUSHFLOW_DATABASE_URL=postgres://... for PostgreSQL.

Environment: HUSHFLOW_ADDR, HUSHFLOW_DATA_DIR, HUSHFLOW_DATABASE_URL,
HUSHFLOW_ADMIN_TOKEN, HUSHFLOW_MASTER_KEY, HUSHFLOW_MASTER_KEY_FILE,
HUSHFLOW_LOG_FORMAT (text|json), HUSHFLOW_HTTP_ALLOW (CIDRs HTTP blocks may
reach, e.g. 127.0.0.1/32), HUSHFLOW_EXEC (on enables exec blocks),
HUSHFLOW_EXEC_ALLOW (comma-separated command paths exec blocks may run),
HUSHFLOW_WORKERS (runs executed at once), HUSHFLOW_RUN_LEASE (how long a
run stays with a worker that stopped heartbeating before it resumes
elsewhere, default 30s), HUSHFLOW_SHUTDOWN_GRACE (how long runs in
progress may go on after SIGTERM before they are released to other
replicas, default 30s), HUSHFLOW_MAX_RESUMES (interruptions a run survives,
default 10), HUSHFLOW_RUN_RETENTION (how long a run and its events are
kept after it ended, in days or as a duration: default 30d; off keeps them
for ever), HUSHFLOW_AUDIT_RETENTION (how long the secrets audit keeps the
records of reads, a run's load of its values and each secret a block read:
default 365d; off keeps them for ever; other records are always kept),
HUSHFLOW_ROLE (all, api or worker; see --role),
HUSHFLOW_METRICS_TOKEN (bearer token required on /metrics when set),
HUSHFLOW_TRACEPARENT (on: HTTP blocks send a traceparent header derived
from the run id), HUSHFLOW_SQLITE_SYNC (normal or full: full makes each
commit of the embedded database wait for its fsync, default normal),
HUSHFLOW_TIMER_SLACK (how late the kernel may wake the server's threads
so as to wake them less often, default 5ms; 0 keeps the slack the process
started with), GOMAXPROCS (the Go runtime's processors, fixed; unset, the
server uses one while it has little to do and one per CPU under load). See
docs/operations.md and docs/metrics.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(bad) > 0 {
				return errors.New(strings.Join(bad, "; "))
			}
			if s := cfg.SQLiteSync; s != "" && s != "normal" && s != "full" {
				return fmt.Errorf("HUSHFLOW_SQLITE_SYNC must be normal or full, not %q", s)
			}
			if leaseErr != nil || lease < 2*time.Second {
				return fmt.Errorf("HUSHFLOW_RUN_LEASE must be a duration of at least 2s (the heartbeat renews leases every second), such as 30s")
			}
			if graceErr != nil || grace <= 0 {
				return fmt.Errorf("HUSHFLOW_SHUTDOWN_GRACE must be a positive duration, such as 30s")
			}
			if resumesErr != nil || maxResumes < 1 {
				return fmt.Errorf("HUSHFLOW_MAX_RESUMES must be a number of at least 1, such as 10")
			}
			if eachErr != nil || maxEach < 1 {
				return fmt.Errorf("HUSHFLOW_MAX_EACH_ITEMS must be a number of at least 1, such as 1000")
			}
			switch role {
			case "all":
			case "api":
				cfg.NoWorkers = true
			case "worker":
				cfg.NoAPI = true
			default:
				return usageErrorf("--role must be all (API, UI and run workers), api (no run workers) or worker (run workers, with only /healthz, /readyz and /metrics)")
			}
			if cfg.DatabaseURL == "" && role != "all" {
				return fmt.Errorf("--role %s needs PostgreSQL (HUSHFLOW_DATABASE_URL): the embedded SQLite database serves one process, which runs both the API and the workers", role)
			}
			// Every thread's timer slack (internal/cores): this starts the
			// program over, and returns once it has the slack.
			if err := cores.WithTimerSlack(slack); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "hushflow: serve goes on without its timer slack of %s: %v\n", slack, err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			// The first signal drains; a second one ends the process at
			// once (the default action is restored).
			go func() { <-ctx.Done(); stop() }()
			return serve(ctx, cfg, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (HUSHFLOW_ADDR)")
	cmd.Flags().StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory for the embedded database and key file (HUSHFLOW_DATA_DIR)")
	cmd.Flags().StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: text or json (HUSHFLOW_LOG_FORMAT)")
	cmd.Flags().StringVar(&role, "role", role, "all: API, UI and run workers; api: no run workers; worker: run workers with only /healthz, /readyz and /metrics (HUSHFLOW_ROLE)")
	return cmd
}

func serve(ctx context.Context, cfg app.Config, stdout io.Writer) error {
	a, err := app.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer a.Close()
	if t := a.BootstrapToken; t != "" {
		fmt.Fprintf(stdout, "\nHushflow admin token (shown once; store it now):\n\n    %s\n\nexport HUSHFLOW_TOKEN=%s\n\n", t, t)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return a.Serve(ctx, ln)
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// parseRetention reads HUSHFLOW_RUN_RETENTION or HUSHFLOW_AUDIT_RETENTION:
// whole days (30d) or a Go duration (36h), from an hour to 36,500 days; or
// off (0 too): kept for ever.
func parseRetention(s string) (time.Duration, error) {
	if s == "off" || s == "0" {
		return 0, nil
	}
	const most = 36500 * 24 * time.Hour
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > int(most/(24*time.Hour)) || !isDigits(days) {
			return 0, fmt.Errorf("bad number of days %q", days)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Hour || d > most {
		return 0, fmt.Errorf("want 1h to 36500d")
	}
	return d, nil
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
