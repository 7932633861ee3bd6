package main

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	migrations "github.com/canvasd/canvasd/sql"
)

// readiness is what /readyz reports, answered from memory: the start-up
// phase, and whether the database answered the last background probe. A
// readiness check never waits on the database itself, so probes hammering
// /readyz during an outage cost nothing.
type readiness struct {
	phase atomic.Pointer[string] // start-up status; nil once started
	dbErr atomic.Pointer[error]  // the last probe's failure; nil: reachable
}

func newReadiness() *readiness {
	r := &readiness{}
	r.setPhase("starting")
	return r
}

// setPhase sets the start-up status; "" marks start-up as done.
func (r *readiness) setPhase(p string) {
	if p == "" {
		r.phase.Store(nil)
		return
	}
	r.phase.Store(&p)
}

// status is the /readyz answer: a short status and whether it means ready.
func (r *readiness) status() (string, bool) {
	if r.dbErr.Load() != nil {
		return "database unreachable", false
	}
	if p := r.phase.Load(); p != nil {
		return *p, false
	}
	return "ready", true
}

// watch probes the database every interval until ctx ends, four times as
// often while it is unreachable so its return is seen soon, logging each
// change of state once.
func (r *readiness) watch(ctx context.Context, pool *pgxpool.Pool, every time.Duration, log *zap.Logger) {
	for {
		r.probe(ctx, pool, every, log)
		wait := every
		if r.dbErr.Load() != nil {
			wait = every / 4
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// connected records that a new database connection was just made: the
// database is back without waiting for the next probe.
func (r *readiness) connected(log *zap.Logger) {
	if r.dbErr.Swap(nil) != nil {
		log.Info("database reachable again")
	}
}

func (r *readiness) probe(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration, log *zap.Logger) {
	pctx, cancel := context.WithTimeout(ctx, max(timeout, time.Second))
	err := pool.Ping(pctx)
	cancel()
	switch {
	case ctx.Err() != nil:
		return // shutting down: no verdict
	case err != nil && errors.Is(err, context.DeadlineExceeded) && saturated(pool):
		// Every connection is busy serving requests: the database is
		// slow, not gone. Keep the previous verdict.
		return
	case err != nil:
		if r.dbErr.Swap(&err) == nil {
			log.Warn("database unreachable: /readyz answers 503 until it is back", zap.Error(err))
		}
	default:
		if r.dbErr.Swap(nil) != nil {
			log.Info("database reachable again")
		}
	}
}

func saturated(pool *pgxpool.Pool) bool {
	st := pool.Stat()
	return st.AcquiredConns() >= st.MaxConns()
}

// awaitSchema waits, for a server started with --migrate=false, until the
// schema is migrated as far as this build needs, saying why it is not
// ready meanwhile: the operator's migration (canvasd migrate up) may still
// be running.
func awaitSchema(ctx context.Context, pool *pgxpool.Pool, r *readiness, every time.Duration, log *zap.Logger) error {
	last := ""
	for {
		st, err := migrations.Status(ctx, pool)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			if msg := err.Error(); msg != last {
				log.Warn("cannot read the schema version, retrying", zap.Error(err))
				last = msg
			}
		case st.UpToDate():
			log.Info("schema checked (--migrate=false)", zap.Stringer("schema", st))
			return nil
		default:
			msg := "schema not migrated: " + st.String() + "; run canvasd migrate up"
			r.setPhase(msg)
			if msg != last {
				log.Error("not ready until the schema is migrated (started with --migrate=false)",
					zap.Stringer("schema", st), zap.String("fix", "canvasd migrate up"))
				last = msg
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}
