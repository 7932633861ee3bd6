package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
	"github.com/canvasd/canvasd/tests/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newSystem(t *testing.T, tune func(*Config)) (*System, *store.Store) {
	t.Helper()
	pool := pgtest.Pool(t)
	st := store.New(pool)
	cfg := DefaultConfig()
	cfg.NotifyChannel = pgtest.Name("test")
	if tune != nil {
		tune(&cfg)
	}
	s, err := New(cfg, st, zaptest.NewLogger(t))
	require.NoError(t, err)
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(s.Stop)
	return s, st
}

func pushReq(group, client string, id int64, name string, args string) *canvas.PushRequest {
	return &canvas.PushRequest{ClientGroupID: group, PushVersion: 1, Mutations: []canvas.Mutation{
		{ID: id, ClientID: client, Name: name, Args: json.RawMessage(args)},
	}}
}

func createCanvas(t *testing.T, st *store.Store, id string) {
	t.Helper()
	_, _, err := st.CreateCanvas(context.Background(), id, "")
	require.NoError(t, err)
}

// Many pushes racing to activate one canvas get one actor, and their
// mutations all commit.
func TestActivationRace(t *testing.T) {
	t.Parallel()
	s, st := newSystem(t, nil)
	createCanvas(t, st, "c")
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Push(context.Background(), "c", "", pushReq(fmt.Sprintf("g%d", i), fmt.Sprintf("c%d", i), 1,
				"createNode", fmt.Sprintf(`{"id":"n%d","kind":"k","x":0,"y":0}`, i)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, s.dir.active(), 1)
	snap, err := st.Load(context.Background(), "c")
	require.NoError(t, err)
	require.Len(t, snap.Clients, 50)
	require.Less(t, snap.Canvas.Version, int64(50), "waiting pushes were batched")
}

// An idle canvas is passivated and comes back with its state.
func TestPassivationThenReuse(t *testing.T) {
	t.Parallel()
	s, st := newSystem(t, func(c *Config) { c.IdleTimeout = 50 * time.Millisecond })
	createCanvas(t, st, "c")
	ctx := context.Background()
	require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", 1, "createNode", `{"id":"n","kind":"k","x":0,"y":0}`)))
	first := s.dir.acquireExisting("c")
	require.NotNil(t, first)
	s.dir.release(first)

	require.Eventually(t, func() bool { return len(s.dir.active()) == 0 }, 5*time.Second, 10*time.Millisecond)
	// The old actor is gone from the engine.
	require.Eventually(t, func() bool { return s.engine.Registry.GetPID("canvas", first.pid.ID) == nil }, 5*time.Second, 10*time.Millisecond)

	// Reuse: a fresh activation knows the node and the client.
	require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", 2, "moveNode", `{"id":"n","x":4,"y":4}`)))
	second := s.dir.acquireExisting("c")
	require.NotNil(t, second)
	s.dir.release(second)
	require.NotEqual(t, first.pid.ID, second.pid.ID)
	snap, err := st.Load(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, int64(2), snap.Clients["a"].LastMutationID)
	require.Equal(t, int64(2), snap.Canvas.Version)
}

// A subscribed canvas is never passivated.
func TestSubscribedCanvasStaysActive(t *testing.T) {
	t.Parallel()
	s, st := newSystem(t, func(c *Config) { c.IdleTimeout = 20 * time.Millisecond })
	createCanvas(t, st, "c")
	sub, err := s.Subscribe(context.Background(), "c")
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // several idle periods: nothing may happen
	require.Len(t, s.dir.active(), 1)
	sub.Close()
	require.Eventually(t, func() bool { return len(s.dir.active()) == 0 }, 5*time.Second, 10*time.Millisecond)
}

// A mutator that panics is skipped like a permanent error; the canvas and
// the process carry on.
func TestPanickingMutator(t *testing.T) {
	t.Parallel()
	s, st := newSystem(t, nil)
	s.decode = func(name string, args json.RawMessage, lim canvas.Limits) (canvas.Op, error) {
		if name == "boom" {
			panic("mutator bug")
		}
		return canvas.Decode(name, args, lim)
	}
	createCanvas(t, st, "c")
	ctx := context.Background()
	for i := int64(1); i <= 5; i++ { // more than hollywood's default restarts
		require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", i, "boom", `{}`)))
	}
	require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", 6, "createNode", `{"id":"n","kind":"k","x":0,"y":0}`)))
	snap, err := st.Load(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, int64(6), snap.Clients["a"].LastMutationID)
	require.Len(t, snap.Changes, 2, "the canvas meta and the node")
}

// An actor that panics in Receive, again and again, neither restarts past
// its limit nor takes the process down.
func TestRecoverMiddleware(t *testing.T) {
	t.Parallel()
	s, _ := newSystem(t, nil)
	handled := make(chan struct{}, 10)
	pid := s.engine.SpawnFunc(func(c *actor.Context) {
		if _, ok := c.Message().(string); ok {
			handled <- struct{}{}
			panic("receive bug")
		}
	}, "panicky", s.actorOpts()...)
	for range 10 {
		s.engine.Send(pid, "x")
	}
	for range 10 {
		select {
		case <-handled:
		case <-time.After(5 * time.Second):
			t.Fatal("actor stopped handling messages")
		}
	}
	<-s.engine.Poison(pid).Done()
}

// Past the bound on queued pushes a canvas answers ErrOverloaded.
func TestQueuedPushBound(t *testing.T) {
	t.Parallel()
	s, st := newSystem(t, func(c *Config) { c.MaxQueuedPushes = 2 })
	createCanvas(t, st, "c")
	e := s.dir.acquire("c")
	e.queued.Store(2) // as if two pushes were waiting
	err := s.Push(context.Background(), "c", "", pushReq("g", "a", 1, "createNode", `{"id":"n","kind":"k","x":0,"y":0}`))
	require.ErrorIs(t, err, ErrOverloaded)
	e.queued.Store(0)
	s.dir.release(e)
	require.NoError(t, s.Push(context.Background(), "c", "", pushReq("g", "a", 1, "createNode", `{"id":"n","kind":"k","x":0,"y":0}`)))
}

func TestPushToUnknownCanvas(t *testing.T) {
	t.Parallel()
	s, _ := newSystem(t, nil)
	err := s.Push(context.Background(), "nope", "", pushReq("g", "a", 1, "createNode", `{"id":"n","kind":"k","x":0,"y":0}`))
	require.ErrorIs(t, err, canvas.ErrNotFound)
	_, err = s.Subscribe(context.Background(), "nope")
	require.ErrorIs(t, err, canvas.ErrNotFound)
}

func TestNotificationRoundTrip(t *testing.T) {
	t.Parallel()
	var batch []dirtyCanvas
	for i := range 2000 {
		batch = append(batch, dirtyCanvas{fmt.Sprintf("canvas-%d", i), int64(i * 1000)})
	}
	var got []dirtyCanvas
	for rest := batch; len(rest) > 0; {
		var payload string
		payload, rest = encodeChunk("inst", rest)
		require.LessOrEqual(t, len(payload), maxPayload)
		instance, part := decodeNotification(payload)
		require.Equal(t, "inst", instance)
		got = append(got, part...)
	}
	require.Equal(t, batch, got)
}

// Requests for canvases that do not exist leave no actor behind.
func TestMissingCanvasActorsGoAtOnce(t *testing.T) {
	t.Parallel()
	s, st := newSystem(t, nil) // idle timeout: minutes
	ctx := context.Background()
	for i := range 100 {
		id := fmt.Sprintf("nope%d", i)
		require.ErrorIs(t, s.Push(ctx, id, "", pushReq("g", "a", 1, "createNode", `{"id":"n","kind":"k","x":0,"y":0}`)), canvas.ErrNotFound)
		_, err := s.Pull(ctx, id, "", "g", nil)
		require.ErrorIs(t, err, canvas.ErrNotFound)
		_, err = s.Subscribe(ctx, id)
		require.ErrorIs(t, err, canvas.ErrNotFound)
	}
	require.Empty(t, s.dir.active())
	require.Zero(t, s.Metrics.ActiveCanvases.Load())

	// Created afterwards, the canvas works.
	createCanvas(t, st, "nope7")
	require.NoError(t, s.Push(ctx, "nope7", "", pushReq("g", "a", 1, "createNode", `{"id":"n","kind":"k","x":0,"y":0}`)))
	require.Len(t, s.dir.active(), 1)
}

// A burst of commits on a watched canvas costs each subscriber a handful of
// pokes, the last carrying the final version.
func TestPokesCoalesceWithManySubscribers(t *testing.T) {
	t.Parallel()
	s, st := newSystem(t, func(c *Config) {
		c.PokeWindow = 100 * time.Millisecond
		c.PokeWindowPerSubscriber = 5 * time.Millisecond
	})
	createCanvas(t, st, "c")
	ctx := context.Background()
	const subscribers = 40 // window: min(100ms, 40 × 5ms)
	var counts, last [subscribers]atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	for i := range subscribers {
		sub, err := s.Subscribe(ctx, "c")
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sub.Close()
			for {
				select {
				case v := <-sub.C:
					counts[i].Add(1)
					last[i].Store(v)
				case <-done:
					return
				}
			}
		}()
	}
	start := time.Now()
	const commits = 100
	for i := int64(1); i <= commits; i++ {
		require.NoError(t, s.Push(ctx, "c", "", pushReq("g", "a", i, "updateCanvas", fmt.Sprintf(`{"title":"t%d"}`, i))))
	}
	burst := time.Since(start)
	// The last poke, carrying the final version, reaches everyone.
	require.Eventually(t, func() bool {
		for i := range subscribers {
			if last[i].Load() != commits {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond)
	close(done)
	wg.Wait()
	limit := int64(burst/(100*time.Millisecond)) + 2
	for i := range subscribers {
		require.LessOrEqual(t, counts[i].Load(), limit, "burst of %v", burst)
	}
	t.Logf("%d commits in %v: %d pokes per subscriber", commits, burst, counts[0].Load())
}

// Batches of different canvases waiting at once share statements.
func TestCanvasesShareCommits(t *testing.T) {
	t.Parallel()
	s, st := newSystem(t, func(c *Config) { c.Committers = 1 })
	ctx := context.Background()
	const canvases = 40
	for i := range canvases {
		createCanvas(t, st, fmt.Sprintf("c%d", i))
	}
	var wg sync.WaitGroup
	for i := range canvases {
		wg.Go(func() {
			for j := int64(1); j <= 5; j++ {
				require.NoError(t, s.Push(ctx, fmt.Sprintf("c%d", i), "", pushReq(fmt.Sprintf("g%d", i), "a", j, "createNode", fmt.Sprintf(`{"id":"n%d","kind":"k","x":0,"y":0}`, j))))
			}
		})
	}
	wg.Wait()
	for i := range canvases {
		snap, err := st.Load(ctx, fmt.Sprintf("c%d", i))
		require.NoError(t, err)
		require.Equal(t, int64(5), snap.Clients["a"].LastMutationID)
		require.Len(t, snap.Changes, 6)
	}
	require.Equal(t, int64(canvases*5), s.Metrics.Transactions.Load())
	require.Less(t, s.Metrics.Statements.Load(), s.Metrics.Transactions.Load(), "statements carried several canvases")
}

// A batch the database refuses fails alone: the canvases that shared its
// statement are written one by one and commit.
func TestSharedCommitIsolatesABadBatch(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	st := store.New(pool)
	createCanvas(t, st, "good")
	createCanvas(t, st, "bad")
	s, err := New(DefaultConfig(), st, zaptest.NewLogger(t))
	require.NoError(t, err)
	c := newCommitter(s)
	good := &commitReq{reply: make(chan store.Committed, 1), batch: store.CanvasBatch{CanvasID: "good", Write: &store.Write{
		Changes: []canvas.Change{{Kind: canvas.ChangeNode, ID: "n", Node: canvas.Node{ID: "n", Kind: "k", W: 1, H: 1}}}}}}
	// A client of a group that was never recorded breaks a foreign key.
	bad := &commitReq{reply: make(chan store.Committed, 1), batch: store.CanvasBatch{CanvasID: "bad", Write: &store.Write{
		Clients: map[string]store.Client{"x": {Group: "ghost", LastMutationID: 1}}}}}
	c.reqs <- good
	c.reqs <- bad // both queued: one statement takes them together
	c.start(1)
	defer c.stop()
	require.Equal(t, store.Committed{Version: 1}, <-good.reply)
	require.Error(t, (<-bad.reply).Err)
	require.Equal(t, int64(3), s.Metrics.Statements.Load(), "the shared statement, then one each")
	v, err := st.Version(context.Background(), "bad")
	require.NoError(t, err)
	require.Zero(t, v, "nothing of the bad batch was written")
}
