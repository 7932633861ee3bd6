package actors

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/canvasd/canvasd/canvas/store"
	"github.com/canvasd/canvasd/tests/pgtest"
)

// startOn runs a System on pool with channel for pokes; prepare runs
// before it starts.
func startOn(t *testing.T, pool *pgxpool.Pool, channel string, prepare func(*System)) *System {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NotifyChannel = channel
	s, err := New(cfg, store.New(pool), zaptest.NewLogger(t))
	require.NoError(t, err)
	if prepare != nil {
		prepare(s)
	}
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(s.Stop)
	require.Eventually(t, s.Ready, 10*time.Second, 10*time.Millisecond, "LISTEN connection")
	return s
}

// A notification that fails to go out is sent again until it does: the
// other instance's subscribers are poked all the same.
func TestFailedNotifyIsRetried(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	channel := pgtest.Name("test")
	// No version check: only the notification may poke here.
	a := startOn(t, pgtest.PoolFrom(t, cfg, true), channel, func(s *System) { s.cfg.VersionCheck = 0 })
	var failures atomic.Int32
	failures.Store(3)
	b := startOn(t, pgtest.PoolFrom(t, cfg, false), channel, func(s *System) {
		send := s.notify
		s.notify = func(ctx context.Context, channel, payload string) error {
			if failures.Add(-1) >= 0 {
				return errors.New("connection lost (injected)")
			}
			return send(ctx, channel, payload)
		}
	})
	createCanvas(t, a.store, "c")
	sub, err := a.Subscribe(context.Background(), "c")
	require.NoError(t, err)
	defer sub.Close()

	require.NoError(t, b.Push(context.Background(), "c", "", pushReq("g", "x", 1, "createNode", `{"id":"n","kind":"k","x":0,"y":0}`)))
	select {
	case v := <-sub.C:
		require.Equal(t, int64(1), v)
	case <-time.After(5 * time.Second):
		t.Fatal("the other instance's subscriber was never poked")
	}
	require.Less(t, failures.Load(), int32(0), "the failed sends were retried")
	// The other instance may hear it before the sender counts it.
	require.Eventually(t, func() bool { return b.Metrics.NotifySent.Load() > 0 }, 5*time.Second, 10*time.Millisecond)
}

// A commit whose notification never goes out (its instance died between
// commit and notify) still reaches the other instances' subscribers: they
// read the versions of their subscribed canvases every VersionCheck.
func TestLostNotificationIsPokedByVersionCheck(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	channel := pgtest.Name("test")
	a := startOn(t, pgtest.PoolFrom(t, cfg, true), channel, func(s *System) { s.cfg.VersionCheck = 100 * time.Millisecond })
	b := startOn(t, pgtest.PoolFrom(t, cfg, false), channel, func(s *System) {
		s.cfg.VersionCheck = 0
		s.notify = func(context.Context, string, string) error { return errors.New("never sent (injected)") }
	})
	createCanvas(t, a.store, "c")
	sub, err := a.Subscribe(context.Background(), "c")
	require.NoError(t, err)
	defer sub.Close()

	for want := int64(1); want <= 3; want++ {
		require.NoError(t, b.Push(context.Background(), "c", "", pushReq("g", "x", want, "createNode", fmt.Sprintf(`{"id":"n%d","kind":"k","x":0,"y":0}`, want))))
		select {
		case v := <-sub.C:
			require.Equal(t, want, v)
		case <-time.After(5 * time.Second):
			t.Fatalf("version %d was never poked", want)
		}
	}
	require.Zero(t, b.Metrics.NotifySent.Load())
}
