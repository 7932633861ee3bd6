// Package migrations holds canvasd's schema as numbered SQL files, embedded
// in the binary and applied at start-up.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"strings"

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

// State is how far a schema is migrated.
type State struct {
	// Current is the version applied (0: none), Latest the version this
	// build brings.
	Current, Latest int32
	// Pending names the migrations not yet applied, in order.
	Pending []string
}

// UpToDate reports whether every migration of this build is applied. A
// schema ahead of the build (migrated by a newer release) counts as up to
// date: releases only add to the schema.
func (s State) UpToDate() bool { return s.Current >= s.Latest }

func (s State) String() string {
	switch {
	case s.Current > s.Latest:
		return fmt.Sprintf("schema version %d, ahead of this build's %d", s.Current, s.Latest)
	case s.UpToDate():
		return fmt.Sprintf("schema version %d, up to date", s.Current)
	}
	return fmt.Sprintf("schema version %d, this build needs %d (%d pending: %s)",
		s.Current, s.Latest, len(s.Pending), strings.Join(s.Pending, ", "))
}

// Status reads how far the schema reached through pool is migrated. It only
// reads: unlike Apply, it creates nothing, so it works with a role that may
// not change the schema.
func Status(ctx context.Context, pool *pgxpool.Pool) (State, error) {
	m, err := migrate.NewMigratorEx(ctx, nil, versionTable, &migrate.MigratorOptions{})
	if err != nil {
		return State{}, fmt.Errorf("migrator: %w", err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return State{}, fmt.Errorf("load migrations: %w", err)
	}
	var st State
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, versionTable).Scan(&exists); err != nil {
		return State{}, fmt.Errorf("schema version: %w", err)
	}
	if exists {
		if err := pool.QueryRow(ctx, `SELECT version FROM `+versionTable).Scan(&st.Current); err != nil {
			return State{}, fmt.Errorf("schema version: %w", err)
		}
	}
	for _, mig := range m.Migrations {
		st.Latest = max(st.Latest, mig.Sequence)
		if mig.Sequence > st.Current {
			st.Pending = append(st.Pending, mig.Name)
		}
	}
	return st, nil
}
