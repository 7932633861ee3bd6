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
}

func (a *notifyActor) Receive(c *actor.Context) {
	switch msg := c.Message().(type) {
	case dirtyMsg:
		a.dirty[msg.id] = max(a.dirty[msg.id], msg.version)
		if !a.scheduled {
			a.scheduled = true
			pid, engine := c.PID(), c.Engine()
			time.AfterFunc(a.n.s.cfg.NotifyDelay, func() { engine.Send(pid, notifyFlushMsg{}) })
		}
	case notifyFlushMsg:
		a.scheduled = false
		a.flush()
	case actor.Stopped:
		a.flush()
	}
}

func (a *notifyActor) flush() {
	if len(a.dirty) == 0 {
		return
	}
	batch := make([]dirtyCanvas, 0, len(a.dirty))
	for id, v := range a.dirty {
		batch = append(batch, dirtyCanvas{id, v})
	}
	clear(a.dirty)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for len(batch) > 0 {
		payload, rest := encodeChunk(a.n.instance, batch)
		batch = rest
		if _, err := a.n.s.store.Pool().Exec(ctx, `SELECT pg_notify($1, $2)`, a.n.s.cfg.NotifyChannel, payload); err != nil {
			// Other instances miss this poke; their clients catch up at
			// their next pull. Nothing here is lost.
			a.n.log.Warn("pg_notify failed", zap.Error(err))
			return
		}
		a.n.s.Metrics.NotifySent.Add(1)
	}
}

// encodeNotification encodes "<instance> <canvas>:<version> ...".
func encodeNotification(instance string, batch []dirtyCanvas) string {
	payload, _ := encodeChunk(instance, batch)
	return payload
}

func encodeChunk(instance string, batch []dirtyCanvas) (string, []dirtyCanvas) {
	var b strings.Builder
	b.WriteString(instance)
	for i, d := range batch {
		if b.Len()+len(d.id)+22 > maxPayload && i > 0 {
			return b.String(), batch[i:]
		}
		b.WriteByte(' ')
		b.WriteString(d.id)
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(d.version, 10))
	}
	return b.String(), nil
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
		instance, batch := decodeNotification(note.Payload)
		if instance == n.instance {
			continue
		}
		n.s.Metrics.NotifyReceived.Add(1)
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
