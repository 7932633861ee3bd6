package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	migrations "github.com/canvasd/canvasd/sql"
)

// The raw SQL ceiling: the statements of one committed moveNode, one
// transaction per mutation, with no HTTP and no actors — what the database
// alone allows on this machine. Workers are placed on canvases like the
// closed-loop clients (K per canvas, or by Zipf draw).
const (
	ceilBumpCanvas = `UPDATE canvases SET version = version + 1 WHERE id = $1 RETURNING version`
	ceilBumpGlobal = `UPDATE global_version SET version = version + 1 WHERE id = 1 RETURNING version`
	ceilMoveNode   = `UPDATE nodes SET x = $3, y = $4, version = $5 WHERE canvas_id = $1 AND id = $2`
	ceilUpsert     = `INSERT INTO clients (canvas_id, id, client_group_id, last_mutation_id, version)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (canvas_id, id) DO UPDATE SET last_mutation_id = EXCLUDED.last_mutation_id, version = EXCLUDED.version, updated_at = now()`
)

// runCeiling applies canvasd's schema to dbURL, seeds it and runs the
// one-commit-per-mutation loop. variant is "canvas" (bump the canvas row) or
// "global" (bump the single global_version row, as the global baseline does).
func runCeiling(ctx context.Context, cfg Config, mode, variant, dbURL string, prog *progress) (*Result, error) {
	workers := cfg.Canvases * cfg.Clients
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	// Bounded like canvasd's pool (--ceiling-conns, default = canvasd's
	// --db-max-conns default); workers beyond it wait for a connection, and
	// that wait counts in the latency.
	pcfg.MaxConns = int32(max(min(workers, cfg.CeilingConns), 1))
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	if err := migrations.Apply(ctx, pool); err != nil {
		return nil, fmt.Errorf("apply schema: %w", err)
	}

	// Seed: canvases with a node pool, one client group per worker.
	canvasID := func(i int) string { return "ceil-" + strconv.Itoa(i) }
	b := &pgx.Batch{}
	for i := range cfg.Canvases {
		b.Queue(`INSERT INTO canvases (id, epoch) VALUES ($1, 'bench')`, canvasID(i))
		b.Queue(`INSERT INTO nodes (canvas_id, id, kind, x, y, w, h, version)
SELECT $1, 'n' || g, 'box', 0, 10 * g, 200, 120, 0 FROM generate_series(0, $2 - 1) AS g`, canvasID(i), cfg.Nodes)
	}
	ch := newChooser(cfg.Canvases, cfg.Dist, cfg.ZipfS, cfg.Seed)
	assign := make([]int, workers)
	for w := range workers {
		assign[w] = w / cfg.Clients
		if cfg.Dist == "zipf" {
			assign[w] = ch.next()
		}
		b.Queue(`INSERT INTO client_groups (canvas_id, id) VALUES ($1, $2)`, canvasID(assign[w]), "g"+strconv.Itoa(w))
	}
	if err := pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}

	bump := ceilBumpCanvas
	if variant == "global" {
		bump = ceilBumpGlobal
	}
	res := newResult(cfg, mode)
	res.Rate = 0 // the ceiling is always a closed loop
	var errs Errors
	var total atomic.Int64
	start := time.Now()
	mStart := start.Add(cfg.Warmup)
	mEnd := mStart.Add(cfg.Duration)
	inWindow := func(t time.Time) bool { return !t.Before(mStart) && !t.After(mEnd) }
	prog.begin(mode, start, mStart, mEnd, &total, &errs)
	defer prog.end()

	loadCtx, cancel := context.WithDeadline(ctx, mEnd.Add(cfg.Timeout))
	defer cancel()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			cid := canvasID(assign[w])
			client, group := "c"+strconv.Itoa(w), "g"+strconv.Itoa(w)
			rnd := rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
			for lmid := int64(1); loadCtx.Err() == nil && time.Now().Before(mEnd); lmid++ {
				t0 := time.Now()
				err := ceilingTx(loadCtx, pool, bump, cid, client, group, lmid,
					"n"+strconv.Itoa(rnd.IntN(cfg.Nodes)), float64(lmid), math.Round(rnd.Float64()*10000)/10)
				t1 := time.Now()
				if err != nil {
					if loadCtx.Err() != nil {
						return
					}
					if inWindow(t1) {
						errs.Add("sql")
					}
					continue
				}
				total.Add(1)
				if inWindow(t1) {
					res.Push.Record(t1.Sub(t0))
					atomic.AddInt64(&res.Mutations, 1)
					atomic.AddInt64(&res.Pushes, 1)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Errors = errs.Snapshot()
	return res, nil
}

// ceilingTx commits one mutation: BEGIN; bump the version; move the node;
// upsert the client; COMMIT.
func ceilingTx(ctx context.Context, pool *pgxpool.Pool, bump, canvas, client, group string, lmid int64, node string, x, y float64) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // no-op after commit
	var v int64
	if bump == ceilBumpGlobal {
		err = tx.QueryRow(ctx, bump).Scan(&v)
		if err == nil { // the global baseline also stamps the canvas row
			_, err = tx.Exec(ctx, `UPDATE canvases SET version = $2 WHERE id = $1`, canvas, v)
		}
	} else {
		err = tx.QueryRow(ctx, bump, canvas).Scan(&v)
	}
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, ceilMoveNode, canvas, node, x, y, v); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, ceilUpsert, canvas, client, group, lmid, v); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
