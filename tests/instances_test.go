package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/canvas/store"
	"github.com/canvasd/canvasd/tests/harness"
	"github.com/canvasd/canvasd/tests/pgtest"
)

// Two instances on one database write the same canvas at once: nothing is
// lost, no version is used twice, and each instance's in-memory canvas
// stays right although the other writes behind its back.
func TestTwoInstancesWriteOneCanvas(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	a := harness.Start(t, pgtest.PoolFrom(t, cfg, true))
	b := harness.Start(t, pgtest.PoolFrom(t, cfg, false))
	a.CreateCanvas(t, "c")
	mustPush(t, a, "c", "setup", M{1, "s", "createNode", node("n", 0, 0)})

	// Each instance's subscriber hears the other's commits.
	_, eventsA := openSSE(t, a, "c", "")
	_, eventsB := openSSE(t, b, "c", "")

	const perClient = 25
	var wg sync.WaitGroup
	for i, s := range []*harness.Server{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			group, client := fmt.Sprintf("g%d", i), fmt.Sprintf("c%d", i)
			for j := 1; j <= perClient; j++ {
				status, body := push(t, s, "c", group, M{int64(j), client, "createNode", node(fmt.Sprintf("n%d_%d", i, j), float64(j), 0)})
				if status != http.StatusOK || body != "{}" {
					t.Errorf("push %d/%d: %d %s", i, j, status, body)
					return
				}
			}
		}()
	}
	wg.Wait()

	// Every node exists, every client is at its last id, and the versions
	// handed out are exactly one per committed transaction.
	p := a.Pull(t, "c", "g0", nil)
	require.Len(t, values(t, p), 2+4*perClient)
	pb := b.Pull(t, "c", "g1", nil)
	require.Equal(t, values(t, p), values(t, pb))
	require.Equal(t, map[string]int64{"c1": perClient}, pb.LastMutationIDChanges)
	var txs int64
	var versions []int64
	rows, err := b.Store.Pool().Query(context.Background(), `SELECT DISTINCT version FROM nodes ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var v int64
		require.NoError(t, rows.Scan(&v))
		versions = append(versions, v)
	}
	require.NoError(t, rows.Err())
	txs = a.Sys.Metrics.Transactions.Load() + b.Sys.Metrics.Transactions.Load()
	require.Equal(t, p.Order(t), txs, "one version per committed transaction, none reused")
	require.Equal(t, versions[len(versions)-1], p.Order(t))

	// A write through one instance reaches the other's stream.
	mustPush(t, a, "c", "setup", M{2, "s", "moveNode", move("n", 5, 5)})
	want := fmt.Sprint(p.Order(t) + 1)
	for _, events := range []<-chan sseEvent{eventsA, eventsB} {
		for ev := nextPoke(t, events); ev.id != want; ev = nextPoke(t, events) {
		}
	}
	// And b, writing after a, builds on a's value.
	mustPush(t, b, "c", "setup", M{3, "s", "updateNode", map[string]any{"id": "n", "title": "x"}})
	v := values(t, a.Pull(t, "c", "g0", nil))
	require.Equal(t, 5.0, v["node/n"]["x"])
	require.Equal(t, "x", v["node/n"]["title"])
}

// Cookies keep growing when a database moves between versioning modes,
// both ways.
func TestVersioningModeSwitchKeepsCookiesMonotonic(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	pool := pgtest.PoolFrom(t, cfg, true)
	global := func(c *actorsConfig, _ *httpConfig) {
		c.Versioning = store.Global
		c.Batching = false
	}

	g := harness.Start(t, pool, global)
	g.CreateCanvas(t, "busy")
	g.CreateCanvas(t, "quiet")
	// In global mode the busy canvas drives the one version up.
	for i := 1; i <= 5; i++ {
		mustPush(t, g, "busy", "gb", M{int64(i), "b", "createNode", node(fmt.Sprintf("n%d", i), 0, 0)})
	}
	mustPush(t, g, "quiet", "gq", M{1, "q", "createNode", node("n", 0, 0)})
	quiet := g.Pull(t, "quiet", "gq", nil)
	require.Equal(t, int64(6), quiet.Order(t), "global versions are shared by every canvas")
	g.Stop()

	// Per-canvas mode continues from there.
	c := harness.Start(t, pool)
	mustPush(t, c, "quiet", "gq", M{2, "q", "moveNode", move("n", 1, 1)})
	p := c.Pull(t, "quiet", "gq", json.RawMessage(quiet.Cookie))
	require.Equal(t, int64(7), p.Order(t))
	require.Len(t, p.Patch, 1)
	for i := 3; i <= 12; i++ {
		mustPush(t, c, "quiet", "gq", M{int64(i), "q", "moveNode", move("n", float64(i), 1)})
	}
	ahead := c.Pull(t, "quiet", "gq", json.RawMessage(p.Cookie))
	require.Equal(t, int64(17), ahead.Order(t))
	c.Stop()

	// Back to global: the global row (at 6) is behind this canvas (at 17);
	// the next version still grows past the client's cookie.
	g2 := harness.Start(t, pool, global)
	mustPush(t, g2, "quiet", "gq", M{13, "q", "moveNode", move("n", 0, 0)})
	back := g2.Pull(t, "quiet", "gq", json.RawMessage(ahead.Cookie))
	require.Greater(t, back.Order(t), ahead.Order(t))
	require.Len(t, back.Patch, 1)
	mustPush(t, g2, "busy", "gb", M{6, "b", "moveNode", move("n1", 1, 1)})
	require.Greater(t, g2.Pull(t, "busy", "gb", nil).Order(t), back.Order(t), "the global row took the highest version")
}

// A temporary database failure acknowledges nothing; the client's retry
// then applies the push exactly once.
func TestTemporaryErrorAcknowledgesNothing(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	s := harness.Start(t, pool, func(c *actorsConfig, _ *httpConfig) { c.WriteTimeout = 300 * time.Millisecond })
	s.CreateCanvas(t, "c")
	mustPush(t, s, "c", "g", M{1, "a", "createNode", node("n", 0, 0)})

	// Another session holds the canvas row: the write times out.
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT 1 FROM canvases WHERE id = 'c' FOR UPDATE`)
	require.NoError(t, err)
	status, body := push(t, s, "c", "g", M{2, "a", "moveNode", move("n", 9, 9)})
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.NoError(t, tx.Rollback(ctx))

	p := s.Pull(t, "c", "g", nil)
	require.Equal(t, map[string]int64{"a": 1}, p.LastMutationIDChanges, "nothing acknowledged")
	require.Equal(t, 0.0, values(t, p)["node/n"]["x"])

	mustPush(t, s, "c", "g", M{2, "a", "moveNode", move("n", 9, 9)}, M{3, "a", "moveNode", move("n", 10, 9)})
	p = s.Pull(t, "c", "g", nil)
	require.Equal(t, map[string]int64{"a": 3}, p.LastMutationIDChanges)
	require.Equal(t, 10.0, values(t, p)["node/n"]["x"])
}

// With notify inside the write (the baseline's way, kept as an ablation),
// the other instance's subscribers are poked too, in both versioning modes.
func TestNotifyInTransactionReachesOtherInstance(t *testing.T) {
	t.Parallel()
	for _, mode := range []store.Versioning{store.PerCanvas, store.Global} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			cfg := pgtest.Schema(t)
			inTx := func(c *actorsConfig, _ *httpConfig) {
				c.Versioning = mode
				c.Notify = actors.NotifyInTx
			}
			a := harness.Start(t, pgtest.PoolFrom(t, cfg, true), inTx)
			b := harness.Start(t, pgtest.PoolFrom(t, cfg, false), inTx)
			a.CreateCanvas(t, "c")
			_, events := openSSE(t, b, "c", "")
			mustPush(t, a, "c", "g", M{1, "x", "createNode", node("n", 0, 0)})
			ev := nextPoke(t, events)
			require.JSONEq(t, fmt.Sprintf(`{"canvas":"c","version":%s}`, ev.id), ev.data)
			require.Equal(t, a.Pull(t, "c", "g", nil).Order(t), mustInt(t, ev.id))
			require.Zero(t, a.Sys.Metrics.NotifySent.Load(), "no separate notify was sent")
		})
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err)
	return n
}
