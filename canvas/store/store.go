// Package store is canvasd's PostgreSQL store: the only package that speaks
// SQL. It maps pgx errors to domain errors so nothing above it sees pgx.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store reads and writes canvases in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool returns the underlying pool (for readiness checks and the notifier).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// querier is what both a pool and a transaction can do.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// IsTemporary reports whether err is worth retrying later as it is: the
// database is unreachable, shutting down, or chose this transaction as a
// deadlock or serialization victim.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, ErrBusy) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", "53", "57", "40": // connection, resources, operator intervention, tx rollback
			return true
		}
		return false
	}
	// Anything else from pgx below the SQL layer is a network or pool error.
	return true
}

// rollback ends tx with a context that cannot be cancelled, so a cancelled
// request never leaves a transaction open.
func rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
}

// lockError turns a lock wait that ran out (lock_timeout) into ErrBusy.
func lockError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
		return fmt.Errorf("%w: %s", ErrBusy, pgErr.Message)
	}
	return err
}
