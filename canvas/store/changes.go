package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/canvasd/canvasd/canvas"
)

// Client is the server's record of one Replicache client.
type Client struct {
	Group          string
	LastMutationID int64
	// Version is the canvas version at which LastMutationID last changed.
	Version int64
}

// Full asks an incremental read for everything live.
const Full int64 = -1

// Queries behind incremental reads: every row written after version since
// (tombstones included, so deletions travel). With since = Full only live
// rows are read: a full load or an initial pull.
const (
	nodesSince = `SELECT id, deleted, version, kind, x, y, w, h, title, body FROM nodes
		WHERE canvas_id = $1 AND version > $2 AND ($2 >= 0 OR NOT deleted)`
	edgesSince = `SELECT id, deleted, version, from_node, to_node FROM edges
		WHERE canvas_id = $1 AND version > $2 AND ($2 >= 0 OR NOT deleted)`
)

// queueChanges queues the reads of every node and edge written after since
// onto b; the rows are appended to *out as canvas.Changes.
func queueChanges(b *pgx.Batch, canvasID string, since int64, out *[]canvas.Change) {
	b.Queue(nodesSince, canvasID, since).Query(func(rows pgx.Rows) error {
		var c canvas.Change
		c.Kind = canvas.ChangeNode
		n := &c.Node
		_, err := pgx.ForEachRow(rows, []any{&c.ID, &c.Deleted, &c.Version, &n.Kind, &n.X, &n.Y, &n.W, &n.H, &n.Title, &n.Body}, func() error {
			cc := c
			if cc.Deleted {
				cc.Node = canvas.Node{}
			} else {
				cc.Node.ID = cc.ID
			}
			*out = append(*out, cc)
			return nil
		})
		return err
	})
	b.Queue(edgesSince, canvasID, since).Query(func(rows pgx.Rows) error {
		var c canvas.Change
		c.Kind = canvas.ChangeEdge
		e := &c.Edge
		_, err := pgx.ForEachRow(rows, []any{&c.ID, &c.Deleted, &c.Version, &e.From, &e.To}, func() error {
			cc := c
			if cc.Deleted {
				cc.Edge = canvas.Edge{}
			} else {
				cc.Edge.ID = cc.ID
			}
			*out = append(*out, cc)
			return nil
		})
		return err
	})
}

// Snapshot is what a canvas actor keeps in memory: the canvas row, its rows
// written after a version, and its clients.
type Snapshot struct {
	Canvas  Canvas
	Changes []canvas.Change
	Clients map[string]Client
}

// loadSince reads canvasID's rows and clients written after since.
func loadSince(ctx context.Context, q interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}, canvasID string, since int64) (*Snapshot, error) {
	snap := &Snapshot{Clients: make(map[string]Client)}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+canvasColumns+` FROM canvases WHERE id = $1`, canvasID).QueryRow(func(row pgx.Row) error {
		var err error
		snap.Canvas, err = scanCanvas(row)
		return err
	})
	queueChanges(b, canvasID, since, &snap.Changes)
	b.Queue(`SELECT id, client_group_id, last_mutation_id, version FROM clients WHERE canvas_id = $1 AND version > $2`,
		canvasID, since).Query(func(rows pgx.Rows) error {
		var id string
		var c Client
		_, err := pgx.ForEachRow(rows, []any{&id, &c.Group, &c.LastMutationID, &c.Version}, func() error {
			snap.Clients[id] = c
			return nil
		})
		return err
	})
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	if snap.Canvas.titleVersion > since {
		snap.Changes = append(snap.Changes, canvas.Change{Kind: canvas.ChangeCanvas, ID: canvasID, Title: snap.Canvas.Title, Version: snap.Canvas.titleVersion})
	}
	return snap, nil
}

// ReadSince reads, in one REPEATABLE READ snapshot, the canvas row and
// everything written to it after since.
func (s *Store) ReadSince(ctx context.Context, canvasID string, since int64) (*Snapshot, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin read: %w", err)
	}
	defer rollback(ctx, tx)
	snap, err := loadSince(ctx, tx, canvasID, since)
	if err != nil {
		return nil, fmt.Errorf("read canvas %s: %w", canvasID, err)
	}
	return snap, nil
}

// Load reads the whole live content of canvasID and all its clients.
func (s *Store) Load(ctx context.Context, canvasID string) (*Snapshot, error) {
	snap, err := loadSince(ctx, s.pool, canvasID, Full)
	if err != nil {
		return nil, fmt.Errorf("load canvas %s: %w", canvasID, err)
	}
	return snap, nil
}
