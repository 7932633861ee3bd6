package tests

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/httpapi"
	"github.com/canvasd/canvasd/tests/harness"
	"github.com/canvasd/canvasd/tests/pgtest"
)

const lifecycleTTL = time.Hour

// lifecycle gives a server TTLs of an hour and no collector of its own:
// the test runs it, as of a time it chooses.
func lifecycle(a *actors.Config, _ *httpapi.Config) {
	a.ClientGroupTTL, a.TombstoneTTL, a.GCInterval = lifecycleTTL, lifecycleTTL, 0
}

// tombstonesOnly is lifecycle with client groups kept for a long time.
func tombstonesOnly(a *actors.Config, h *httpapi.Config) {
	lifecycle(a, h)
	a.ClientGroupTTL = 1000 * lifecycleTTL
}

func collect(t *testing.T, s *harness.Server, at time.Time) actors.GCStats {
	t.Helper()
	st, err := s.Sys.CollectGarbage(context.Background(), at)
	require.NoError(t, err)
	require.True(t, st.Ran, "the collector's lock was free")
	return st
}

func count(t *testing.T, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

// Client groups unused past the TTL are deleted with their clients; a
// returning client of a deleted group gets ClientStateNotFound on push and
// on pull, whether its canvas is in memory or not, while groups in use
// stay and the canvas's content is untouched.
func TestIdleClientGroupsAreDeleted(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	pool := pgtest.PoolFrom(t, cfg, true)
	a := harness.Start(t, pool, lifecycle)
	a.CreateCanvas(t, "c")
	mustPush(t, a, "c", "idle", M{1, "ci", "createNode", node("n1", 0, 0)}, M{2, "ci", "createNode", node("n2", 0, 0)})
	mustPush(t, a, "c", "busy", M{1, "cb", "createNode", node("n3", 0, 0)})
	old := a.Pull(t, "c", "idle", nil)
	require.Equal(t, map[string]int64{"ci": 2}, old.LastMutationIDChanges)

	// Nothing is idle yet.
	require.Zero(t, collect(t, a, time.Now()).GroupsDeleted)

	// "idle" was last used two hours ago; "busy" pulls now.
	_, err := pool.Exec(context.Background(), `UPDATE client_groups SET last_active_at = now() - interval '2 hours' WHERE id = 'idle'`)
	require.NoError(t, err)
	_, err = pool.Exec(context.Background(), `UPDATE clients SET updated_at = now() - interval '2 hours' WHERE client_group_id = 'idle'`)
	require.NoError(t, err)
	a.Pull(t, "c", "busy", nil)
	st := collect(t, a, time.Now())
	require.Equal(t, 1, st.GroupsDeleted)
	require.Zero(t, count(t, pool, `SELECT count(*) FROM client_groups WHERE id = 'idle'`))
	require.Zero(t, count(t, pool, `SELECT count(*) FROM clients WHERE client_group_id = 'idle'`))
	require.Equal(t, 1, count(t, pool, `SELECT count(*) FROM client_groups WHERE id = 'busy'`))
	require.Equal(t, 1.0, value(scrape(t, a), "canvasd_client_groups_deleted_total"))

	// The returning client: pull with its cookie, push its next mutation.
	p := a.Pull(t, "c", "idle", old.Cookie)
	require.Equal(t, "ClientStateNotFound", p.Error, p.Raw)
	status, body := push(t, a, "c", "idle", M{3, "ci", "createNode", node("n4", 0, 0)})
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"error":"ClientStateNotFound"}`, body)

	// Another instance, whose memory never held the group, says the same.
	b := harness.Start(t, pgtest.PoolFrom(t, cfg, false), lifecycle)
	p = b.Pull(t, "c", "idle", old.Cookie)
	require.Equal(t, "ClientStateNotFound", p.Error, p.Raw)

	// A new group that carries the deleted group's cookie (the real client
	// gives a new group the state of the one it replaces) is served.
	forked := a.Pull(t, "c", "forked", old.Cookie)
	require.Empty(t, forked.Error, forked.Raw)
	forked = b.Pull(t, "c", "forked2", old.Cookie)
	require.Empty(t, forked.Error, forked.Raw)

	// It resets: a new group starts from scratch and sees everything.
	fresh := a.Pull(t, "c", "idle2", nil)
	require.Empty(t, fresh.Error)
	require.Len(t, values(t, fresh), 4, "canvas and three nodes: n4 was never written")
	mustPush(t, a, "c", "idle2", M{1, "ci2", "createNode", node("n4", 0, 0)})

	// The group still in use kept its clients and goes on.
	mustPush(t, b, "c", "busy", M{2, "cb", "moveNode", move("n3", 5, 5)})
	require.Equal(t, map[string]int64{"cb": 2}, a.Pull(t, "c", "busy", nil).LastMutationIDChanges)

	// A deleted group is remembered for one more TTL, then forgotten: its
	// pull is then served like a new group's (its push still fails).
	collect(t, a, time.Now().Add(lifecycleTTL/2))
	require.Equal(t, "ClientStateNotFound", a.Pull(t, "c", "idle", old.Cookie).Error)
	collect(t, a, time.Now().Add(3*lifecycleTTL))
	require.Zero(t, count(t, pool, `SELECT count(*) FROM client_groups_deleted WHERE id = 'idle'`))
	require.Empty(t, b.Pull(t, "c", "idle", old.Cookie).Error)
}

// Tombstones older than the TTL are purged. A cookie from before the purge
// horizon gets a reset patch (clear and every live row) from the database,
// and a correct incremental patch (its deletes included) from the change
// log of a canvas in memory; never a patch that misses a delete. A canvas
// whose memory is behind the purge reads itself again in full instead of
// keeping a node whose tombstone it never saw.
func TestOldTombstonesArePurged(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	pool := pgtest.PoolFrom(t, cfg, true)
	a := harness.Start(t, pool, tombstonesOnly)
	b := harness.Start(t, pgtest.PoolFrom(t, cfg, false), tombstonesOnly)
	a.CreateCanvas(t, "c")
	mustPush(t, a, "c", "g", M{1, "x", "createNode", node("n1", 0, 0)}, M{2, "x", "createNode", node("n2", 0, 0)},
		M{3, "x", "createNode", node("n3", 0, 0)})
	before := a.Pull(t, "c", "g", nil)
	// b's memory holds the canvas as it is now.
	require.Len(t, values(t, b.Pull(t, "c", "g", nil)), 4)

	// a deletes n1; b does not read it in.
	mustPush(t, a, "c", "g", M{4, "x", "deleteNode", map[string]any{"id": "n1"}})
	afterDelete := a.Pull(t, "c", "g", before.Cookie)
	require.Equal(t, []harness.PatchOp{{Op: "del", Key: "node/n1"}}, afterDelete.Patch)

	require.Zero(t, collect(t, a, time.Now()).TombstonesDeleted, "the tombstone is young")
	st := collect(t, a, time.Now().Add(2*lifecycleTTL))
	require.Equal(t, 1, st.TombstonesDeleted)
	require.Zero(t, count(t, pool, `SELECT count(*) FROM nodes WHERE deleted`))
	require.Equal(t, 1.0, value(scrape(t, a), "canvasd_tombstones_deleted_total"))

	// a answers from its change log: the delete is there.
	p := a.Pull(t, "c", "g", before.Cookie)
	require.Equal(t, []harness.PatchOp{{Op: "del", Key: "node/n1"}}, p.Patch)

	// b's memory is behind the purge: it reloads, and the old cookie,
	// older than anything it remembers, gets a reset from the database.
	p = b.Pull(t, "c", "g", before.Cookie)
	require.Empty(t, p.Error, p.Raw)
	require.NotEmpty(t, p.Patch, "a patch that misses the delete of n1")
	require.Equal(t, "clear", p.Patch[0].Op, p.Raw)
	got := values(t, p)
	require.NotContains(t, got, "node/n1")
	require.Contains(t, got, "node/n2")
	require.Contains(t, got, "node/n3")
	require.Contains(t, got, "canvas")
	require.Equal(t, map[string]int64{"x": 4}, p.LastMutationIDChanges, "a reset names every client of the group")
	require.NotContains(t, values(t, b.Pull(t, "c", "g", nil)), "node/n1", "b's memory lost n1")

	// A cookie at or after the horizon still gets an incremental patch.
	mustPush(t, b, "c", "g", M{5, "x", "moveNode", move("n2", 9, 9)})
	p = b.Pull(t, "c", "g", afterDelete.Cookie)
	require.NotEqual(t, "clear", p.Patch[0].Op, p.Raw)
	require.Len(t, p.Patch, 1, p.Raw)

	// A fresh instance (nothing in memory) answers the old cookie from the
	// database alone: the same reset.
	c := harness.Start(t, pgtest.PoolFrom(t, cfg, false), tombstonesOnly)
	p = c.Pull(t, "c", "g", before.Cookie)
	require.Equal(t, "clear", p.Patch[0].Op, p.Raw)
	require.NotContains(t, values(t, p), "node/n1")

	// A node created again with a purged id is an ordinary node.
	mustPush(t, a, "c", "g", M{6, "x", "createNode", node("n1", 1, 1)})
	require.Contains(t, values(t, c.Pull(t, "c", "g", nil)), "node/n1")
}

// The collector runs on one instance at a time, and never waits for a
// writer: a canvas whose row is held is skipped until the next run.
func TestCollectorTakesTurnsAndNeverWaitsForWriters(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	pool := pgtest.PoolFrom(t, cfg, true)
	a := harness.Start(t, pool, lifecycle)
	a.CreateCanvas(t, "c")
	mustPush(t, a, "c", "g", M{1, "x", "createNode", node("n1", 0, 0)})
	mustPush(t, a, "c", "g", M{2, "x", "deleteNode", map[string]any{"id": "n1"}})
	ctx := context.Background()

	// Another instance holds the collector's lock: this one does nothing.
	lockConn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	released := false
	t.Cleanup(func() { // a failed assertion must not leave the pool's Close waiting
		if !released {
			lockConn.Release()
		}
	})
	var got bool
	require.NoError(t, lockConn.QueryRow(ctx, `SELECT pg_try_advisory_lock(x'63616e76'::int4, hashtext(current_schema()))`).Scan(&got))
	require.True(t, got)
	st, err := a.Sys.CollectGarbage(ctx, time.Now().Add(2*lifecycleTTL))
	require.NoError(t, err)
	require.False(t, st.Ran)
	_, err = lockConn.Exec(ctx, `SELECT pg_advisory_unlock(x'63616e76'::int4, hashtext(current_schema()))`)
	require.NoError(t, err)
	lockConn.Release()
	released = true

	// A writer holds the canvas row: the run skips the canvas at once.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	_, err = tx.Exec(ctx, `SELECT 1 FROM canvases WHERE id = 'c' FOR UPDATE`)
	require.NoError(t, err)
	start := time.Now()
	st = collect(t, a, time.Now().Add(2*lifecycleTTL))
	require.Less(t, time.Since(start), 5*time.Second)
	require.Zero(t, st.GroupsDeleted+st.TombstonesDeleted)
	require.NoError(t, tx.Rollback(ctx))

	st = collect(t, a, time.Now().Add(2*lifecycleTTL))
	require.Equal(t, 1, st.GroupsDeleted)
	require.Equal(t, 1, st.TombstonesDeleted)
}

// With an interval set, the collector runs by itself.
func TestCollectorRunsEveryInterval(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	pool := pgtest.PoolFrom(t, cfg, true)
	a := harness.Start(t, pool, func(ac *actors.Config, _ *httpapi.Config) {
		ac.ClientGroupTTL, ac.TombstoneTTL, ac.GCInterval = time.Second, time.Second, 50*time.Millisecond
	})
	a.CreateCanvas(t, "c")
	mustPush(t, a, "c", "g", M{1, "x", "createNode", node("n1", 0, 0)})
	mustPush(t, a, "c", "g", M{2, "x", "deleteNode", map[string]any{"id": "n1"}})
	require.Eventually(t, func() bool {
		f := scrape(t, a)
		return value(f, "canvasd_client_groups_deleted_total") == 1 && value(f, "canvasd_tombstones_deleted_total") == 1
	}, 10*time.Second, 50*time.Millisecond)
}
