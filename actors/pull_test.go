package actors

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
)

func pullKeys(p *PullResult) map[string]bool {
	keys := map[string]bool{}
	for _, c := range p.Patch.Changes {
		keys[c.PatchOp().Op+" "+c.PatchOp().Key] = true
	}
	return keys
}

// A patch shared by the pulls from one version is never served after the
// next commit.
func TestPullPatchNotStaleAfterCommit(t *testing.T) {
	t.Parallel()
	s, st := newSystem(t, nil)
	createCanvas(t, st, "c")
	ctx := context.Background()
	require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", 1, "createNode", `{"id":"n1","kind":"k","x":0,"y":0}`)))
	first, err := s.Pull(ctx, "c", "", "g", nil)
	require.NoError(t, err)
	cookie := first.Cookie

	require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", 2, "createNode", `{"id":"n2","kind":"k","x":0,"y":0}`)))
	p1, err := s.Pull(ctx, "c", "", "g", &cookie)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"put node/n2": true}, pullKeys(p1))
	p2, err := s.Pull(ctx, "c", "", "g", &cookie)
	require.NoError(t, err)
	require.Same(t, p1.Patch, p2.Patch, "pulls from one version share one patch")

	require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", 3, "deleteNode", `{"id":"n1"}`)))
	p3, err := s.Pull(ctx, "c", "", "g", &cookie)
	require.NoError(t, err)
	require.NotSame(t, p1.Patch, p3.Patch)
	require.Equal(t, map[string]bool{"put node/n2": true, "del node/n1": true}, pullKeys(p3))
	require.Equal(t, map[string]int64{"a": 3}, p3.LastMutationIDChanges)
	require.Greater(t, p3.Cookie.Order, p1.Cookie.Order)
}

// Many clients pulling after one poke are served from memory: the
// database sees no pull reads, only version checks shared between them.
func TestManyPullsShareWork(t *testing.T) {
	t.Parallel()
	s, st := newSystem(t, nil)
	createCanvas(t, st, "c")
	ctx := context.Background()
	require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", 1, "createNode", `{"id":"n1","kind":"k","x":0,"y":0}`)))
	first, err := s.Pull(ctx, "c", "", "g", nil)
	require.NoError(t, err)
	require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", 2, "moveNode", `{"id":"n1","x":1,"y":1}`)))

	var wg sync.WaitGroup
	patches := make([]*Patch, 200)
	for i := range patches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := s.Pull(ctx, "c", "", fmt.Sprintf("reader%d", i), &first.Cookie)
			if err == nil {
				patches[i] = p.Patch
			}
		}()
	}
	wg.Wait()
	for _, p := range patches {
		require.Same(t, patches[0], p)
	}
}

// Cookies older than the change log are refused from memory, so the
// caller reads them from the database.
func TestPullOlderThanChangeLog(t *testing.T) {
	t.Parallel()
	s, st := newSystem(t, func(c *Config) { c.ChangeLog = 4 })
	createCanvas(t, st, "c")
	ctx := context.Background()
	require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", 1, "createNode", `{"id":"n","kind":"k","x":0,"y":0}`)))
	old, err := s.Pull(ctx, "c", "", "g", nil)
	require.NoError(t, err)
	for i := int64(2); i <= 10; i++ {
		require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", i, "moveNode", fmt.Sprintf(`{"id":"n","x":%d,"y":0}`, i))))
	}
	_, err = s.Pull(ctx, "c", "", "g", &old.Cookie)
	require.ErrorIs(t, err, ErrPullFromStore)
	recent, err := s.Pull(ctx, "c", "", "g", &canvas.Cookie{Order: 9, Canvas: "c", Epoch: old.Cookie.Epoch})
	require.NoError(t, err)
	require.Len(t, recent.Patch.Changes, 1)
	require.Equal(t, 10.0, recent.Patch.Changes[0].Node.X)

	_, err = s.Pull(ctx, "c", "", "g", &canvas.Cookie{Order: 9, Canvas: "c", Epoch: "other"})
	require.ErrorIs(t, err, canvas.ErrClientStateNotFound)
}

// Memory catches up with rows another writer committed behind its back
// before answering a pull.
func TestPullSeesWritesMadeElsewhere(t *testing.T) {
	t.Parallel()
	s, st := newSystem(t, nil)
	createCanvas(t, st, "c")
	ctx := context.Background()
	require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", 1, "createNode", `{"id":"n","kind":"k","x":0,"y":0}`)))
	p, err := s.Pull(ctx, "c", "", "g", nil)
	require.NoError(t, err)

	// Another instance writes the canvas (here: straight through the store).
	w, err := st.BeginWrite(ctx, "c", store.PerCanvas, 0)
	require.NoError(t, err)
	require.NoError(t, w.Apply(ctx, &store.Write{Changes: []canvas.Change{{Kind: canvas.ChangeNode, ID: "m",
		Node: canvas.Node{ID: "m", Kind: "k", W: 1, H: 1}}}}))
	require.NoError(t, w.Commit(ctx))

	q, err := s.Pull(ctx, "c", "", "g", &p.Cookie)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"put node/m": true}, pullKeys(q))
	require.Equal(t, p.Cookie.Order+1, q.Cookie.Order)
	// And the next push builds on it.
	require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", 2, "createEdge", `{"id":"e","from":"n","to":"m"}`)))
	snap, err := st.Load(ctx, "c")
	require.NoError(t, err)
	require.Len(t, snap.Changes, 4, "meta, two nodes, the edge")
}
