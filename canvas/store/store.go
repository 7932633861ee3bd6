// Package store is canvasd's PostgreSQL store: the only package that speaks
// SQL. It maps pgx errors to domain errors so nothing above it sees pgx.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/puddle/v2"
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
// database could not be reached or went away, the work ran out of time, the
// database chose this transaction as a serialization or deadlock victim, or
// the canvas was busy or moved (ErrBusy, ErrStale). Nothing else is: an
// error this does not recognize (a bug, a bad argument, a constraint, a
// panic) is permanent, so a client is not told to retry it forever.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return temporaryCode(pgErr.Code)
	}
	var (
		netErr     net.Error
		connectErr *pgconn.ConnectError
	)
	switch {
	case errors.Is(err, ErrBusy), errors.Is(err, ErrStale):
		return true
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return true
	case errors.Is(err, context.Canceled):
		// The work was abandoned (a request gone, a shutdown), not refused.
		return true
	case pgconn.SafeToRetry(err), errors.Is(err, pgconn.ErrConnClosed):
		return true
	case errors.As(err, &connectErr), errors.As(err, &netErr):
		return true // cannot connect, or the connection broke
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true // the server closed the connection mid-answer
	case errors.Is(err, puddle.ErrClosedPool):
		return true // shutting down: another instance can answer
	}
	return false
}

// temporaryCode reports whether a PostgreSQL error code means "retry later".
func temporaryCode(code string) bool {
	switch code {
	case "40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03", // lock_not_available (lock_timeout)
		"57014", // query_canceled (statement_timeout)
		"57P01", // admin_shutdown (also pg_terminate_backend)
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now (starting up, shutting down)
		"57P05", // idle_session_timeout
		"25P03", // idle_in_transaction_session_timeout
		"53300": // too_many_connections
		return true
	}
	return strings.HasPrefix(code, "08") // connection exceptions
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
