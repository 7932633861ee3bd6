package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/harness"
)

// pushResult is one push as a client saw it.
type pushResult struct {
	status     int
	retryAfter string
	took       time.Duration
}

// timedPush pushes one mutation and reports status, Retry-After and
// latency; transport errors fail the test.
func timedPush(t *testing.T, s *harness.Server, canvasID, group string, m M) pushResult {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"profileID": "p", "clientGroupID": group, "pushVersion": 1, "schemaVersion": "1",
		"mutations": []map[string]any{{"id": m.ID, "clientID": m.ClientID, "name": m.Name, "args": m.Args, "timestamp": 0}},
	})
	require.NoError(t, err)
	start := time.Now()
	resp, err := http.Post(s.URL+"/api/canvases/"+canvasID+"/replicache/push", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Errorf("push %s: %v", canvasID, err)
		return pushResult{}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return pushResult{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), took: time.Since(start)}
}

// One canvas whose row another session holds locked must not slow the
// others down, although their batches share statements with its batches:
// their pushes all succeed quickly; the stuck canvas answers 503 with
// Retry-After after the lock timeout, its pulls answer its last committed
// state and its event stream opens at once; and a push waiting when the
// lock goes commits right away.
//
// The target is 1 s for the other canvases' pushes and the stuck canvas's
// pulls (logged); the test bounds them by 2 s so that a loaded machine
// does not fail it, far below the lock hold (3 s) and write timeout
// (10 s) that they waited for before. ISOLATION_HOLD=12s runs the
// issue's scenario (the lock held 12 s).
func TestLockedCanvasDoesNotStallOthers(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	const healthy = 11
	ids := []string{"stuck"}
	for i := range healthy {
		ids = append(ids, fmt.Sprintf("c%d", i))
	}
	for _, id := range ids {
		s.CreateCanvas(t, id)
		mustPush(t, s, id, "g-"+id, M{1, "w-" + id, "createNode", node("n", 0, 0)})
	}
	before := s.Pull(t, "stuck", "reader", nil)

	// An administrator's transaction holds the stuck canvas's row.
	ctx := context.Background()
	tx, err := s.Store.Pool().Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM canvases WHERE id = 'stuck' FOR UPDATE`)
	require.NoError(t, err)
	const bound = 2 * time.Second
	held := 3 * time.Second
	if v := os.Getenv("ISOLATION_HOLD"); v != "" {
		// The scenario: ISOLATION_HOLD=12s.
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "ISOLATION_HOLD")
		held = d
	}
	lockedAt := time.Now()

	// Every canvas takes pushes for as long as the lock is held.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = map[string][]pushResult{}
	)
	// Declared after the rollback: a failing check waits for the pushers
	// first.
	defer wg.Wait()
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := int64(2); time.Since(lockedAt) < held; n++ {
				r := timedPush(t, s, id, "g-"+id, M{n, "w-" + id, "moveNode", move("n", float64(n), 0)})
				mu.Lock()
				results[id] = append(results[id], r)
				mu.Unlock()
				if r.status != http.StatusOK {
					n-- // not acknowledged: resend it, as a client does
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}

	// Meanwhile the stuck canvas still answers reads at once.
	var pullMax time.Duration
	for time.Since(lockedAt) < held-500*time.Millisecond {
		start := time.Now()
		p := s.Pull(t, "stuck", "reader", nil)
		pullMax = max(pullMax, time.Since(start))
		require.Less(t, time.Since(start), bound, "pull of the stuck canvas")
		require.Equal(t, before.Order(t), p.Order(t), "the stuck canvas's last committed state")
		require.Equal(t, values(t, before), values(t, p))

		start = time.Now()
		openCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		req, err := http.NewRequestWithContext(openCtx, http.MethodGet, s.URL+"/api/canvases/stuck/events", nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Less(t, time.Since(start), bound, "event stream of the stuck canvas")
		cancel()
		resp.Body.Close()
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()

	var (
		pushMax time.Duration
		pushes  int
	)
	for _, id := range ids[1:] {
		require.NotEmpty(t, results[id])
		for i, r := range results[id] {
			require.Equal(t, http.StatusOK, r.status, "canvas %s push %d", id, i)
			require.Less(t, r.took, bound, "canvas %s push %d", id, i)
			pushMax = max(pushMax, r.took)
			pushes++
		}
	}
	t.Logf("lock held %s: %d pushes on the other canvases, slowest %s; slowest pull of the stuck canvas %s; %d pushes of the stuck canvas answered 503",
		held, pushes, pushMax, pullMax, len(results["stuck"]))
	for i, r := range results["stuck"] {
		require.Equal(t, http.StatusServiceUnavailable, r.status, "stuck push %d", i)
		require.NotEmpty(t, r.retryAfter, "stuck push %d", i)
		require.Less(t, r.took, 3*time.Second, "stuck push %d (lock timeout 2s)", i)
	}
	require.NotEmpty(t, results["stuck"])

	// A push waiting for the row when the lock goes commits right away.
	busy := s.Sys.Metrics.Busy.Load()
	waiting := make(chan pushResult, 1)
	go func() { waiting <- timedPush(t, s, "stuck", "g-stuck", M{2, "w-stuck", "moveNode", move("n", 42, 0)}) }()
	require.Eventually(t, func() bool { return s.Sys.Metrics.Busy.Load() > busy }, 5*time.Second, 5*time.Millisecond, "the push waits for the row")
	require.NoError(t, tx.Rollback(ctx))
	released := time.Now()
	select {
	case r := <-waiting:
		require.Equal(t, http.StatusOK, r.status)
		require.Less(t, time.Since(released), time.Second)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting push was not answered")
	}
	require.Equal(t, 42.0, values(t, s.Pull(t, "stuck", "reader", nil))["node/n"]["x"])
	mustPush(t, s, "stuck", "g-stuck", M{3, "w-stuck", "moveNode", move("n", 43, 0)})
}

// With no lock timeout a push waits for a locked canvas row (up to the
// write timeout) and commits once the lock goes.
func TestNoLockTimeoutWaitsForTheRow(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(c *actorsConfig, _ *httpConfig) { c.LockTimeout = 0 })
	s.CreateCanvas(t, "c")
	mustPush(t, s, "c", "g", M{1, "a", "createNode", node("n", 0, 0)})
	ctx := context.Background()
	tx, err := s.Store.Pool().Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM canvases WHERE id = 'c' FOR UPDATE`)
	require.NoError(t, err)

	done := make(chan pushResult, 1)
	go func() { done <- timedPush(t, s, "c", "g", M{2, "a", "moveNode", move("n", 7, 0)}) }()
	select {
	case r := <-done:
		t.Fatalf("answered %d while the row was locked", r.status)
	case <-time.After(500 * time.Millisecond):
	}
	require.NoError(t, tx.Rollback(ctx))
	select {
	case r := <-done:
		require.Equal(t, http.StatusOK, r.status)
	case <-time.After(10 * time.Second):
		t.Fatal("the push was not answered")
	}
	require.Equal(t, 7.0, values(t, s.Pull(t, "c", "g", nil))["node/n"]["x"])
}
