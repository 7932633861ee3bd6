package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/canvasd/canvasd/canvas"
)

// PullResult is one consistent read of a canvas for a pull.
type PullResult struct {
	Canvas  Canvas
	Changes []canvas.Change
	// LastMutationIDs of the group's clients changed after since.
	LastMutationIDs map[string]int64
	// GroupCanvas and GroupUser say where the group is bound ("" if new).
	GroupCanvas, GroupUser string
	// GroupDeleted is set when the group was deleted for idleness.
	GroupDeleted bool
	// Reset is set when since is older than the canvas's tombstone
	// horizon: deletes after it may be gone, so Changes holds every live
	// row (a reset patch) and LastMutationIDs every client of the group.
	Reset bool
}

// Pull reads, in one REPEATABLE READ snapshot, the canvas row, everything
// written to it after since (Full: everything live), and the group's
// clients changed after since.
func (s *Store) Pull(ctx context.Context, canvasID, groupID string, since int64) (*PullResult, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin pull: %w", err)
	}
	defer rollback(ctx, tx)

	res := &PullResult{LastMutationIDs: make(map[string]int64)}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+canvasColumns+` FROM canvases WHERE id = $1`, canvasID).QueryRow(func(row pgx.Row) error {
		var err error
		res.Canvas, err = scanCanvas(row)
		return err
	})
	b.Queue(`SELECT canvas_id, user_id FROM client_groups WHERE id = $1 ORDER BY canvas_id = $2 DESC LIMIT 1`,
		groupID, canvasID).Query(func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, []any{&res.GroupCanvas, &res.GroupUser}, func() error { return nil })
		return err
	})
	queuePullRows(b, res, canvasID, groupID, since)
	b.Queue(`SELECT EXISTS (SELECT 1 FROM client_groups_deleted WHERE canvas_id = $1 AND id = $2)`, canvasID, groupID).
		QueryRow(func(row pgx.Row) error { return row.Scan(&res.GroupDeleted) })
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("pull canvas %s: %w", canvasID, err)
	}
	if since != Full && since < res.Canvas.TombstoneHorizon {
		// Tombstones after since were purged: read everything live, in
		// the same snapshot.
		since, res.Reset = Full, true
		res.Changes, res.LastMutationIDs = nil, make(map[string]int64)
		b = &pgx.Batch{}
		queuePullRows(b, res, canvasID, groupID, since)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return nil, fmt.Errorf("pull canvas %s: %w", canvasID, err)
		}
	}
	if res.Canvas.titleVersion > since {
		res.Changes = append(res.Changes, canvas.Change{Kind: canvas.ChangeCanvas, ID: canvasID, Title: res.Canvas.Title})
	}
	return res, nil
}

// queuePullRows queues the reads of the rows written after since and of
// the group's clients changed after since.
func queuePullRows(b *pgx.Batch, res *PullResult, canvasID, groupID string, since int64) {
	queueChanges(b, canvasID, since, &res.Changes)
	b.Queue(`SELECT id, last_mutation_id FROM clients WHERE canvas_id = $1 AND client_group_id = $2 AND version > $3`,
		canvasID, groupID, since).Query(func(rows pgx.Rows) error {
		var id string
		var lmid int64
		_, err := pgx.ForEachRow(rows, []any{&id, &lmid}, func() error {
			res.LastMutationIDs[id] = lmid
			return nil
		})
		return err
	})
}
