package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/canvasd/canvasd/canvas"
)

// Deleting a canvas removes its row at once, so every read and write of it
// finds nothing from then on, and records it in canvas_purges; its nodes,
// edges, client groups and clients are removed afterwards by PurgeStep, a
// small batch at a time. Deleting and creating one id are serialized by a
// transaction-scoped advisory lock on the id.

// lockCanvasID serializes deletion and creation of id.
const lockCanvasID = `SELECT pg_advisory_xact_lock(hashtextextended('canvasd.canvas:' || $1, 0))`

// DeleteCanvas deletes canvas id (canvas.ErrNotFound if there is none)
// and leaves its content to PurgeStep.
func (s *Store) DeleteCanvas(ctx context.Context, id string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delete canvas %s: %w", id, err)
	}
	defer rollback(ctx, tx)
	if _, err := tx.Exec(ctx, lockCanvasID, id); err != nil {
		return fmt.Errorf("delete canvas %s: %w", id, err)
	}
	var epoch string
	err = tx.QueryRow(ctx, `DELETE FROM canvases WHERE id = $1 RETURNING epoch`, id).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return canvas.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete canvas %s: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO canvas_purges (canvas_id, epoch) VALUES ($1, $2)
		ON CONFLICT (canvas_id) DO UPDATE SET epoch = excluded.epoch, deleted_at = now()`, id, epoch); err != nil {
		return fmt.Errorf("delete canvas %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("delete canvas %s: %w", id, err)
	}
	return nil
}

// createCanvas creates id under the lock that serializes it with its
// deletion; what a deletion's purge left of it is removed first.
func (s *Store) createCanvas(ctx context.Context, id, title string) (Canvas, bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Canvas{}, false, fmt.Errorf("create canvas %s: %w", id, err)
	}
	defer rollback(ctx, tx)
	if _, err := tx.Exec(ctx, lockCanvasID, id); err != nil {
		return Canvas{}, false, fmt.Errorf("create canvas %s: %w", id, err)
	}
	// Waits for a purge batch holding the row, then takes it over.
	tag, err := tx.Exec(ctx, `DELETE FROM canvas_purges WHERE canvas_id = $1`, id)
	if err != nil {
		return Canvas{}, false, fmt.Errorf("create canvas %s: %w", id, err)
	}
	if tag.RowsAffected() > 0 {
		b := &pgx.Batch{}
		for _, table := range purgeTables {
			b.Queue(`DELETE FROM `+table+` WHERE canvas_id = $1`, id)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return Canvas{}, false, fmt.Errorf("create canvas %s: purge: %w", id, err)
		}
	}
	c, err := scanCanvas(tx.QueryRow(ctx,
		`INSERT INTO canvases (id, epoch, title) VALUES ($1, $2, $3)
		 ON CONFLICT (id) DO NOTHING RETURNING `+canvasColumns, id, newEpoch(), title))
	created := err == nil
	if errors.Is(err, canvas.ErrNotFound) {
		c, err = scanCanvas(tx.QueryRow(ctx, `SELECT `+canvasColumns+` FROM canvases WHERE id = $1`, id))
	}
	if err != nil {
		return Canvas{}, false, fmt.Errorf("create canvas %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Canvas{}, false, fmt.Errorf("create canvas %s: %w", id, err)
	}
	return c, created, nil
}

// purgeTables are the tables holding a canvas's content, clients before
// their groups (and the memory of groups deleted for idleness).
var purgeTables = []string{"clients", "client_groups", "client_groups_deleted", "edges", "nodes"}

// PurgeStep removes up to batch rows of each table for one deleted canvas
// (one whose purge no other instance is running), in one short
// transaction, and forgets the canvas once nothing of it is left. It
// reports whether a canvas was worked on: false means no purge is waiting.
func (s *Store) PurgeStep(ctx context.Context, batch int) (bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("purge: %w", err)
	}
	defer rollback(ctx, tx)
	var id string
	err = tx.QueryRow(ctx, `SELECT canvas_id FROM canvas_purges ORDER BY deleted_at
		LIMIT 1 FOR UPDATE SKIP LOCKED`).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("purge: %w", err)
	}
	b := &pgx.Batch{}
	for _, table := range purgeTables {
		b.Queue(`DELETE FROM `+table+` WHERE (canvas_id, id) IN
			(SELECT canvas_id, id FROM `+table+` WHERE canvas_id = $1 LIMIT $2)`, id, batch)
	}
	br := tx.SendBatch(ctx, b)
	left := false
	for range purgeTables {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return false, fmt.Errorf("purge canvas %s: %w", id, err)
		}
		left = left || tag.RowsAffected() == int64(batch)
	}
	if err := br.Close(); err != nil {
		return false, fmt.Errorf("purge canvas %s: %w", id, err)
	}
	if !left {
		if _, err := tx.Exec(ctx, `DELETE FROM canvas_purges WHERE canvas_id = $1`, id); err != nil {
			return false, fmt.Errorf("purge canvas %s: %w", id, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("purge canvas %s: %w", id, err)
	}
	return true, nil
}
