package fault

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// short is the size of every scenario inside `go test ./...`.
func short(name string, faults ...string) scenario {
	return scenario{
		name: name, faults: faults, instances: 2,
		canvases: 3, goPerCanvas: 2, rcPerCanvas: 1,
		interval: 100 * time.Millisecond,
	}
}

func TestFaultKill9(t *testing.T) {
	t.Parallel()
	short("kill9", faultKill, faultKill).run(t, seedFor(t, 0))
}

func TestFaultRollingRestart(t *testing.T) {
	t.Parallel()
	sc := short("rolling", faultRolling)
	sc.noPushErrors = true
	sc.run(t, seedFor(t, 0))
}

func TestFaultListenTerminated(t *testing.T) {
	t.Parallel()
	short("listen", faultListen, faultListen).run(t, seedFor(t, 0))
}

func TestFaultConnectionsTerminated(t *testing.T) {
	t.Parallel()
	short("conns", faultConns, faultConns).run(t, seedFor(t, 0))
}

func TestFaultRowLocked(t *testing.T) {
	t.Parallel()
	sc := short("rowlock", faultRowLock)
	sc.canvases = 4
	sc.run(t, seedFor(t, 0))
}

func TestFaultResponseDropped(t *testing.T) {
	t.Parallel()
	short("drop", faultDrop, faultDrop).run(t, seedFor(t, 0))
}

func TestFaultPostgresRestart(t *testing.T) {
	t.Parallel()
	sc := short("pg-restart", faultPGRestart)
	sc.privatePG = true
	sc.run(t, seedFor(t, 0))
}

// TestFaultMix draws two faults at random from the menu (PostgreSQL
// restarts have their own scenario here; the long run mixes them in too).
func TestFaultMix(t *testing.T) {
	t.Parallel()
	sc := short("mix", faultKill, faultRolling, faultListen, faultConns, faultRowLock, faultDrop)
	sc.mix = 2
	sc.run(t, seedFor(t, 0))
}

// TestFaultLong is `task chaos`: FAULT_LONG=1, several seeds of eight
// faults drawn from all seven, on three instances, more canvases and
// clients. FAULT_SEEDS sets how
// many (default 4); FAULT_SEED the first.
func TestFaultLong(t *testing.T) {
	if os.Getenv("FAULT_LONG") == "" {
		t.Skip("set FAULT_LONG=1 (task chaos) for the long run")
	}
	seeds := 4
	if s := os.Getenv("FAULT_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "FAULT_SEEDS")
		seeds = n
	}
	for i := range seeds {
		seed := seedFor(t, i)
		t.Run(fmt.Sprintf("seed_%d", seed), func(t *testing.T) {
			sc := scenario{
				name:      "long-mix",
				faults:    []string{faultKill, faultRolling, faultListen, faultConns, faultRowLock, faultDrop, faultPGRestart},
				mix:       8,
				instances: 3, privatePG: true,
				// Sized for a 2-core machine: more clients starve the
				// Node process and then measure the machine, not canvasd.
				canvases: 4, goPerCanvas: 3, rcPerCanvas: 1,
				interval: 100 * time.Millisecond,
			}
			sc.run(t, seed)
		})
	}
}

// TestCheckerSelfTest corrupts a database on purpose, one anomaly at a
// time, and sees each detector fire; a clean history reports nothing.
func TestCheckerSelfTest(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOpts{instances: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var models []ackModel
	for i, cv := range []string{"twice", "rollback", "rewind"} {
		c.createCanvas(cv)
		g := newGoClient("self"+cv, cv, i, c.proxies[0], 1)
		n := map[string]any{"id": "n", "kind": "note", "x": 1.0, "y": 0.0, "w": 200, "h": 120, "title": "T1", "body": ""}
		for id, m := range []mutation{
			{Name: "createNode", Args: n},
			{Name: "updateNode", Args: map[string]any{"id": "n", "title": "T2"}},
			{Name: "moveNode", Args: map[string]any{"id": "n", "x": 2.0, "y": 0.0}},
		} {
			m.ID, m.ClientID = int64(id+1), g.clientID
			require.NoError(t, g.push(ctx, []mutation{m}))
		}
		_, _, model, _ := g.snapshot()
		require.Equal(t, int64(3), model.acked)
		models = append(models, model)
	}
	kinds := func() map[string]int {
		v, err := checkHistory(ctx, c.db, models)
		require.NoError(t, err)
		out := map[string]int{}
		for _, x := range v {
			out[x.Kind]++
		}
		return out
	}
	require.Empty(t, kinds(), "a clean history")
	require.Empty(t, freshPulls(ctx, c.db, c.tr, c.instanceBases(), []string{"twice", "rollback", "rewind"}))

	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := c.db.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	// A mutation applied twice: the old title written again, in a
	// transaction that bumps the version like a real commit.
	exec(`WITH v AS (UPDATE canvases SET version = version + 1 WHERE id = 'twice' RETURNING version)
		UPDATE nodes SET title = 'T1', version = (SELECT version FROM v) WHERE canvas_id = 'twice' AND id = 'n'`)
	require.Equal(t, map[string]int{kindAppliedTwice: 1}, kinds())
	exec(`WITH v AS (UPDATE canvases SET version = version + 1 WHERE id = 'twice' RETURNING version)
		UPDATE nodes SET x = 1, version = (SELECT version FROM v) WHERE canvas_id = 'twice' AND id = 'n'`)
	require.Equal(t, map[string]int{kindAppliedTwice: 2}, kinds())

	// A lastMutationID rolled back: the acknowledged mutation is lost.
	exec(`WITH v AS (UPDATE canvases SET version = version + 1 WHERE id = 'rollback' RETURNING version)
		UPDATE clients SET last_mutation_id = last_mutation_id - 1, version = (SELECT version FROM v) WHERE canvas_id = 'rollback'`)
	got := kinds()
	require.Equal(t, 1, got[kindLMIDRollback], got)
	require.Equal(t, 1, got[kindLost], got)

	// A version rewound (3 -> 2: version 2 given again), then 3 given again.
	exec(`UPDATE canvases SET version = version - 1 WHERE id = 'rewind'`)
	got = kinds()
	require.Equal(t, 1, got[kindVersionStep], got)
	require.Equal(t, 1, got[kindVersionReuse], got)
	exec(`UPDATE canvases SET version = version + 1 WHERE id = 'rewind'`)
	got = kinds()
	require.Equal(t, 2, got[kindVersionReuse], got)

	// A write outside any version, and a deleted row brought back.
	exec(`UPDATE nodes SET deleted = true WHERE canvas_id = 'rewind'`)
	exec(`UPDATE nodes SET deleted = false WHERE canvas_id = 'rewind'`)
	got = kinds()
	require.Equal(t, 2, got[kindUnversioned], got)
	require.Equal(t, 1, got[kindReborn], got)

	// A client that never pulls is stale; the convergence detector says so.
	stale := newGoClient("stale", "twice", 9, c.proxies[0], 1)
	_, _, never := c.convergeBy(ctx, t, []*goClient{stale}, nil, []string{"twice"}, time.Now().Add(300*time.Millisecond))
	require.Len(t, never, 1)

	// An instance whose pull differs from the database: here a stand-in
	// that answers every pull with an empty canvas.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"cookie":{"order":1,"canvas":"twice","epoch":"x"},"lastMutationIDChanges":{},"patch":[{"op":"clear"}]}`))
	})}
	served := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(served) }()
	defer func() { _ = srv.Close(); <-served }()
	v := freshPulls(ctx, c.db, c.tr, []string{"http://" + ln.Addr().String()}, []string{"twice"})
	require.Len(t, v, 1, v)
	require.Equal(t, kindInstanceDiffs, v[0].Kind)
}
