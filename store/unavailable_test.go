package store_test

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"

	"github.com/hushflow/hushflow/store"
	"github.com/hushflow/hushflow/store/storetest"
	"github.com/jackc/pgx/v5"
)

// Issue 15: the errors of a database that does not answer are told apart
// from the errors of a statement it refused, on real connections: a
// refused connection and a connection terminated by the server are
// unavailable (503, retried); a syntax error, a duplicate key and the
// caller's own cancel are not.
func TestUnavailableErrors(t *testing.T) {
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = pgx.Connect(ctx, "postgres://postgres@"+addr+"/x?connect_timeout=2")
	if err == nil || !store.IsUnavailable(err) || !errors.Is(store.Translate(err), store.ErrUnavailable) {
		t.Errorf("refused connection: %v (unavailable: %v)", err, store.IsUnavailable(err))
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if store.IsUnavailable(canceled.Err()) || store.IsUnavailable(context.DeadlineExceeded) {
		t.Error("the caller's cancel or deadline counted as the database's")
	}

	if os.Getenv(storetest.EnvURL) == "" {
		return
	}
	cfg := storetest.PostgresConfig(t)
	victim, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close(ctx)
	var pid int
	if err := victim.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
		t.Fatal(err)
	}
	_, err = victim.Exec(ctx, "SELECT 1")
	if err == nil || !store.IsUnavailable(err) {
		t.Errorf("terminated connection: %v (unavailable: %v)", err, store.IsUnavailable(err))
	}
	_, err = admin.Exec(ctx, "SELEC 1")
	if err == nil || store.IsUnavailable(err) || errors.Is(store.Translate(err), store.ErrUnavailable) {
		t.Errorf("syntax error counted as unavailable: %v", err)
	}
	db := storetest.Open(t, cfg, widgetMigrations)
	db.Create(&widget{Name: "a"})
	err = store.Translate(db.Create(&widget{Name: "a"}).Error)
	if !errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("duplicate: %v", err)
	}
}
