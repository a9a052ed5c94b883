package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hushflow/hushflow/auth"
	"github.com/hushflow/hushflow/projects"
	"github.com/hushflow/hushflow/server"
	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/schema"
	"github.com/spf13/cobra"
)

// serveConfig is read from flags and HUSHFLOW_* variables; flags win.
type serveConfig struct {
	Addr        string
	DataDir     string
	DatabaseURL string // env only: URLs carry passwords, flags show in ps
	AdminToken  string // env only
	LogFormat   string
}

func newServeCmd() *cobra.Command {
	cfg := serveConfig{
		Addr:        envOr("HUSHFLOW_ADDR", "127.0.0.1:8080"),
		DataDir:     envOr("HUSHFLOW_DATA_DIR", "hushflow-data"),
		DatabaseURL: os.Getenv("HUSHFLOW_DATABASE_URL"),
		AdminToken:  os.Getenv("HUSHFLOW_ADMIN_TOKEN"),
		LogFormat:   envOr("HUSHFLOW_LOG_FORMAT", "text"),
	}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Hushflow server (API and web UI)",
		Long: `Run the Hushflow server: the API, the web UI and the run workers.

With no HUSHFLOW_DATABASE_URL the data lives in an embedded SQLite file in
the data dir; set HUSHFLOW_DATABASE_URL=postgres://... for PostgreSQL.

Environment: HUSHFLOW_ADDR, HUSHFLOW_DATA_DIR, HUSHFLOW_DATABASE_URL,
HUSHFLOW_ADMIN_TOKEN, HUSHFLOW_LOG_FORMAT (text|json).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, cfg, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (HUSHFLOW_ADDR)")
	cmd.Flags().StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory for the embedded database and key file (HUSHFLOW_DATA_DIR)")
	cmd.Flags().StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: text or json (HUSHFLOW_LOG_FORMAT)")
	return cmd
}

func newLogger(format string) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q (want text or json)", format)
}

func serve(ctx context.Context, cfg serveConfig, stdout interface{ Write([]byte) (int, error) }) error {
	log, err := newLogger(cfg.LogFormat)
	if err != nil {
		return err
	}
	slog.SetDefault(log)

	db, err := store.Open(ctx, store.Config{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: log})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx, schema.All()); err != nil {
		return fmt.Errorf("database %s: %w", db.Location, err)
	}

	authSvc := auth.NewService(db, cfg.AdminToken)
	token, err := authSvc.Bootstrap(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	if token != "" {
		fmt.Fprintf(stdout, "\nHushflow admin token (shown once; store it now):\n\n    %s\n\nexport HUSHFLOW_TOKEN=%s\n\n", token, token)
	}

	api := server.New(server.Deps{DB: db, Auth: authSvc, Projects: projects.NewService(db), Logger: log})

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := api.HTTPServer(cfg.Addr)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("hushflow serving", "addr", "http://"+ln.Addr().String(), "database", string(db.Dialect), "location", db.Location)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
