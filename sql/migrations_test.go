package migrations_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	migrations "github.com/canvasd/canvasd/sql"
	"github.com/canvasd/canvasd/tests/pgtest"
)

// Two instances starting at once on an empty schema: both succeed, the
// schema is created once, and applying again changes nothing.
func TestApplyFromScratchConcurrentlyAndAgain(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	a := pgtest.PoolFrom(t, cfg, false)
	b := pgtest.PoolFrom(t, cfg, false)
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []*pgxpool.Pool{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = migrations.Apply(ctx, p)
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	require.NoError(t, migrations.Apply(ctx, a), "applying again is a no-op")

	var version int
	require.NoError(t, a.QueryRow(ctx, `SELECT version FROM canvasd_schema_version`).Scan(&version))
	files, err := filepath.Glob("*.up.sql")
	require.NoError(t, err)
	require.Equal(t, len(files), version, "every migration applied")
	var tables []string
	rows, err := a.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.Equal(t, []string{"canvas_purges", "canvasd_schema_version", "canvases", "client_groups", "client_groups_deleted", "clients", "edges", "global_version", "nodes"}, tables)
}

// Status reads how far a schema is migrated and changes nothing.
func TestStatusBeforeAndAfterApply(t *testing.T) {
	t.Parallel()
	pool := pgtest.PoolFrom(t, pgtest.Schema(t), false)
	ctx := context.Background()

	st, err := migrations.Status(ctx, pool)
	require.NoError(t, err)
	files, err := filepath.Glob("*.up.sql")
	require.NoError(t, err)
	sort.Strings(files)
	require.Equal(t, int32(0), st.Current)
	require.Equal(t, int32(len(files)), st.Latest)
	require.Equal(t, files, st.Pending)
	require.False(t, st.UpToDate())
	require.Contains(t, st.String(), fmt.Sprintf("schema version 0, this build needs %d", len(files)))
	var tables int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables))
	require.Zero(t, tables, "Status creates nothing")

	require.NoError(t, migrations.Apply(ctx, pool))
	st, err = migrations.Status(ctx, pool)
	require.NoError(t, err)
	require.True(t, st.UpToDate())
	require.Empty(t, st.Pending)
	require.Equal(t, fmt.Sprintf("schema version %d, up to date", len(files)), st.String())
}
