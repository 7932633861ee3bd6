package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/canvasd/canvasd/canvas"
)

// The statement that writes the batches of many canvases at once, in
// parts. It bumps a canvas's version only if the canvas is still at the
// version its actor's memory holds; every row write joins on the bumped
// canvases, so a canvas with stale memory gets nothing written while the
// others commit. Many canvases' batches cost one round trip and one commit.
// Only the parts the batches need are sent (each shape prepared once).
const (
	commitVersions = `WITH l AS MATERIALIZED (
	SELECT id FROM canvases WHERE id = ANY(@canvases::text[]) FOR UPDATE SKIP LOCKED
), v AS (
	UPDATE canvases c SET version = c.version + 1,
		title = CASE WHEN u.set_title THEN u.title ELSE c.title END,
		title_version = CASE WHEN u.set_title THEN c.version + 1 ELSE c.title_version END
	FROM unnest(@canvases::text[], @expects::int8[], @set_titles::bool[], @titles::text[]) AS u(id, expect, set_title, title)
	JOIN l ON l.id = u.id
	WHERE c.id = u.id AND c.version = u.expect
	RETURNING c.id, c.version
)`
	commitNodes = `, un AS (
	INSERT INTO nodes (canvas_id, id, kind, x, y, w, h, title, body, version, deleted)
	SELECT u.canvas_id, u.id, u.kind, u.x, u.y, u.w, u.h, u.title, u.body, v.version, false
	FROM unnest(@node_canvases::text[], @node_ids::text[], @kinds::text[], @xs::float8[], @ys::float8[], @ws::float8[], @hs::float8[], @node_titles::text[], @bodies::text[])
		AS u(canvas_id, id, kind, x, y, w, h, title, body)
	JOIN v ON v.id = u.canvas_id
	ON CONFLICT (canvas_id, id) DO UPDATE SET kind = excluded.kind, x = excluded.x, y = excluded.y,
		w = excluded.w, h = excluded.h, title = excluded.title, body = excluded.body,
		version = excluded.version, deleted = false
)`
	commitDelNodes = `, dn AS (
	UPDATE nodes n SET deleted = true, version = v.version, deleted_at = now()
	FROM unnest(@del_node_canvases::text[], @del_nodes::text[]) AS u(canvas_id, id)
	JOIN v ON v.id = u.canvas_id
	WHERE n.canvas_id = u.canvas_id AND n.id = u.id
)`
	commitEdges = `, ue AS (
	INSERT INTO edges (canvas_id, id, from_node, to_node, version, deleted)
	SELECT u.canvas_id, u.id, u.from_node, u.to_node, v.version, false
	FROM unnest(@edge_canvases::text[], @edge_ids::text[], @froms::text[], @tos::text[]) AS u(canvas_id, id, from_node, to_node)
	JOIN v ON v.id = u.canvas_id
	ON CONFLICT (canvas_id, id) DO UPDATE SET from_node = excluded.from_node, to_node = excluded.to_node,
		version = excluded.version, deleted = false
)`
	commitDelEdges = `, de AS (
	UPDATE edges e SET deleted = true, version = v.version, deleted_at = now()
	FROM unnest(@del_edge_canvases::text[], @del_edges::text[]) AS u(canvas_id, id)
	JOIN v ON v.id = u.canvas_id
	WHERE e.canvas_id = u.canvas_id AND e.id = u.id
)`
	commitGroups = `, g AS (
	INSERT INTO client_groups (canvas_id, id, user_id)
	SELECT u.canvas_id, u.id, u.user_id
	FROM unnest(@group_canvases::text[], @group_ids::text[], @group_users::text[]) AS u(canvas_id, id, user_id)
	JOIN v ON v.id = u.canvas_id
	ON CONFLICT DO NOTHING
)`
	commitClients = `, cl AS (
	INSERT INTO clients (canvas_id, id, client_group_id, last_mutation_id, version)
	SELECT u.canvas_id, u.id, u.grp, u.lmid, v.version
	FROM unnest(@client_canvases::text[], @client_ids::text[], @client_groups::text[], @lmids::int8[]) AS u(canvas_id, id, grp, lmid)
	JOIN v ON v.id = u.canvas_id
	ON CONFLICT (canvas_id, id) DO UPDATE SET last_mutation_id = excluded.last_mutation_id,
		version = excluded.version, updated_at = now()
)`
	commitReturn = `
SELECT id, version FROM v`
	// The notifications ride in the same statement, so each is sent exactly
	// when its batch commits (the in-transaction notify of the baseline).
	commitReturnNotify = `
SELECT v.id, v.version FROM v, LATERAL (SELECT pg_notify(@channel, @instance || ' ' || v.id || ':' || v.version::text)) n`
	// The canvases locked but not bumped (their version moved) come back
	// with version 0; the ones not there at all were locked by another
	// session, or do not exist.
	commitReturnStale = `
UNION ALL
SELECT l.id, 0 FROM l WHERE NOT EXISTS (SELECT 1 FROM v WHERE v.id = l.id)`
)

// commitStatement assembles the statement and arguments for r.
func commitStatement(r *rows, notifyChannel, instance string) (string, pgx.NamedArgs) {
	args := pgx.NamedArgs{"canvases": r.canvases, "expects": r.expects, "set_titles": r.setTitles, "titles": r.titles}
	var q strings.Builder
	q.WriteString(commitVersions)
	if n := &r.nodes; len(n.id) > 0 {
		q.WriteString(commitNodes)
		args["node_canvases"], args["node_ids"], args["kinds"], args["node_titles"], args["bodies"] = r.nodeCanvas, n.id, n.kind, n.title, n.body
		args["xs"], args["ys"], args["ws"], args["hs"] = n.x, n.y, n.w, n.h
	}
	if len(r.delNodes) > 0 {
		q.WriteString(commitDelNodes)
		args["del_node_canvases"], args["del_nodes"] = r.delNodeCanvas, r.delNodes
	}
	if len(r.edgeIDs) > 0 {
		q.WriteString(commitEdges)
		args["edge_canvases"], args["edge_ids"], args["froms"], args["tos"] = r.edgeCanvas, r.edgeIDs, r.from, r.to
	}
	if len(r.delEdges) > 0 {
		q.WriteString(commitDelEdges)
		args["del_edge_canvases"], args["del_edges"] = r.delEdgeCanvas, r.delEdges
	}
	if len(r.groupIDs) > 0 {
		q.WriteString(commitGroups)
		args["group_canvases"], args["group_ids"], args["group_users"] = r.groupCanvas, r.groupIDs, r.groupUsers
	}
	if len(r.clientIDs) > 0 {
		q.WriteString(commitClients)
		args["client_canvases"], args["client_ids"], args["client_groups"], args["lmids"] = r.clientCanvas, r.clientIDs, r.clientGroups, r.lmids
	}
	if notifyChannel != "" {
		q.WriteString(commitReturnNotify)
		args["channel"], args["instance"] = notifyChannel, instance
	} else {
		q.WriteString(commitReturn)
	}
	q.WriteString(commitReturnStale)
	return q.String(), args
}

// serverTimeoutGrace is how long past a write's deadline the client side
// waits for the server to report the statement aborted.
const serverTimeoutGrace = 2 * time.Second

// ErrStale means the canvas moved past the version the caller expected:
// another instance wrote it. Nothing was written.
var ErrStale = errors.New("canvas version moved")

// ErrBusy means the canvas row is locked by another session (a long
// transaction, an administrator, another instance) past the lock timeout.
// Nothing was written; it is temporary.
var ErrBusy = errors.New("canvas row locked by another session")

// CanvasBatch is the write of one canvas's batch, expected to become the
// version after Expect.
type CanvasBatch struct {
	CanvasID string
	Expect   int64
	Write    *Write
}

// Committed is the outcome of one CanvasBatch: its new version, or why it
// was not written (ErrStale, ErrBusy, canvas.ErrNotFound).
type Committed struct {
	Version int64
	Err     error
}

// CommitBatches writes the batches of many canvases (each canvas at most
// once) in one statement: one round trip, one commit. A batch whose canvas
// is no longer at its expected version is not written (ErrStale) while the
// others commit; so is one whose canvas row another session holds locked
// (ErrBusy): the statement never waits for a canvas row, so one stuck
// canvas cannot hold the others up. Any other lock wait ends after
// lockTimeout (0: none) with ErrBusy for the whole statement. With
// notifyChannel set, each committed canvas is announced by
// pg_notify(notifyChannel, "<instance> <canvas>:<version>") from the same
// statement. A returned error means nothing was written.
func (s *Store) CommitBatches(ctx context.Context, batches []CanvasBatch, notifyChannel, instance string, lockTimeout time.Duration) ([]Committed, error) {
	r := newRows()
	for _, b := range batches {
		r.add(b.CanvasID, b.Expect, b.Write)
	}
	query, args := commitStatement(r, notifyChannel, instance)
	versions := make(map[string]int64, len(batches))
	b := &pgx.Batch{}
	if deadline, ok := ctx.Deadline(); ok {
		// The server aborts the statement at the deadline: an error then
		// means it did not commit. A client-side cancel alone can lose the
		// race with a commit that is already under way. The setting is
		// local to the batch's implicit transaction.
		ms := max(time.Until(deadline).Milliseconds(), 1)
		b.Queue(`SELECT set_config('statement_timeout', $1, true)`, strconv.FormatInt(ms, 10))
		if lockTimeout > 0 {
			lockTimeout = min(lockTimeout, time.Duration(ms)*time.Millisecond)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), deadline.Add(serverTimeoutGrace))
		defer cancel()
	}
	if lockTimeout > 0 {
		b.Queue(`SELECT set_config('lock_timeout', $1, true)`, strconv.FormatInt(max(lockTimeout.Milliseconds(), 1), 10))
	}
	locked := make(map[string]bool, len(batches))
	b.Queue(query, args).Query(func(rows pgx.Rows) error {
		var id string
		var v int64
		_, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error {
			locked[id] = true
			if v > 0 {
				versions[id] = v
			}
			return nil
		})
		return err
	})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("commit %d canvases: %w", len(batches), lockError(err))
	}
	out := make([]Committed, len(batches))
	var missing []string
	for i, b := range batches {
		switch v, ok := versions[b.CanvasID]; {
		case ok:
			out[i].Version = v
		case locked[b.CanvasID]:
			out[i].Err = ErrStale
		default:
			missing = append(missing, b.CanvasID)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	// Either a canvas is gone or another session holds it: tell which.
	exists := make(map[string]bool, len(missing))
	rows, err := s.pool.Query(ctx, `SELECT id FROM canvases WHERE id = ANY($1)`, missing)
	if err == nil {
		var id string
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
			exists[id] = true
			return nil
		})
	}
	for i, b := range batches {
		switch {
		case out[i].Version != 0 || out[i].Err != nil:
		case err != nil:
			out[i].Err = fmt.Errorf("canvas %s: %w", b.CanvasID, err)
		case exists[b.CanvasID]:
			out[i].Err = ErrBusy
		default:
			out[i].Err = canvas.ErrNotFound
		}
	}
	return out, nil
}

// CommitBatch is CommitBatches for one canvas.
func (s *Store) CommitBatch(ctx context.Context, canvasID string, expect int64, wr *Write, notifyChannel, instance string) (int64, error) {
	res, err := s.CommitBatches(ctx, []CanvasBatch{{CanvasID: canvasID, Expect: expect, Write: wr}}, notifyChannel, instance, 0)
	if err != nil {
		return 0, err
	}
	return res[0].Version, res[0].Err
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

// Versions returns the current version of each of ids that exists.
func (s *Store) Versions(ctx context.Context, ids []string) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, version FROM canvases WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("canvas versions: %w", err)
	}
	out := make(map[string]int64, len(ids))
	var (
		id string
		v  int64
	)
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

// Notify sends payload on channel to every session listening (the other
// instances).
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}
