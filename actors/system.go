// Package actors runs canvasd's write path and fan-out on hollywood actors:
// one canvas actor per active canvas owns that canvas's version and
// serializes (and batches) its writes; subscriber actors carry pokes to SSE
// streams; the notifier carries pokes between instances.
package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
)

// NotifyMode says how pokes reach other instances.
type NotifyMode int

const (
	// NotifyCoalesced collects dirty canvases for a few milliseconds and
	// sends one pg_notify outside any write transaction.
	NotifyCoalesced NotifyMode = iota
	// NotifyInTx calls pg_notify inside every write transaction, as the
	// common design does (NOTIFY serializes commits cluster-wide).
	NotifyInTx
)

// Config tunes the actor system.
type Config struct {
	Versioning store.Versioning
	// Batching lets a canvas actor commit every push waiting in its mailbox
	// in one transaction; off, each push gets its own transaction.
	Batching bool
	Notify   NotifyMode
	// NotifyChannel is the PostgreSQL channel pokes travel on.
	NotifyChannel string
	// NotifyDelay is how long outgoing pokes are coalesced.
	NotifyDelay time.Duration
	// MaxQueuedPushes bounds the pushes waiting on one canvas; past it a
	// push is refused with ErrOverloaded.
	MaxQueuedPushes int
	// MaxBatchPushes bounds the pushes committed in one transaction.
	MaxBatchPushes int
	// IdleTimeout is how long an unused canvas actor stays in memory.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write transaction.
	WriteTimeout time.Duration
	// LockTimeout bounds how long a push waits for its canvas's row while
	// another session holds it locked (per-canvas versioning; 0: the
	// write timeout, in one wait). Past it the push is answered
	// store.ErrBusy (503). Statements shared by several canvases never
	// wait on a canvas row, and the canvas's actor waits at most 50 ms at
	// a time, answering its pulls and subscriptions in between. A push
	// that waits commits as soon as the lock goes, sooner than a client
	// backing off after a 503 would retry.
	LockTimeout time.Duration
	// PokeWindow bounds how long a canvas holds back a poke to coalesce it
	// with the commits that follow. The window grows with the number of
	// subscribers (PokeWindowPerSubscriber each), since every poke costs a
	// pull per subscriber: a canvas watched by few is poked at once, one
	// watched by thousands at most every PokeWindow.
	PokeWindow              time.Duration
	PokeWindowPerSubscriber time.Duration
	// Committers is how many statements writing canvas batches may run
	// at once; each takes the batches of every canvas waiting.
	Committers int
	// VersionCheck is how often the versions of the canvases with local
	// subscribers are read from the database, to poke for commits whose
	// notification never came (an instance killed between its commit and
	// its notification). 0: never.
	VersionCheck time.Duration
	// ChangeLog is how many row changes a canvas actor remembers for
	// incremental pulls; older cookies are answered from the database.
	ChangeLog int
	// PresenceTTL is how long a client's presence lasts without a refresh.
	PresenceTTL time.Duration
	// PresenceInterval is the shortest time between two deliveries of one
	// client's presence; the updates in between are coalesced (newest wins).
	PresenceInterval time.Duration
	// PurgeBatch is how many rows of each table one purge transaction of
	// a deleted canvas removes.
	PurgeBatch int
	// ClientGroupTTL is how long a client group may go unused before it is
	// deleted with its clients; TombstoneTTL how long a deleted node or
	// edge is kept for incremental pulls. GCInterval is how often the
	// collector runs (on one instance at a time); 0 turns it off.
	ClientGroupTTL time.Duration
	TombstoneTTL   time.Duration
	GCInterval     time.Duration
	Limits         canvas.Limits
	// Registry receives the system's metrics; nil keeps them in a
	// registry of their own (never Prometheus's global default).
	Registry prometheus.Registerer
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		Versioning:              store.PerCanvas,
		Batching:                true,
		Notify:                  NotifyCoalesced,
		NotifyChannel:           "canvasd_pokes",
		NotifyDelay:             5 * time.Millisecond,
		MaxQueuedPushes:         1000,
		MaxBatchPushes:          256,
		IdleTimeout:             2 * time.Minute,
		WriteTimeout:            10 * time.Second,
		LockTimeout:             2 * time.Second,
		ChangeLog:               8192,
		VersionCheck:            time.Second,
		Committers:              4,
		PokeWindow:              100 * time.Millisecond,
		PokeWindowPerSubscriber: time.Millisecond,
		PresenceTTL:             30 * time.Second,
		PresenceInterval:        time.Second / 30,
		PurgeBatch:              500,
		ClientGroupTTL:          30 * 24 * time.Hour,
		TombstoneTTL:            30 * 24 * time.Hour,
		GCInterval:              time.Hour,
		Limits:                  canvas.DefaultLimits(),
	}
}

// Validate checks c.
func (c Config) Validate() error {
	switch {
	case c.MaxQueuedPushes < 1:
		return errors.New("max queued pushes must be at least 1")
	case c.MaxBatchPushes < 1:
		return errors.New("max batch pushes must be at least 1")
	case c.IdleTimeout <= 0:
		return errors.New("idle timeout must be positive")
	case c.WriteTimeout <= 0:
		return errors.New("write timeout must be positive")
	case c.VersionCheck < 0:
		return errors.New("version check interval must not be negative (0: off)")
	case c.LockTimeout < 0:
		return errors.New("lock timeout must not be negative (0: wait up to the write timeout)")
	case c.PokeWindow < 0 || c.PokeWindowPerSubscriber < 0:
		return errors.New("poke windows must not be negative")
	case c.Committers < 1:
		return errors.New("committers must be at least 1")
	case c.ChangeLog < 2:
		return errors.New("change log must hold at least 2 entries")
	case c.NotifyChannel == "":
		return errors.New("notify channel must be set")
	case c.PresenceTTL < 100*time.Millisecond:
		return errors.New("presence ttl must be at least 100ms")
	case c.PresenceInterval < 0:
		return errors.New("presence interval must not be negative")
	case c.PurgeBatch < 1:
		return errors.New("purge batch must be at least 1")
	case c.ClientGroupTTL < time.Second || c.TombstoneTTL < time.Second:
		return errors.New("client group and tombstone ttls must be at least 1s")
	case c.GCInterval < 0:
		return errors.New("gc interval must not be negative (0: off)")
	}
	return nil
}

// ErrOverloaded is returned when a canvas has too many pushes waiting.
var ErrOverloaded = errors.New("canvas overloaded")

// ErrStopped is returned once the system is stopping.
var ErrStopped = errors.New("actor system stopped")

// System is canvasd's actor system.
type System struct {
	cfg       Config
	store     *store.Store
	log       *zap.Logger
	engine    *actor.Engine
	dir       *directory
	notifier  *notifier
	presence  *presenceHub
	committer *committer
	events    *actor.PID
	Metrics   Metrics

	// rejections samples the log of rejected mutations.
	rejections *sampledLog

	// decode turns a mutation into an op; a field so tests can make a
	// mutator misbehave.
	decode func(name string, args json.RawMessage, lim canvas.Limits) (canvas.Op, error)
	// notify sends one notification to other instances; a field so tests
	// can make it fail.
	notify func(ctx context.Context, channel, payload string) error

	stopping  chan struct{}
	purgeKick chan struct{}
	stopOnce  sync.Once
	drainOnce sync.Once
	startOnce sync.Once
	wg        sync.WaitGroup
	closed    atomic.Bool
	touches   *toucher // client groups in use, written for the collector
}

// New builds a System; Start runs it.
func New(cfg Config, st *store.Store, log *zap.Logger) (*System, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	engine, err := actor.NewEngine(actor.NewEngineConfig())
	if err != nil {
		return nil, fmt.Errorf("actor engine: %w", err)
	}
	s := &System{cfg: cfg, store: st, log: log, engine: engine, decode: canvas.Decode, notify: st.Notify, stopping: make(chan struct{}),
		rejections: newSampledLog(rejectionLogsPerSecond)}
	s.Metrics.init()
	s.touches = newToucher(min(cfg.ClientGroupTTL/8, time.Hour))
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if err := s.Metrics.register(reg); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	s.dir = newDirectory(s)
	s.notifier = newNotifier(s)
	s.presence = newPresenceHub(s)
	s.committer = newCommitter(s)
	return s, nil
}

// Start starts the event forwarder, the notifier and the passivation sweep.
func (s *System) Start(ctx context.Context) error {
	s.startOnce.Do(func() {
		s.events = s.engine.SpawnFunc(s.forwardEvent, "events", s.actorOpts()...)
		s.engine.Subscribe(s.events)
		s.notifier.start(ctx)
		s.notifier.startBus()
		s.committer.start(s.cfg.Committers)
		s.presence.start()
		s.startPurger()
		s.wg.Add(2)
		go s.sweepLoop()
		go s.touchLoop()
		if s.cfg.GCInterval > 0 {
			s.wg.Add(1)
			go s.gcLoop()
		}
	})
	return nil
}

// Ready reports whether pokes from other instances are being received.
func (s *System) Ready() bool { return s.notifier.listening.Load() }

// Stopping is closed when Stop begins; SSE streams end on it.
func (s *System) Stopping() <-chan struct{} { return s.stopping }

// Drain tells SSE streams to end (Stopping closes); pushes are still served
// so that in-flight requests can finish. Safe to call twice.
func (s *System) Drain() {
	s.drainOnce.Do(func() { close(s.stopping) })
}

// Stop drains and stops every actor and the notifier. Safe to call twice.
func (s *System) Stop() {
	s.stopOnce.Do(func() {
		s.Drain()
		s.closed.Store(true)
		s.wg.Wait() // sweep loop and purger
		s.presence.close()
		s.dir.stopAll()
		s.committer.stop()
		s.notifier.stopBus()
		s.notifier.stop()
		if s.events != nil {
			s.engine.Unsubscribe(s.events)
			<-s.engine.Poison(s.events).Done()
		}
	})
}

func (s *System) sweepLoop() {
	defer s.wg.Done()
	period := min(s.cfg.IdleTimeout/4, 10*time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case now := <-t.C:
			s.dir.sweep(now)
		}
	}
}

// actorOpts are the options of every actor: panics are caught by recoverer
// and never count towards hollywood's restart limit, which would otherwise
// take the whole process down.
func (s *System) actorOpts() []actor.OptFunc {
	return []actor.OptFunc{actor.WithMiddleware(s.recoverer), actor.WithMaxRestarts(1 << 30)}
}

func (s *System) recoverer(next actor.ReceiveFunc) actor.ReceiveFunc {
	return func(c *actor.Context) {
		defer func() {
			if v := recover(); v != nil {
				s.log.Error("actor panicked", zap.String("pid", c.PID().GetID()),
					zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
			}
		}()
		next(c)
	}
}

func (s *System) forwardEvent(c *actor.Context) {
	switch ev := c.Message().(type) {
	case actor.ActorRestartedEvent:
		s.log.Error("actor restarted", zap.String("pid", ev.PID.GetID()), zap.Any("reason", ev.Reason), zap.Int32("restarts", ev.Restarts))
	case actor.ActorMaxRestartsExceededEvent:
		s.log.Error("actor exceeded its restarts", zap.String("pid", ev.PID.GetID()))
	case actor.ActorDuplicateIdEvent:
		s.log.Error("actor spawned twice", zap.String("pid", ev.PID.GetID()))
	case actor.DeadLetterEvent:
		s.log.Debug("dead letter", zap.String("target", ev.Target.GetID()), zap.String("message", fmt.Sprintf("%T", ev.Message)))
	}
}

// Push hands a decoded push to its canvas actor and waits for the commit.
// It returns nil when the push's mutations are committed (or skipped),
// canvas.ErrNotFound, canvas.ErrClientStateNotFound, ErrOverloaded, or
// another error with nothing acknowledged: temporary by store.IsTemporary
// (the database unavailable, a timeout), else a bug.
func (s *System) Push(ctx context.Context, canvasID, userID string, req *canvas.PushRequest) error {
	if s.closed.Load() {
		return ErrStopped
	}
	e := s.dir.acquire(canvasID)
	if e == nil {
		return ErrStopped
	}
	s.touches.touch(canvasID, req.ClientGroupID, time.Now())
	if e.queued.Add(1) > int64(s.cfg.MaxQueuedPushes) {
		e.queued.Add(-1)
		s.dir.release(e)
		s.Metrics.Overloaded.Add(1)
		return ErrOverloaded
	}
	msg := &pushMsg{entry: e, userID: userID, req: req, reply: make(chan error, 1), enqueued: time.Now()}
	s.engine.Send(e.pid, msg)
	select {
	case err := <-msg.reply:
		return err
	case <-ctx.Done():
		// The actor still commits or drops it; the client will resend.
		return ctx.Err()
	}
}

// Subscription is a stream of pokes for one canvas.
type Subscription struct {
	// C carries the newest version the canvas reached; pokes that come
	// faster than the reader are coalesced into the newest.
	C <-chan int64
	// Version is the canvas version when the subscription began.
	Version int64
	// Presence is signalled when presence events wait in TakePresence.
	Presence <-chan struct{}
	// Ended is closed when the canvas is deleted: the stream must end.
	Ended <-chan struct{}

	ch       chan int64
	s        *System
	entry    *entry
	once     sync.Once
	clientID string // the client whose presence the stream carries, if any
	user     string
	presence presenceBox
	ended    chan struct{}
	endOnce  sync.Once
	// since is when the oldest commit the pending poke carries was made
	// (Unix nanoseconds, 0 when none), for the delivery lag.
	since atomic.Int64
}

// end ends the subscription's stream (its canvas was deleted).
func (sub *Subscription) end() { sub.endOnce.Do(func() { close(sub.ended) }) }

// deliver hands version to the stream without ever blocking: a poke the
// stream has not taken yet is replaced by the newer one. Only the canvas
// actor calls it, so after the slot is drained the send succeeds.
func (sub *Subscription) deliver(version int64) {
	for {
		select {
		case sub.ch <- version:
			return
		default:
		}
		select {
		case old := <-sub.ch:
			version = max(version, old)
		default:
		}
	}
}

// Written records that the newest poke taken from C has been written to
// the client: the lag from its oldest commit goes to the metrics.
func (sub *Subscription) Written() {
	if t := sub.since.Swap(0); t != 0 {
		sub.s.Metrics.PokeDelivery.Observe(float64(max(time.Now().UnixNano()-t, 0)) / 1e9)
	}
}

// Close ends the subscription. Safe to call twice.
func (sub *Subscription) Close() {
	sub.once.Do(func() {
		sub.s.presence.unsubscribe(sub)
		sub.s.engine.Send(sub.entry.pid, &unsubscribeMsg{sub: sub, entry: sub.entry})
		sub.s.Metrics.Subscribers.Add(-1)
		sub.entry.subscribers.Add(-1)
	})
}

// Subscribe starts a poke stream on canvasID.
func (s *System) Subscribe(ctx context.Context, canvasID string) (*Subscription, error) {
	return s.SubscribeClient(ctx, canvasID, "", "")
}

// SubscribeClient starts a poke and presence stream on canvasID for
// clientID of user: when the last such stream of the client closes, the
// client's presence goes (clientID "": a stream of no client).
func (s *System) SubscribeClient(ctx context.Context, canvasID, clientID, user string) (*Subscription, error) {
	if s.closed.Load() {
		return nil, ErrStopped
	}
	e := s.dir.acquire(canvasID)
	if e == nil {
		return nil, ErrStopped
	}
	ch := make(chan int64, 1)
	sub := &Subscription{C: ch, ch: ch, s: s, entry: e, clientID: clientID, user: user, ended: make(chan struct{})}
	sub.presence.signal = make(chan struct{}, 1)
	sub.Presence, sub.Ended = sub.presence.signal, sub.ended
	reply := make(chan subscribeReply, 1)
	s.engine.Send(e.pid, &subscribeMsg{sub: sub, reply: reply})
	var r subscribeReply
	select {
	case r = <-reply:
	case <-ctx.Done():
		r.err = ctx.Err()
		// The canvas actor may still add it; make sure it is removed.
		s.engine.Send(e.pid, &unsubscribeMsg{sub: sub})
	}
	if r.err != nil {
		s.dir.release(e)
		return nil, r.err
	}
	s.Metrics.Subscribers.Add(1)
	e.subscribers.Add(1)
	sub.Version = r.version
	s.presence.subscribe(sub)
	return sub, nil
}
