package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

type dirtyCanvas struct {
	id      string
	version int64
}

type (
	dirtyMsg       dirtyCanvas
	notifyFlushMsg struct{}
)

// maxPayload keeps a notification under PostgreSQL's 8000-byte limit.
const maxPayload = 7900

// notifier carries pokes between instances sharing a database. Outgoing, an
// actor coalesces the canvases committed in the last few milliseconds into
// one pg_notify sent outside every write transaction (NOTIFY takes a
// cluster-wide lock at commit). Incoming, a goroutine owns one dedicated
// LISTEN connection and pokes the local subscribers of each canvas named.
type notifier struct {
	s         *System
	log       *zap.Logger
	instance  string
	pid       *actor.PID
	bus       *actor.PID // presence and deletions: see bus.go
	listening atomic.Bool
	cancel    context.CancelFunc
	done      sync.WaitGroup
}

func newNotifier(s *System) *notifier {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &notifier{s: s, log: s.log.Named("notifier"), instance: hex.EncodeToString(b[:])}
}

func (n *notifier) start(ctx context.Context) {
	ctx, n.cancel = context.WithCancel(context.WithoutCancel(ctx))
	n.pid = n.s.engine.Spawn(func() actor.Receiver { return &notifyActor{n: n, dirty: map[string]int64{}} },
		"notifier", n.s.actorOpts()...)
	n.done.Add(1)
	go n.listen(ctx)
	if n.s.cfg.VersionCheck > 0 {
		n.done.Add(1)
		go n.watch(ctx)
	}
}

// watch reads, every VersionCheck, the versions of the canvases with
// local subscribers in one query, and tells each canvas its version: a
// commit whose notification was lost (its instance died between commit
// and notify, or the LISTEN connection dropped it) is poked all the same,
// at most one interval late. A canvas that knows its version already
// pokes nobody.
func (n *notifier) watch(ctx context.Context) {
	defer n.done.Done()
	t := time.NewTicker(n.s.cfg.VersionCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids := n.s.dir.subscribed()
		if len(ids) == 0 {
			continue
		}
		qctx, cancel := context.WithTimeout(ctx, n.s.cfg.VersionCheck+time.Second)
		versions, err := n.s.store.Versions(qctx, ids)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				n.log.Debug("version check failed", zap.Error(err))
			}
			continue
		}
		for id, v := range versions {
			if v > 0 {
				n.pokeLocal(id, v)
			}
		}
		for _, id := range ids {
			if _, ok := versions[id]; !ok {
				// Deleted, and the deletion's notification was lost:
				// end its streams all the same.
				n.s.canvasDeleted(id)
			}
		}
	}
}

func (n *notifier) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.done.Wait()
	<-n.s.engine.Poison(n.pid).Done()
}

// dirty records that canvas id committed version.
func (n *notifier) dirty(id string, version int64) {
	n.s.engine.Send(n.pid, dirtyMsg{id: id, version: version})
}

// notifyActor is the outgoing half of the notifier.
type notifyActor struct {
	n         *notifier
	dirty     map[string]int64
	scheduled bool
	// backoff is the wait before the next attempt after a failed send (0
	// while sends succeed).
	backoff time.Duration
}

// Bounds of the wait between attempts to send a notification that failed.
const (
	notifyRetryMin = 20 * time.Millisecond
	notifyRetryMax = 2 * time.Second
)

func (a *notifyActor) Receive(c *actor.Context) {
	switch msg := c.Message().(type) {
	case dirtyMsg:
		a.dirty[msg.id] = max(a.dirty[msg.id], msg.version)
		a.schedule(c, a.n.s.cfg.NotifyDelay)
	case notifyFlushMsg:
		a.scheduled = false
		if err := a.flush(5 * time.Second); err != nil {
			// Every canvas not known to be announced is still dirty: try
			// again until it is sent. A failed send may still have gone
			// out; sending it twice only costs other instances a pull.
			a.backoff = min(max(a.backoff*2, notifyRetryMin), notifyRetryMax)
			a.n.log.Warn("pg_notify failed, retrying", zap.Int("canvases", len(a.dirty)),
				zap.Duration("retry_in", a.backoff), zap.Error(err))
			a.schedule(c, a.backoff)
		} else {
			a.backoff = 0
		}
	case actor.Stopped:
		// Last chance: a few quick attempts, then other instances' clients
		// catch up at their next pull.
		for attempt := range 3 {
			err := a.flush(time.Second)
			if err == nil {
				break
			}
			if attempt == 2 {
				a.n.log.Warn("pg_notify failed at shutdown", zap.Int("canvases", len(a.dirty)), zap.Error(err))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// schedule arranges a flush after wait, unless one is already due (while
// retrying, that one waits out the backoff).
func (a *notifyActor) schedule(c *actor.Context, wait time.Duration) {
	if a.scheduled {
		return
	}
	a.scheduled = true
	pid, engine := c.PID(), c.Engine()
	time.AfterFunc(wait, func() { engine.Send(pid, notifyFlushMsg{}) })
}

// flush announces the dirty canvases. A canvas leaves the dirty set only
// once a notification naming it was sent; on error the rest stay dirty.
func (a *notifyActor) flush(timeout time.Duration) error {
	if len(a.dirty) == 0 {
		return nil
	}
	batch := make([]dirtyCanvas, 0, len(a.dirty))
	for id, v := range a.dirty {
		batch = append(batch, dirtyCanvas{id, v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for len(batch) > 0 {
		payload, rest := encodeChunk(a.n.instance, batch)
		if err := a.n.s.notify(ctx, a.n.s.cfg.NotifyChannel, payload); err != nil {
			return err
		}
		a.n.s.Metrics.NotifySent.Add(1)
		for _, d := range batch[:len(batch)-len(rest)] {
			delete(a.dirty, d.id)
		}
		batch = rest
	}
	return nil
}

// encodeNotification encodes "<instance> <canvas>:<version> ... t=<sent>",
// sent in Unix microseconds (decoders that predate it skip the field).
func encodeNotification(instance string, batch []dirtyCanvas) string {
	payload, _ := encodeChunk(instance, batch)
	return payload
}

func encodeChunk(instance string, batch []dirtyCanvas) (string, []dirtyCanvas) {
	var b strings.Builder
	b.WriteString(instance)
	for i, d := range batch {
		if b.Len()+len(d.id)+22+sentField > maxPayload && i > 0 {
			writeSent(&b)
			return b.String(), batch[i:]
		}
		b.WriteByte(' ')
		b.WriteString(d.id)
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(d.version, 10))
	}
	writeSent(&b)
	return b.String(), nil
}

// sentField is the room the send time takes: " t=" and microseconds.
const sentField = 3 + 20

// writeSent appends the send time, from which receivers measure the lag.
func writeSent(b *strings.Builder) {
	b.WriteString(" t=")
	b.WriteString(strconv.FormatInt(time.Now().UnixMicro(), 10))
}

// notificationSent returns when a notification was sent, if it says.
func notificationSent(payload string) (time.Time, bool) {
	i := strings.LastIndex(payload, " t=")
	if i < 0 {
		return time.Time{}, false
	}
	us, err := strconv.ParseInt(payload[i+3:], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMicro(us), true
}

// decodeNotification is the inverse of encodeNotification.
func decodeNotification(payload string) (instance string, batch []dirtyCanvas) {
	fields := strings.Fields(payload)
	if len(fields) == 0 {
		return "", nil
	}
	for _, f := range fields[1:] {
		id, v, ok := strings.Cut(f, ":")
		version, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			continue
		}
		batch = append(batch, dirtyCanvas{id, version})
	}
	return fields[0], batch
}

// listen keeps one LISTEN connection up until ctx ends.
func (n *notifier) listen(ctx context.Context) {
	defer n.done.Done()
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		conn, err := n.connect(ctx)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("LISTEN connection failed", zap.Error(err), zap.Duration("retry_in", backoff))
			}
		} else {
			backoff = 100 * time.Millisecond
			n.listening.Store(true)
			if !first {
				// Notifications sent while we were away are lost: poke
				// every local subscriber so its client pulls.
				n.pokeAll()
			}
			first = false
			err = n.receive(ctx, conn)
			n.listening.Store(false)
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Close(closeCtx)
			cancel()
			if ctx.Err() == nil {
				n.log.Warn("LISTEN connection lost", zap.Error(err))
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (n *notifier) connect(ctx context.Context) (*pgx.Conn, error) {
	pc, err := n.s.store.Pool().Acquire(ctx)
	if err != nil {
		return nil, err
	}
	conn := pc.Hijack()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{n.s.cfg.NotifyChannel}.Sanitize()); err != nil {
		_ = conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

func (n *notifier) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if isEnvelope(note.Payload) {
			n.receiveEnvelope(note.Payload)
			continue
		}
		instance, batch := decodeNotification(note.Payload)
		if instance == n.instance {
			continue
		}
		n.s.Metrics.NotifyReceived.Add(1)
		if sent, ok := notificationSent(note.Payload); ok {
			n.s.Metrics.NotifyLag.Observe(max(time.Since(sent), 0).Seconds())
		}
		for _, d := range batch {
			n.pokeLocal(d.id, d.version)
		}
	}
}

// pokeLocal tells canvas id, if it is active here, of a remote commit.
func (n *notifier) pokeLocal(id string, version int64) {
	if e := n.s.dir.acquireExisting(id); e != nil {
		n.s.engine.Send(e.pid, &remotePokeMsg{entry: e, version: version})
	}
}

func (n *notifier) pokeAll() {
	for _, id := range n.s.dir.active() {
		n.pokeLocal(id, 0)
	}
}
