// Package migrations holds canvasd's schema as numbered SQL files, embedded
// in the binary and applied at start-up.
package migrations

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed *.up.sql
var files embed.FS

// versionTable records the applied migrations.
const versionTable = "canvasd_schema_version"

// Apply brings the schema reached through pool up to date. Each migration runs
// in its own transaction, and an advisory lock keeps two instances starting at
// once from both migrating.
func Apply(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	defer conn.Release()

	m, err := migrate.NewMigratorEx(ctx, conn.Conn(), versionTable, &migrate.MigratorOptions{})
	if err != nil {
		return fmt.Errorf("migrator: %w", err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
