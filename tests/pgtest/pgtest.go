// Package pgtest gives each test its own PostgreSQL schema, migrated from
// scratch, on the server named by DATABASE_URL.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
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

// SkipEnv names the variable that lets tests skip, instead of fail, when
// what they need (PostgreSQL, Node) is missing: an explicit opt-in, so a
// run without a database never passes by accident.
const SkipEnv = "CANVASD_TEST_SKIP_DB"

// Unavailable fails t because the database cannot be reached, saying how to
// point the tests at one. With CANVASD_TEST_SKIP_DB=1 it skips t instead,
// except under CI=true, where a missing database is always a broken run.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	Missing(t, fmt.Sprintf("PostgreSQL unreachable at %s: %v", Redacted(), err),
		"start PostgreSQL there, or point the tests at one with "+
			"DATABASE_URL=postgres://USER@HOST:PORT/DB?sslmode=disable")
}

// Missing fails t because something it needs is missing (what), with a hint
// on how to provide it, or skips t when CANVASD_TEST_SKIP_DB opts in.
func Missing(t testing.TB, what, hint string) {
	t.Helper()
	if skipAllowed() {
		t.Skipf("%s (skipped: %s is set)", what, SkipEnv)
	}
	t.Fatalf("%s\n\t%s;\n\tor set %s=1 to skip the tests that need it (ignored under CI=true)", what, hint, SkipEnv)
}

func skipAllowed() bool {
	if os.Getenv("CI") == "true" {
		return false
	}
	ok, _ := strconv.ParseBool(os.Getenv(SkipEnv))
	return ok
}

// Redacted returns the test database URL without its password.
func Redacted() string {
	u, err := url.Parse(URL())
	if err != nil {
		return "DATABASE_URL (unparsable)"
	}
	return u.Redacted()
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

// SchemaURL creates a fresh schema like Schema and returns a database URL
// whose connections use it, for code that takes a URL (a whole server).
func SchemaURL(t testing.TB) string {
	t.Helper()
	cfg := Schema(t)
	u, err := url.Parse(URL())
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", cfg.ConnConfig.RuntimeParams["search_path"])
	u.RawQuery = q.Encode()
	return u.String()
}
