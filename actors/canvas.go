package actors

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/anthdm/hollywood/actor"
	"go.uber.org/zap"

	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
)

type (
	pushMsg struct {
		entry    *entry
		userID   string
		req      *canvas.PushRequest
		reply    chan error
		enqueued time.Time
	}
	// flushMsg is sent by a canvas actor to itself behind the pushes already
	// in its mailbox, so that one transaction takes all of them.
	flushMsg struct{}
	// busyRetryMsg ends the pause before pushes refused by a locked canvas
	// row are tried again.
	busyRetryMsg struct{}
	subscribeMsg struct {
		sub   *Subscription
		reply chan subscribeReply
	}
	subscribeReply struct {
		version int64
		err     error
	}
	unsubscribeMsg struct {
		sub   *Subscription
		entry *entry // released once handled; nil if the caller released it
	}
	// pokeTimerMsg ends a poke window.
	pokeTimerMsg struct{}
	// remotePokeMsg says another instance committed version (or, with
	// version 0, that pokes may have been missed).
	remotePokeMsg struct {
		entry   *entry
		version int64
	}
)

// canvasActor owns the write path of one canvas: its version, an in-memory
// copy of its content and clients (checked against the database under the
// canvas row lock in every transaction), and its subscribers.
type canvasActor struct {
	s      *System
	id     string
	entry  *entry
	logger *zap.Logger

	loaded  bool
	known   bool // the canvas was seen to exist (for presence)
	state   *canvas.State
	version int64 // the version state and clients reflect
	seen    int64 // the newest version known to exist (pokes from other instances)
	// delivered is the newest version every current subscriber was poked
	// with (or subscribed at). It is kept apart from seen: a pull, load or
	// catch-up can learn of another instance's commit before that
	// instance's notification arrives, and the notification then finds
	// nothing new; the subscribers must still hear of it.
	delivered int64
	epoch     string
	clients   map[string]store.Client
	groups    map[string]string // client group -> user, for groups bound to this canvas
	// groupsPurged is the version at which client groups were last
	// deleted: a pull from an unknown group with an older cookie comes
	// from a deleted group.
	groupsPurged int64

	// The pull side: clients by group, the bindings of groups that only
	// pull, and a log of the rows changed after logFloor, from which
	// incremental pulls are answered without the database.
	groupClients map[string][]string
	pullGroups   map[string]groupBinding
	log          []logEntry
	logFloor     int64
	patches      map[int64]*Patch

	pending        []*pushMsg
	flushScheduled bool
	// busyRetry is set while pushes wait for a canvas row another session
	// holds: they are tried again after a pause, and the actor answers
	// pulls and subscriptions in between.
	busyRetry bool
	// busy is set while the canvas row was last found locked by another
	// session.
	busy          bool
	pendingPulls  []*pullMsg
	pullScheduled bool
	lastCheck     time.Time
	subs          map[*Subscription]struct{}
	unpokedSince  int64 // Unix nanoseconds of the oldest commit not poked yet, 0 if none
	lastPoke      time.Time
	pokeScheduled bool
}

func newCanvasActor(s *System, id string, e *entry) actor.Producer {
	return func() actor.Receiver {
		return &canvasActor{s: s, id: id, entry: e, logger: s.log.Named("canvas").With(zap.String("canvas", id)),
			subs: make(map[*Subscription]struct{}), pullGroups: make(map[string]groupBinding), patches: make(map[int64]*Patch)}
	}
}

func (a *canvasActor) Receive(c *actor.Context) {
	switch msg := c.Message().(type) {
	case *pushMsg:
		a.pending = append(a.pending, msg)
		if !a.flushScheduled && !a.busyRetry {
			a.flushScheduled = true
			c.Send(c.PID(), flushMsg{})
		}
	case flushMsg:
		a.flushScheduled = false
		if !a.busyRetry {
			a.flush(c)
		}
	case busyRetryMsg:
		a.busyRetry = false
		a.flush(c)
	case *pullMsg:
		a.pendingPulls = append(a.pendingPulls, msg)
		a.schedulePulls(c)
	case pullFlushMsg:
		a.pullScheduled = false
		a.flushPulls()
	case *subscribeMsg:
		msg.reply <- a.subscribe(msg.sub)
	case *unsubscribeMsg:
		delete(a.subs, msg.sub)
		if msg.entry != nil {
			a.s.dir.release(msg.entry)
		}
	case *remotePokeMsg:
		a.seen = max(a.seen, msg.version)
		if msg.version == 0 {
			// Notifications may have been missed: poke whatever we know.
			a.poke(c)
		}
		a.s.dir.release(msg.entry)
	case *existsMsg:
		a.exists(msg)
	case *deletedMsg:
		a.deleted(msg)
	case pokeTimerMsg:
		a.pokeScheduled = false
		a.pokeNow()
	case actor.Stopped:
		// Passivation happens only without references, so nothing is
		// pending here; at shutdown, answer what is left.
		a.fail(a.pending, ErrStopped)
		a.pending = nil
		for _, p := range a.pendingPulls {
			p.reply <- pullReply{err: ErrStopped}
			a.s.dir.release(p.entry)
		}
		a.pendingPulls = nil
		return
	}
	// Whatever the message did (a commit, a pull's freshness check, a load,
	// a remote poke), a version the subscribers have not heard of is poked.
	if a.seen > a.delivered {
		a.poke(c)
	}
}

func (a *canvasActor) subscribe(sub *Subscription) subscribeReply {
	if !a.loaded && a.seen == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), a.s.cfg.WriteTimeout)
		defer cancel()
		cv, err := a.s.store.GetCanvas(ctx, a.id)
		if err != nil {
			a.entry.missing.Store(errors.Is(err, canvas.ErrNotFound))
			return subscribeReply{err: err}
		}
		a.seen = cv.Version
	}
	version := max(a.seen, a.version)
	if len(a.subs) == 0 {
		// The stream starts at version: its client learns of what came
		// before by its own pull (or the catch-up poke on reconnect).
		a.delivered = version
	}
	a.subs[sub] = struct{}{}
	return subscribeReply{version: version}
}

// poke tells the subscribers that the canvas reached a.seen, at once or,
// if the last poke is more recent than the window, when the window ends:
// the commits in between then cost one poke (and one pull per subscriber)
// instead of one each.
func (a *canvasActor) poke(c *actor.Context) {
	if len(a.subs) == 0 {
		a.unpokedSince = 0
		return
	}
	if a.unpokedSince == 0 {
		a.unpokedSince = time.Now().UnixNano()
	}
	if a.pokeScheduled {
		return
	}
	window := min(a.s.cfg.PokeWindow, time.Duration(len(a.subs))*a.s.cfg.PokeWindowPerSubscriber)
	wait := window - time.Since(a.lastPoke)
	if wait <= 0 {
		a.pokeNow()
		return
	}
	a.pokeScheduled = true
	pid, engine := c.PID(), c.Engine()
	time.AfterFunc(wait, func() { engine.Send(pid, pokeTimerMsg{}) })
}

func (a *canvasActor) pokeNow() {
	for sub := range a.subs {
		sub.since.CompareAndSwap(0, a.unpokedSince)
		sub.deliver(a.seen)
	}
	a.delivered = a.seen
	a.unpokedSince = 0
	a.lastPoke = time.Now()
	a.s.Metrics.Pokes.Add(int64(len(a.subs)))
}

// flush commits the pending pushes: all of them in one transaction when
// batching, else one transaction each.
func (a *canvasActor) flush(c *actor.Context) {
	if len(a.pending) == 0 {
		return
	}
	n := len(a.pending)
	if !a.s.cfg.Batching {
		n = 1
	}
	n = min(n, a.s.cfg.MaxBatchPushes)
	batch := a.pending[:n:n]
	a.pending = a.pending[n:]
	if len(a.pending) > 0 {
		a.flushScheduled = true
		c.Send(c.PID(), flushMsg{})
	} else {
		a.pending = nil
	}
	for _, p := range batch {
		p.entry.queued.Add(-1)
	}

	version, results, err := a.commit(batch)
	if errors.Is(err, store.ErrBusy) && a.retryBusy(c, batch) {
		return
	}
	if err != nil && len(batch) > 1 && !store.IsTemporary(err) {
		// One bad push must not fail its neighbours: retry them one by one.
		a.logger.Warn("batch failed, retrying its pushes one by one", zap.Int("pushes", len(batch)), zap.Error(err))
		for _, p := range batch {
			v, res, err := a.commit([]*pushMsg{p})
			a.answer([]*pushMsg{p}, res, err)
			if v > 0 {
				a.committed(c, v)
			}
		}
		return
	}
	a.answer(batch, results, err)
	if version > 0 {
		a.committed(c, version)
	}
}

// busyRetryPause is the pause between attempts to write a canvas whose
// row another session holds.
const busyRetryPause = 50 * time.Millisecond

// retryBusy puts batch, refused because another session holds the canvas
// row, back at the head of the pending pushes to be tried again after a
// pause, unless a push of it has waited the lock timeout already. Nothing
// of it was written.
func (a *canvasActor) retryBusy(c *actor.Context, batch []*pushMsg) bool {
	for _, p := range batch {
		if time.Since(p.enqueued) >= a.s.cfg.LockTimeout {
			return false
		}
	}
	for _, p := range batch {
		p.entry.queued.Add(1)
	}
	a.pending = append(batch[:len(batch):len(batch)], a.pending...)
	if !a.busyRetry {
		a.busyRetry = true
		pid, engine := c.PID(), c.Engine()
		time.AfterFunc(busyRetryPause, func() { engine.Send(pid, busyRetryMsg{}) })
	}
	return true
}

func (a *canvasActor) answer(batch []*pushMsg, results []error, err error) {
	for i, p := range batch {
		if err == nil {
			err := results[i]
			p.reply <- err
		} else {
			p.reply <- err
		}
		a.s.dir.release(p.entry)
	}
	a.s.Metrics.Pushes.Add(int64(len(batch)))
}

func (a *canvasActor) fail(batch []*pushMsg, err error) {
	for _, p := range batch {
		p.entry.queued.Add(-1)
	}
	a.answer(batch, nil, err)
}

// committed tells subscribers, and other instances, of a new version.
func (a *canvasActor) committed(c *actor.Context, version int64) {
	a.seen = max(a.seen, version)
	a.poke(c)
	if a.s.cfg.Notify == NotifyCoalesced {
		a.s.notifier.dirty(a.id, version)
	}
}

// commit applies batch in one transaction. It returns the committed version
// (0 if nothing was written), one result per push (nil, or a protocol error
// such as canvas.ErrClientStateNotFound), or an error that fails them all.
func (a *canvasActor) commit(batch []*pushMsg) (version int64, results []error, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), a.s.cfg.WriteTimeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			a.loaded = false
			a.logger.Error("push batch panicked", zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
			version, results, err = 0, nil, fmt.Errorf("internal error: %v", v)
		}
	}()
	if !a.loaded {
		if err := a.load(ctx); err != nil {
			return 0, nil, err
		}
	}
	// While another session holds the row, retries go straight to the
	// row lock: its short wait fails before memory is touched, so memory
	// need not be read again for every attempt.
	if a.s.cfg.Versioning == store.PerCanvas && !a.busy {
		version, results, err = a.commitOptimistic(ctx, batch)
		if errors.Is(err, store.ErrBusy) && a.s.cfg.LockTimeout > 0 {
			// Another session holds the row: the batch is tried again
			// under the row lock after a pause (retryBusy), the pulls
			// waiting meanwhile answered first.
			a.busy = true
			return version, results, err
		}
		if !errors.Is(err, store.ErrStale) && !errors.Is(err, store.ErrBusy) {
			return version, results, err
		}
		// Another instance wrote this canvas since we loaded it (or, with
		// no lock timeout, holds it now): redo the batch under the row
		// lock, on fresh state.
		a.logger.Debug("canvas written or locked elsewhere, retrying under the row lock", zap.Error(err))
		if err := a.load(ctx); err != nil {
			return 0, nil, err
		}
	}
	version, results, err = a.commitLocked(ctx, batch)
	a.busy = errors.Is(err, store.ErrBusy)
	return version, results, err
}

// commitOptimistic applies batch to the in-memory canvas and writes it in
// one statement that commits only if the database is still at the version
// the memory reflects (store.ErrStale otherwise, with nothing written).
func (a *canvasActor) commitOptimistic(ctx context.Context, batch []*pushMsg) (int64, []error, error) {
	b, results, err := a.applyBatch(ctx, batch, func(ctx context.Context, group string) (string, string, bool, error) {
		return a.s.store.GroupOwner(ctx, group, a.id)
	})
	if err != nil {
		return 0, nil, err
	}
	if b.write.Empty() {
		if b.gap {
			// A gap seen through a stale cache may be no gap at all.
			current, err := a.s.store.Version(ctx, a.id)
			if err != nil {
				return 0, nil, err
			}
			if current != a.version {
				a.loaded = false
				return 0, nil, store.ErrStale
			}
		}
		return 0, results, nil // nothing new: the version stays
	}
	b.finish()
	version, err := a.s.committer.commit(ctx, store.CanvasBatch{CanvasID: a.id, Expect: a.version, Write: &b.write}, b.mutations)
	if err != nil {
		// The in-memory state already holds the batch: reload it next time.
		a.loaded = false
		if !errors.Is(err, store.ErrStale) && !errors.Is(err, store.ErrBusy) {
			a.s.Metrics.WriteErrors.Add(1)
		}
		return 0, nil, err
	}
	a.committedBatch(version, b)
	return version, results, nil
}

// lockAttempt bounds one wait for a canvas row lock held by another
// session, so the actor's pulls and subscriptions never wait longer.
const lockAttempt = 50 * time.Millisecond

// commitLocked takes the canvas row lock (and in global mode the global
// row lock) first, catches up with what other instances wrote, then applies
// batch in that transaction.
func (a *canvasActor) commitLocked(ctx context.Context, batch []*pushMsg) (int64, []error, error) {
	var lockTimeout time.Duration
	if a.s.cfg.Versioning == store.PerCanvas && a.s.cfg.LockTimeout > 0 {
		// A short wait for the row: a write of another instance ends in
		// milliseconds; a longer hold is retried between other messages
		// (retryBusy). In global mode every write queues on the one
		// global row: that wait is the design being measured.
		lockTimeout = lockAttempt
	}
	w, err := a.s.store.BeginWrite(ctx, a.id, a.s.cfg.Versioning, lockTimeout)
	if err != nil {
		if errors.Is(err, store.ErrBusy) {
			a.s.Metrics.Busy.Add(1)
		} else {
			a.s.Metrics.WriteErrors.Add(1)
		}
		return 0, nil, err
	}
	defer w.Rollback(ctx)
	if w.Prev != a.version {
		if err := a.catchUp(ctx, w); err != nil {
			a.loaded = false
			return 0, nil, err
		}
	}

	b, results, err := a.applyBatch(ctx, batch, func(ctx context.Context, group string) (string, string, bool, error) {
		return w.GroupOwner(ctx, group)
	})
	if err != nil {
		return 0, nil, err
	}
	if b.write.Empty() {
		return 0, results, nil // nothing new: the version stays
	}
	b.finish()
	a.s.Metrics.BatchCanvases.Observe(1)
	a.s.Metrics.BatchMutations.Observe(float64(b.mutations))
	start := time.Now()
	err = w.Apply(ctx, &b.write)
	if err == nil && a.s.cfg.Notify == NotifyInTx {
		err = w.Notify(ctx, a.s.cfg.NotifyChannel, encodeNotification(a.s.notifier.instance, []dirtyCanvas{{a.id, w.Version}}))
	}
	if err == nil {
		err = w.Commit(ctx)
	}
	a.s.Metrics.CommitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		a.loaded = false
		a.s.Metrics.WriteErrors.Add(1)
		return 0, nil, err
	}
	a.committedBatch(w.Version, b)
	return w.Version, results, nil
}

// applyBatch applies the pushes of batch to memory and collects what to
// write, with one result per push.
func (a *canvasActor) applyBatch(ctx context.Context, batch []*pushMsg, owner groupOwnerFunc) (*batchWriter, []error, error) {
	b := newBatchWriter(a, owner)
	results := make([]error, len(batch))
	for i, p := range batch {
		results[i] = b.push(ctx, p)
	}
	if b.err != nil {
		a.loaded = false
		a.s.Metrics.WriteErrors.Add(1)
		return nil, nil, b.err
	}
	return b, results, nil
}

// committedBatch brings the actor's bookkeeping to a committed batch.
func (a *canvasActor) committedBatch(version int64, b *batchWriter) {
	a.version = version
	for id, cl := range b.write.Clients {
		cl.Version = version
		a.setClient(id, cl)
	}
	a.recordChanges(version, b.write.Changes)
	for _, g := range b.write.NewGroups {
		a.groups[g.ID] = g.UserID
	}
	a.s.Metrics.Transactions.Add(1)
}

// setClient records a client, indexing it under its group.
func (a *canvasActor) setClient(id string, cl store.Client) {
	if _, ok := a.clients[id]; !ok {
		a.groupClients[cl.Group] = append(a.groupClients[cl.Group], id)
	}
	a.clients[id] = cl
}

func (a *canvasActor) load(ctx context.Context) error {
	snap, err := a.s.store.Load(ctx, a.id)
	if err != nil {
		a.entry.missing.Store(errors.Is(err, canvas.ErrNotFound))
		return err
	}
	a.state = canvas.NewState(canvas.Meta{ID: a.id, Title: snap.Canvas.Title})
	for _, ch := range snap.Changes {
		a.state.Load(ch)
	}
	a.clients = snap.Clients
	a.groups = make(map[string]string)
	a.groupClients = make(map[string][]string)
	clear(a.pullGroups) // groups may have been deleted since they were read
	for id, cl := range a.clients {
		a.groupClients[cl.Group] = append(a.groupClients[cl.Group], id)
	}
	a.groupsPurged = snap.Canvas.GroupsPurgedVersion
	a.epoch = snap.Canvas.Epoch
	a.version = snap.Canvas.Version
	a.seen = max(a.seen, a.version)
	a.resetLog(a.version)
	a.loaded = true
	return nil
}

func (a *canvasActor) catchUp(ctx context.Context, w *store.WriteTx) error {
	since := a.version
	if w.Prev < a.version {
		// The database is behind what we saw (restored?): start over.
		since = store.Full
		a.state = canvas.NewState(canvas.Meta{ID: a.id})
		a.clients = make(map[string]store.Client)
		a.groups = make(map[string]string)
		a.groupClients = make(map[string][]string)
	}
	snap, err := w.Since(ctx, since)
	if err != nil {
		return err
	}
	if since != store.Full && (snap.Canvas.TombstoneHorizon > since || snap.Canvas.GroupsPurgedVersion > since) {
		// Tombstones written since were purged, or client groups were
		// deleted: the rows read miss deletions, so read everything.
		since = store.Full
		a.state = canvas.NewState(canvas.Meta{ID: a.id})
		a.clients = make(map[string]store.Client)
		a.groups = make(map[string]string)
		a.groupClients = make(map[string][]string)
		clear(a.pullGroups)
		if snap, err = w.Since(ctx, since); err != nil {
			return err
		}
	}
	a.groupsPurged = snap.Canvas.GroupsPurgedVersion
	a.logger.Debug("caught up with another instance", zap.Int64("from", since), zap.Int64("to", w.Prev))
	if since == store.Full {
		a.resetLog(w.Prev)
	}
	// Inside this transaction the canvas row already holds the new
	// version: memory is at the one before.
	a.applyCaughtUp(snap, w.Prev)
	return nil
}
