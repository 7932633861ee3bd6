package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
	"github.com/canvasd/canvasd/tests/pgtest"
)

func node(id string) canvas.Change {
	return canvas.Change{Kind: canvas.ChangeNode, ID: id, Node: canvas.Node{ID: id, Kind: "k", W: 1, H: 1}}
}

// CommitBatch writes every kind of row at the next version, and nothing
// at all when the canvas is not at the version expected.
func TestCommitBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.New(pgtest.Pool(t))
	_, created, err := st.CreateCanvas(ctx, "c", "first")
	require.NoError(t, err)
	require.True(t, created)

	v, err := st.CommitBatch(ctx, "c", 0, &store.Write{
		Changes: []canvas.Change{node("a"), node("b"), {Kind: canvas.ChangeEdge, ID: "e", Edge: canvas.Edge{ID: "e", From: "a", To: "b"}},
			{Kind: canvas.ChangeCanvas, ID: "c", Title: "second"}},
		Clients:   map[string]store.Client{"x": {Group: "g", LastMutationID: 3}},
		NewGroups: []store.Group{{ID: "g", UserID: "u"}},
	}, "", "")
	require.NoError(t, err)
	require.Equal(t, int64(1), v)

	v, err = st.CommitBatch(ctx, "c", 1, &store.Write{
		Changes: []canvas.Change{{Kind: canvas.ChangeNode, ID: "a", Deleted: true}, {Kind: canvas.ChangeEdge, ID: "e", Deleted: true}},
		Clients: map[string]store.Client{"x": {Group: "g", LastMutationID: 4}},
	}, "", "")
	require.NoError(t, err)
	require.Equal(t, int64(2), v)

	// Stale memory: nothing is written.
	_, err = st.CommitBatch(ctx, "c", 1, &store.Write{Changes: []canvas.Change{node("z")}}, "", "")
	require.ErrorIs(t, err, store.ErrStale)
	_, err = st.CommitBatch(ctx, "missing", 0, &store.Write{Changes: []canvas.Change{node("z")}}, "", "")
	require.ErrorIs(t, err, canvas.ErrNotFound)

	snap, err := st.Load(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, int64(2), snap.Canvas.Version)
	require.Equal(t, "second", snap.Canvas.Title)
	require.Equal(t, map[string]store.Client{"x": {Group: "g", LastMutationID: 4, Version: 2}}, snap.Clients)
	var live []string
	for _, c := range snap.Changes {
		live = append(live, c.PatchOp().Key)
	}
	require.ElementsMatch(t, []string{"canvas", "node/b"}, live)

	// Reading since version 1 shows the deletions as tombstones.
	since, err := st.ReadSince(ctx, "c", 1)
	require.NoError(t, err)
	var dels []string
	for _, c := range since.Changes {
		if c.Deleted {
			dels = append(dels, c.PatchOp().Key)
		}
		require.Equal(t, int64(2), c.Version)
	}
	require.ElementsMatch(t, []string{"node/a", "edge/e"}, dels)

	owner, user, found, err := st.GroupOwner(ctx, "g", "c")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, "c", owner)
	require.Equal(t, "u", user)
}

// One statement commits the batches of many canvases; a canvas not at its
// expected version, or missing, is left out while the others commit.
func TestCommitBatchesAcrossCanvases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := store.New(pgtest.Pool(t))
	for _, id := range []string{"a", "b", "c"} {
		_, _, err := st.CreateCanvas(ctx, id, "")
		require.NoError(t, err)
	}
	w := func(nodeID string) *store.Write {
		return &store.Write{Changes: []canvas.Change{node(nodeID)},
			Clients:   map[string]store.Client{"x" + nodeID: {Group: "g" + nodeID, LastMutationID: 1}},
			NewGroups: []store.Group{{ID: "g" + nodeID}}}
	}
	res, err := st.CommitBatches(ctx, []store.CanvasBatch{
		{CanvasID: "a", Expect: 0, Write: w("n1")},
		{CanvasID: "b", Expect: 5, Write: w("n2")}, // stale
		{CanvasID: "c", Expect: 0, Write: w("n3")},
		{CanvasID: "zz", Expect: 0, Write: w("n4")}, // missing
	}, "", "", 0)
	require.NoError(t, err)
	require.Equal(t, []store.Committed{{Version: 1}, {Err: store.ErrStale}, {Version: 1}, {Err: canvas.ErrNotFound}}, res)

	for id, want := range map[string]int{"a": 2, "b": 1, "c": 2} { // meta + node, or meta only
		snap, err := st.Load(ctx, id)
		require.NoError(t, err)
		require.Len(t, snap.Changes, want, id)
		require.Len(t, snap.Clients, want-1, id)
	}
}

// A canvas whose row another session holds is left out at once (ErrBusy)
// while the others commit; the statement does not wait for the lock.
func TestCommitBatchesSkipsLockedCanvas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	st := store.New(pool)
	for _, id := range []string{"a", "b", "c"} {
		_, _, err := st.CreateCanvas(ctx, id, "")
		require.NoError(t, err)
	}
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM canvases WHERE id = 'b' FOR UPDATE`)
	require.NoError(t, err)

	w := func(nodeID string) *store.Write { return &store.Write{Changes: []canvas.Change{node(nodeID)}} }
	start := time.Now()
	res, err := st.CommitBatches(ctx, []store.CanvasBatch{
		{CanvasID: "a", Expect: 0, Write: w("n1")},
		{CanvasID: "b", Expect: 0, Write: w("n2")}, // locked
		{CanvasID: "c", Expect: 5, Write: w("n3")}, // stale
	}, "", "", 5*time.Second)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 2*time.Second, "no wait for the locked row")
	require.Equal(t, []store.Committed{{Version: 1}, {Err: store.ErrBusy}, {Err: store.ErrStale}}, res)
	require.True(t, store.IsTemporary(store.ErrBusy))

	// A lone write under the row lock gives up after its lock timeout.
	_, err = st.BeginWrite(ctx, "b", store.PerCanvas, 100*time.Millisecond)
	require.ErrorIs(t, err, store.ErrBusy)
	require.NoError(t, tx.Rollback(ctx))
	v, err := st.CommitBatch(ctx, "b", 0, w("n2"), "", "")
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
}
