package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/canvasd/canvasd/canvas"
)

// The statement that writes one batch of a canvas, in parts. It bumps the
// version only if the canvas is still at the version the caller's memory
// holds (@expect); every other part joins on that row, so with stale memory
// nothing at all is written. A whole batch costs one round trip and one
// commit. Only the parts a batch needs are sent: a move-only batch is three
// sub-statements, not seven (each prepared once per shape).
const (
	commitVersion = `WITH v AS (
	UPDATE canvases SET version = version + 1
	WHERE id = @canvas AND version = @expect
	RETURNING version
)`
	commitVersionTitle = `WITH v AS (
	UPDATE canvases SET version = version + 1, title = @title, title_version = version + 1
	WHERE id = @canvas AND version = @expect
	RETURNING version
)`
	commitNodes = `, un AS (
	INSERT INTO nodes (canvas_id, id, kind, x, y, w, h, title, body, version, deleted)
	SELECT @canvas, u.id, u.kind, u.x, u.y, u.w, u.h, u.title, u.body, v.version, false
	FROM v, unnest(@node_ids::text[], @kinds::text[], @xs::float8[], @ys::float8[], @ws::float8[], @hs::float8[], @titles::text[], @bodies::text[])
		AS u(id, kind, x, y, w, h, title, body)
	ON CONFLICT (canvas_id, id) DO UPDATE SET kind = excluded.kind, x = excluded.x, y = excluded.y,
		w = excluded.w, h = excluded.h, title = excluded.title, body = excluded.body,
		version = excluded.version, deleted = false
)`
	commitDelNodes = `, dn AS (
	UPDATE nodes SET deleted = true, version = v.version FROM v
	WHERE nodes.canvas_id = @canvas AND nodes.id = ANY(@del_nodes::text[])
)`
	commitEdges = `, ue AS (
	INSERT INTO edges (canvas_id, id, from_node, to_node, version, deleted)
	SELECT @canvas, u.id, u.from_node, u.to_node, v.version, false
	FROM v, unnest(@edge_ids::text[], @froms::text[], @tos::text[]) AS u(id, from_node, to_node)
	ON CONFLICT (canvas_id, id) DO UPDATE SET from_node = excluded.from_node, to_node = excluded.to_node,
		version = excluded.version, deleted = false
)`
	commitDelEdges = `, de AS (
	UPDATE edges SET deleted = true, version = v.version FROM v
	WHERE edges.canvas_id = @canvas AND edges.id = ANY(@del_edges::text[])
)`
	commitGroups = `, g AS (
	INSERT INTO client_groups (canvas_id, id, user_id)
	SELECT @canvas, u.id, u.user_id FROM v, unnest(@group_ids::text[], @group_users::text[]) AS u(id, user_id)
	ON CONFLICT DO NOTHING
)`
	commitClients = `, c AS (
	INSERT INTO clients (canvas_id, id, client_group_id, last_mutation_id, version)
	SELECT @canvas, u.id, u.grp, u.lmid, v.version FROM v, unnest(@client_ids::text[], @client_groups::text[], @lmids::int8[]) AS u(id, grp, lmid)
	ON CONFLICT (canvas_id, id) DO UPDATE SET last_mutation_id = excluded.last_mutation_id,
		version = excluded.version, updated_at = now()
)`
	commitReturn = `
SELECT version FROM v`
	// The notification rides in the same statement, so it is sent exactly
	// when the batch commits (the in-transaction notify of the baseline).
	commitReturnNotify = `
SELECT v.version FROM v, LATERAL (SELECT pg_notify(@channel, @prefix || v.version::text)) n`
)

// commitStatement assembles the statement and arguments for r.
func commitStatement(canvasID string, expect int64, r *rows, notifyChannel, notifyPrefix string) (string, pgx.NamedArgs) {
	args := pgx.NamedArgs{"canvas": canvasID, "expect": expect}
	var q strings.Builder
	if r.setTitle {
		q.WriteString(commitVersionTitle)
		args["title"] = r.title
	} else {
		q.WriteString(commitVersion)
	}
	if n := &r.nodes; len(n.id) > 0 {
		q.WriteString(commitNodes)
		args["node_ids"], args["kinds"], args["titles"], args["bodies"] = n.id, n.kind, n.title, n.body
		args["xs"], args["ys"], args["ws"], args["hs"] = n.x, n.y, n.w, n.h
	}
	if len(r.delNodes) > 0 {
		q.WriteString(commitDelNodes)
		args["del_nodes"] = r.delNodes
	}
	if len(r.edgeIDs) > 0 {
		q.WriteString(commitEdges)
		args["edge_ids"], args["froms"], args["tos"] = r.edgeIDs, r.from, r.to
	}
	if len(r.delEdges) > 0 {
		q.WriteString(commitDelEdges)
		args["del_edges"] = r.delEdges
	}
	if len(r.groupIDs) > 0 {
		q.WriteString(commitGroups)
		args["group_ids"], args["group_users"] = r.groupIDs, r.groupUsers
	}
	if len(r.clientIDs) > 0 {
		q.WriteString(commitClients)
		args["client_ids"], args["client_groups"], args["lmids"] = r.clientIDs, r.clientGroups, r.lmids
	}
	if notifyChannel != "" {
		q.WriteString(commitReturnNotify)
		args["channel"], args["prefix"] = notifyChannel, notifyPrefix
	} else {
		q.WriteString(commitReturn)
	}
	return q.String(), args
}

// ErrStale means the canvas moved past the version the caller expected:
// another instance wrote it. Nothing was written.
var ErrStale = errors.New("canvas version moved")

// CommitBatch writes wr as the next version of canvasID, provided the canvas
// is still at version expect, in one statement (one round trip, one commit).
// With notifyChannel set, pg_notify(notifyChannel, notifyPrefix||version) is
// sent by the same statement. It returns ErrStale if the canvas is no longer
// at expect, and canvas.ErrNotFound if it does not exist.
func (s *Store) CommitBatch(ctx context.Context, canvasID string, expect int64, wr *Write, notifyChannel, notifyPrefix string) (int64, error) {
	query, args := commitStatement(canvasID, expect, splitRows(wr), notifyChannel, notifyPrefix)
	var version int64
	err := s.pool.QueryRow(ctx, query, args).Scan(&version)
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

// GroupOwner returns the canvas and user a client group is bound to.
func (s *Store) GroupOwner(ctx context.Context, groupID, preferCanvas string) (canvasID, userID string, found bool, err error) {
	return groupOwner(ctx, s.pool, groupID, preferCanvas)
}
