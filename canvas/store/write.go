package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/canvasd/canvasd/canvas"
)

// Versioning chooses how a write allocates its version.
type Versioning int

const (
	// PerCanvas bumps the canvas's own version row: writes of different
	// canvases never wait for each other.
	PerCanvas Versioning = iota
	// Global locks the one global version row in every write (the common
	// design, kept as a research baseline).
	Global
)

func (v Versioning) String() string {
	if v == Global {
		return "global"
	}
	return "canvas"
}

// WriteTx is one write transaction on one canvas. BeginWrite has locked the
// canvas row (and in Global mode the global row) and allocated Version.
type WriteTx struct {
	tx       pgx.Tx
	canvasID string
	// Prev is the canvas version before this transaction; if it differs from
	// what a cache holds, another instance wrote the canvas since.
	Prev int64
	// Version is the version every row written by this transaction gets.
	Version int64
	Epoch   string
}

// BeginWrite starts a write on canvasID: it takes the canvas row lock and
// allocates the next version. canvas.ErrNotFound if the canvas does not
// exist; ErrBusy if a lock wait exceeds lockTimeout (0: no bound).
func (s *Store) BeginWrite(ctx context.Context, canvasID string, mode Versioning, lockTimeout time.Duration) (*WriteTx, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	w := &WriteTx{tx: tx, canvasID: canvasID}
	if lockTimeout > 0 {
		// Local to the transaction: the connection goes back unchanged.
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, strconv.FormatInt(max(lockTimeout.Milliseconds(), 1), 10)); err != nil {
			rollback(ctx, tx)
			return nil, fmt.Errorf("begin: %w", err)
		}
	}
	switch mode {
	case PerCanvas:
		err = tx.QueryRow(ctx,
			`UPDATE canvases SET version = version + 1 WHERE id = $1 RETURNING version, epoch`,
			canvasID).Scan(&w.Version, &w.Epoch)
		w.Prev = w.Version - 1
	case Global:
		// The common design: every write of the deployment queues on this
		// one row. The new version also stays above the canvas's own, so
		// cookies keep growing when a database moves between modes.
		var global int64
		err = tx.QueryRow(ctx, `SELECT version FROM global_version WHERE id = 1 FOR UPDATE`).Scan(&global)
		if err == nil {
			err = tx.QueryRow(ctx, `SELECT version, epoch FROM canvases WHERE id = $1 FOR UPDATE`,
				canvasID).Scan(&w.Prev, &w.Epoch)
		}
		if err == nil {
			w.Version = max(global, w.Prev) + 1
			b := &pgx.Batch{}
			b.Queue(`UPDATE global_version SET version = $1 WHERE id = 1`, w.Version)
			b.Queue(`UPDATE canvases SET version = $2 WHERE id = $1`, canvasID, w.Version)
			err = tx.SendBatch(ctx, b).Close()
		}
	default:
		err = fmt.Errorf("unknown versioning %d", mode)
	}
	if err != nil {
		rollback(ctx, tx)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, canvas.ErrNotFound
		}
		return nil, fmt.Errorf("lock canvas %s: %w", canvasID, lockError(err))
	}
	return w, nil
}

// Since reads what was written to the canvas after version since, inside
// this transaction (so under the canvas row lock).
func (w *WriteTx) Since(ctx context.Context, since int64) (*Snapshot, error) {
	snap, err := loadSince(ctx, w.tx, w.canvasID, since)
	if err != nil {
		return nil, fmt.Errorf("catch up canvas %s: %w", w.canvasID, err)
	}
	return snap, nil
}

// GroupOwner returns the canvas and user a client group is bound to.
func (w *WriteTx) GroupOwner(ctx context.Context, groupID string) (canvasID, userID string, found bool, err error) {
	return groupOwner(ctx, w.tx, groupID, w.canvasID)
}

func groupOwner(ctx context.Context, q querier, groupID, preferCanvas string) (canvasID, userID string, found bool, err error) {
	// A group lives on one canvas; prefer that row should a race have
	// bound it to two.
	err = q.QueryRow(ctx, `SELECT canvas_id, user_id FROM client_groups WHERE id = $1
		ORDER BY canvas_id = $2 DESC LIMIT 1`, groupID, preferCanvas).Scan(&canvasID, &userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("client group %s: %w", groupID, err)
	}
	return canvasID, userID, true, nil
}

// Group is a new client group to record.
type Group struct {
	ID     string
	UserID string
}

// Write is everything one transaction writes.
type Write struct {
	Changes   []canvas.Change   // at most one per node, edge and canvas
	Clients   map[string]Client // new lastMutationIDs
	NewGroups []Group
}

// Empty reports whether w writes nothing.
func (w *Write) Empty() bool {
	return len(w.Changes) == 0 && len(w.Clients) == 0 && len(w.NewGroups) == 0
}

const (
	upsertNodes = `INSERT INTO nodes (canvas_id, id, kind, x, y, w, h, title, body, version, deleted)
		SELECT $1, u.id, u.kind, u.x, u.y, u.w, u.h, u.title, u.body, $2, false
		FROM unnest($3::text[], $4::text[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::text[], $10::text[])
			AS u(id, kind, x, y, w, h, title, body)
		ON CONFLICT (canvas_id, id) DO UPDATE SET kind = excluded.kind, x = excluded.x, y = excluded.y,
			w = excluded.w, h = excluded.h, title = excluded.title, body = excluded.body,
			version = excluded.version, deleted = false`
	deleteNodes = `UPDATE nodes SET deleted = true, version = $2, deleted_at = now() WHERE canvas_id = $1 AND id = ANY($3::text[])`
	upsertEdges = `INSERT INTO edges (canvas_id, id, from_node, to_node, version, deleted)
		SELECT $1, u.id, u.from_node, u.to_node, $2, false
		FROM unnest($3::text[], $4::text[], $5::text[]) AS u(id, from_node, to_node)
		ON CONFLICT (canvas_id, id) DO UPDATE SET from_node = excluded.from_node, to_node = excluded.to_node,
			version = excluded.version, deleted = false`
	deleteEdges   = `UPDATE edges SET deleted = true, version = $2, deleted_at = now() WHERE canvas_id = $1 AND id = ANY($3::text[])`
	setTitle      = `UPDATE canvases SET title = $2, title_version = $3 WHERE id = $1`
	insertGroup   = `INSERT INTO client_groups (canvas_id, id, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
	upsertClients = `INSERT INTO clients (canvas_id, id, client_group_id, last_mutation_id, version)
		SELECT $1, u.id, u.grp, u.lmid, $2 FROM unnest($3::text[], $4::text[], $5::int8[]) AS u(id, grp, lmid)
		ON CONFLICT (canvas_id, id) DO UPDATE SET last_mutation_id = excluded.last_mutation_id,
			version = excluded.version, updated_at = now()`
)

// Apply writes w with this transaction's version, in one round trip.
func (w *WriteTx) Apply(ctx context.Context, wr *Write) error {
	r := splitRows(wr)
	b := &pgx.Batch{}
	if r.setTitle {
		b.Queue(setTitle, w.canvasID, r.title, w.Version)
	}
	if len(r.nodes.id) > 0 {
		n := &r.nodes
		b.Queue(upsertNodes, w.canvasID, w.Version, n.id, n.kind, n.x, n.y, n.w, n.h, n.title, n.body)
	}
	if len(r.delNodes) > 0 {
		b.Queue(deleteNodes, w.canvasID, w.Version, r.delNodes)
	}
	if len(r.edgeIDs) > 0 {
		b.Queue(upsertEdges, w.canvasID, w.Version, r.edgeIDs, r.from, r.to)
	}
	if len(r.delEdges) > 0 {
		b.Queue(deleteEdges, w.canvasID, w.Version, r.delEdges)
	}
	for i := range r.groupIDs {
		b.Queue(insertGroup, w.canvasID, r.groupIDs[i], r.groupUsers[i])
	}
	if len(r.clientIDs) > 0 {
		b.Queue(upsertClients, w.canvasID, w.Version, r.clientIDs, r.clientGroups, r.lmids)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := w.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write canvas %s: %w", w.canvasID, lockError(err))
	}
	return nil
}

// Notify sends a notification inside this transaction (the common design's
// in-transaction pg_notify, kept for the baseline).
func (w *WriteTx) Notify(ctx context.Context, channel, payload string) error {
	if _, err := w.tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// Commit commits the transaction.
func (w *WriteTx) Commit(ctx context.Context) error {
	if err := w.tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit canvas %s: %w", w.canvasID, err)
	}
	return nil
}

// Rollback abandons the transaction; safe after Commit.
func (w *WriteTx) Rollback(ctx context.Context) { rollback(ctx, w.tx) }

// rows is Writes split into the column arrays the statements take, each
// row with the canvas it belongs to. Every slice is non-nil: pgx would send
// a nil slice as NULL, not as an empty array.
type rows struct {
	// One entry per canvas.
	canvases  []string
	expects   []int64
	setTitles []bool
	titles    []string
	// One entry per row, with its canvas in the *Canvas column.
	nodes                                 nodeColumns
	nodeCanvas, delNodeCanvas, delNodes   []string
	edgeCanvas, edgeIDs, from, to         []string
	delEdgeCanvas, delEdges               []string
	groupCanvas, groupIDs, groupUsers     []string
	clientCanvas, clientIDs, clientGroups []string
	lmids                                 []int64
	// setTitle and title are the single canvas's title (splitRows).
	setTitle bool
	title    string
}

func newRows() *rows {
	e := func() []string { return []string{} }
	return &rows{
		canvases: e(), expects: []int64{}, setTitles: []bool{}, titles: e(),
		nodes:      nodeColumns{id: e(), kind: e(), title: e(), body: e(), x: []float64{}, y: []float64{}, w: []float64{}, h: []float64{}},
		nodeCanvas: e(), delNodeCanvas: e(), delNodes: e(),
		edgeCanvas: e(), edgeIDs: e(), from: e(), to: e(),
		delEdgeCanvas: e(), delEdges: e(),
		groupCanvas: e(), groupIDs: e(), groupUsers: e(),
		clientCanvas: e(), clientIDs: e(), clientGroups: e(), lmids: []int64{},
	}
}

// splitRows splits the write of one canvas.
func splitRows(wr *Write) *rows {
	r := newRows()
	r.add("", 0, wr)
	r.setTitle, r.title = r.setTitles[0], r.titles[0]
	return r
}

// add appends the write of canvasID, expected at version expect.
func (r *rows) add(canvasID string, expect int64, wr *Write) {
	setTitle, title := false, ""
	for i := range wr.Changes {
		c := &wr.Changes[i]
		switch {
		case c.Kind == canvas.ChangeNode && c.Deleted:
			r.delNodeCanvas = append(r.delNodeCanvas, canvasID)
			r.delNodes = append(r.delNodes, c.ID)
		case c.Kind == canvas.ChangeNode:
			r.nodeCanvas = append(r.nodeCanvas, canvasID)
			r.nodes.add(c.Node)
		case c.Kind == canvas.ChangeEdge && c.Deleted:
			r.delEdgeCanvas = append(r.delEdgeCanvas, canvasID)
			r.delEdges = append(r.delEdges, c.ID)
		case c.Kind == canvas.ChangeEdge:
			r.edgeCanvas = append(r.edgeCanvas, canvasID)
			r.edgeIDs = append(r.edgeIDs, c.ID)
			r.from = append(r.from, c.Edge.From)
			r.to = append(r.to, c.Edge.To)
		case c.Kind == canvas.ChangeCanvas:
			setTitle, title = true, c.Title
		}
	}
	r.canvases = append(r.canvases, canvasID)
	r.expects = append(r.expects, expect)
	r.setTitles = append(r.setTitles, setTitle)
	r.titles = append(r.titles, title)
	for _, g := range wr.NewGroups {
		r.groupCanvas = append(r.groupCanvas, canvasID)
		r.groupIDs = append(r.groupIDs, g.ID)
		r.groupUsers = append(r.groupUsers, g.UserID)
	}
	for id, c := range wr.Clients {
		r.clientCanvas = append(r.clientCanvas, canvasID)
		r.clientIDs = append(r.clientIDs, id)
		r.clientGroups = append(r.clientGroups, c.Group)
		r.lmids = append(r.lmids, c.LastMutationID)
	}
}

type nodeColumns struct {
	id, kind, title, body []string
	x, y, w, h            []float64
}

func (c *nodeColumns) add(n canvas.Node) {
	c.id = append(c.id, n.ID)
	c.kind = append(c.kind, n.Kind)
	c.x = append(c.x, n.X)
	c.y = append(c.y, n.Y)
	c.w = append(c.w, n.W)
	c.h = append(c.h, n.H)
	c.title = append(c.title, n.Title)
	c.body = append(c.body, n.Body)
}
