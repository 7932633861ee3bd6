// Package pgtest gives each test its own PostgreSQL schema, migrated from
// scratch, on the server named by DATABASE_URL.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	migrations "github.com/canvasd/canvasd/sql"
)

// DefaultURL is the database tests use when DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// URL returns the test database URL.
func URL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Unavailable skips t when the database cannot be reached, or fails it
// under CI=true, where a missing database is a broken run.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("database unreachable at %s under CI: %v", URL(), err)
	}
	t.Skipf("database unreachable at %s: %v", URL(), err)
}

// Name returns a fresh lower-case identifier with prefix.
func Name(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "_" + hex.EncodeToString(b[:])
}

// Schema creates a fresh schema, returns a pool config whose connections
// use it, and drops it when the test ends.
func Schema(t testing.TB) *pgxpool.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, URL())
	if err != nil {
		Unavailable(t, err)
	}
	defer admin.Close(ctx)
	schema := Name("t")
	_, err = admin.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, URL()); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			_ = conn.Close(ctx)
		}
	})
	cfg, err := pgxpool.ParseConfig(URL())
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 8
	return cfg
}

// Pool returns a pool on a fresh, migrated schema, closed when the test ends.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	return PoolFrom(t, Schema(t), true)
}

// PoolFrom opens a pool from cfg, migrating the schema if migrate is set.
func PoolFrom(t testing.TB, cfg *pgxpool.Config, migrate bool) *pgxpool.Pool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg.Copy())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	if migrate {
		require.NoError(t, migrations.Apply(ctx, pool))
	}
	return pool
}
