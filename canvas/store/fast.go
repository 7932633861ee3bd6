package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/canvasd/canvasd/canvas"
)

// commitCanvas writes one batch of a canvas in a single statement, so a
// whole batch costs one round trip and one commit. It bumps the version only
// if the canvas is still at the version the caller's cache holds; every
// other part of the statement joins on that row, so with a stale cache
// nothing at all is written.
const commitCanvas = `WITH v AS (
	UPDATE canvases SET version = version + 1,
		title = CASE WHEN $3 THEN $4 ELSE title END,
		title_version = CASE WHEN $3 THEN version + 1 ELSE title_version END
	WHERE id = $1 AND version = $2
	RETURNING version
), un AS (
	INSERT INTO nodes (canvas_id, id, kind, x, y, w, h, title, body, version, deleted)
	SELECT $1, u.id, u.kind, u.x, u.y, u.w, u.h, u.title, u.body, v.version, false
	FROM v, unnest($5::text[], $6::text[], $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::text[], $12::text[])
		AS u(id, kind, x, y, w, h, title, body)
	ON CONFLICT (canvas_id, id) DO UPDATE SET kind = excluded.kind, x = excluded.x, y = excluded.y,
		w = excluded.w, h = excluded.h, title = excluded.title, body = excluded.body,
		version = excluded.version, deleted = false
), dn AS (
	UPDATE nodes SET deleted = true, version = v.version FROM v
	WHERE nodes.canvas_id = $1 AND nodes.id = ANY($13::text[])
), ue AS (
	INSERT INTO edges (canvas_id, id, from_node, to_node, version, deleted)
	SELECT $1, u.id, u.from_node, u.to_node, v.version, false
	FROM v, unnest($14::text[], $15::text[], $16::text[]) AS u(id, from_node, to_node)
	ON CONFLICT (canvas_id, id) DO UPDATE SET from_node = excluded.from_node, to_node = excluded.to_node,
		version = excluded.version, deleted = false
), de AS (
	UPDATE edges SET deleted = true, version = v.version FROM v
	WHERE edges.canvas_id = $1 AND edges.id = ANY($17::text[])
), g AS (
	INSERT INTO client_groups (canvas_id, id, user_id)
	SELECT $1, u.id, u.user_id FROM v, unnest($18::text[], $19::text[]) AS u(id, user_id)
	ON CONFLICT DO NOTHING
), c AS (
	INSERT INTO clients (canvas_id, id, client_group_id, last_mutation_id, version)
	SELECT $1, u.id, u.grp, u.lmid, v.version FROM v, unnest($20::text[], $21::text[], $22::int8[]) AS u(id, grp, lmid)
	ON CONFLICT (canvas_id, id) DO UPDATE SET last_mutation_id = excluded.last_mutation_id,
		version = excluded.version, updated_at = now()
)
`

const (
	commitCanvasReturn = commitCanvas + `SELECT version FROM v`
	// The notification rides in the same statement, so it is sent exactly
	// when the batch commits (the in-transaction notify of the baseline).
	commitCanvasNotify = commitCanvas + `SELECT v.version FROM v, LATERAL (SELECT pg_notify($23, $24 || v.version::text)) n`
)

// ErrStale means the canvas moved past the version the caller expected:
// another instance wrote it. Nothing was written.
var ErrStale = errors.New("canvas version moved")

// CommitBatch writes wr as the next version of canvasID, provided the canvas
// is still at version expect, in one statement (one round trip, one commit).
// With notifyChannel set, pg_notify(notifyChannel, notifyPrefix||version) is
// sent by the same statement. It returns ErrStale if the canvas is no longer
// at expect, and canvas.ErrNotFound if it does not exist.
func (s *Store) CommitBatch(ctx context.Context, canvasID string, expect int64, wr *Write, notifyChannel, notifyPrefix string) (int64, error) {
	r := splitRows(wr)
	n := &r.nodes
	args := []any{canvasID, expect, r.setTitle, r.title,
		n.id, n.kind, n.x, n.y, n.w, n.h, n.title, n.body,
		r.delNodes, r.edgeIDs, r.from, r.to, r.delEdges,
		r.groupIDs, r.groupUsers, r.clientIDs, r.clientGroups, r.lmids}
	query := commitCanvasReturn
	if notifyChannel != "" {
		query = commitCanvasNotify
		args = append(args, notifyChannel, notifyPrefix)
	}
	var version int64
	err := s.pool.QueryRow(ctx, query, args...).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		// Either the canvas is gone or it moved on: tell which.
		if _, err := s.Version(ctx, canvasID); err != nil {
			return 0, err
		}
		return 0, ErrStale
	}
	if err != nil {
		return 0, fmt.Errorf("commit canvas %s: %w", canvasID, err)
	}
	return version, nil
}

// Version returns the current version of canvasID.
func (s *Store) Version(ctx context.Context, canvasID string) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM canvases WHERE id = $1`, canvasID).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, canvas.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("canvas %s version: %w", canvasID, err)
	}
	return v, nil
}

// Versions returns the current versions of the canvases named (a missing
// canvas is absent from the map), in one query.
func (s *Store) Versions(ctx context.Context, canvasIDs []string) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, version FROM canvases WHERE id = ANY($1)`, canvasIDs)
	if err != nil {
		return nil, fmt.Errorf("canvas versions: %w", err)
	}
	out := make(map[string]int64, len(canvasIDs))
	var id string
	var v int64
	_, err = pgx.ForEachRow(rows, []any{&id, &v}, func() error {
		out[id] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("canvas versions: %w", err)
	}
	return out, nil
}

// GroupOwner returns the canvas and user a client group is bound to.
func (s *Store) GroupOwner(ctx context.Context, groupID, preferCanvas string) (canvasID, userID string, found bool, err error) {
	return groupOwner(ctx, s.pool, groupID, preferCanvas)
}
