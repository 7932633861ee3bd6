package actors

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/anthdm/hollywood/actor"
	"go.uber.org/zap"
)

// Besides pokes, two kinds of messages travel between instances on the
// same path, the notifier's channel: presence updates and canvas
// deletions. They go out through publish (pg_notify on the notify
// channel) and come in through the notifier's LISTEN connection, which
// hands them to receiveEnvelope; a bus that replaces LISTEN/NOTIFY
// replaces those two ends and carries all three kinds.
//
// Poke notifications keep their compact text form; these messages are a
// JSON envelope (which a poke payload, starting with the instance id,
// never is), coalesced for NotifyDelay like pokes and packed into
// payloads under PostgreSQL's 8000-byte limit. A presence state is at
// most 2 KiB, so several fit in one notification.

// envelope is one notification of presence updates and deletions.
type envelope struct {
	Instance string         `json:"i"`
	Presence []wirePresence `json:"p,omitempty"`
	Deleted  []string       `json:"d,omitempty"`
}

type wirePresence struct {
	Canvas string          `json:"c"`
	Client string          `json:"k"`
	User   string          `json:"u,omitempty"`
	State  json.RawMessage `json:"s,omitempty"` // absent: the client left
}

type (
	presenceOutMsg wirePresence
	deletedOutMsg  string
	busFlushMsg    struct{}
)

type presenceKey struct{ canvas, client string }

// busActor is the outgoing half for presence and deletions.
type busActor struct {
	n         *notifier
	presence  map[presenceKey]wirePresence
	order     []presenceKey
	deleted   []string
	scheduled bool
}

func (n *notifier) startBus() {
	n.bus = n.s.engine.Spawn(func() actor.Receiver {
		return &busActor{n: n, presence: map[presenceKey]wirePresence{}}
	}, "bus", n.s.actorOpts()...)
}

func (n *notifier) stopBus() {
	if n.bus != nil {
		<-n.s.engine.Poison(n.bus).Done()
	}
}

// publishPresence sends a client's presence (state nil: gone) to the
// other instances; a newer update of the same client not yet sent
// replaces it.
func (n *notifier) publishPresence(canvasID, clientID, user string, state json.RawMessage) {
	n.s.engine.Send(n.bus, presenceOutMsg{Canvas: canvasID, Client: clientID, User: user, State: state})
}

// publishDeleted tells the other instances that canvasID was deleted.
func (n *notifier) publishDeleted(canvasID string) {
	n.s.engine.Send(n.bus, deletedOutMsg(canvasID))
}

func (a *busActor) Receive(c *actor.Context) {
	switch msg := c.Message().(type) {
	case presenceOutMsg:
		k := presenceKey{msg.Canvas, msg.Client}
		if _, ok := a.presence[k]; !ok {
			a.order = append(a.order, k)
		}
		a.presence[k] = wirePresence(msg)
		a.schedule(c)
	case deletedOutMsg:
		a.deleted = append(a.deleted, string(msg))
		a.schedule(c)
	case busFlushMsg:
		a.scheduled = false
		a.flush()
	case actor.Stopped:
		a.flush()
	}
}

func (a *busActor) schedule(c *actor.Context) {
	if a.scheduled {
		return
	}
	a.scheduled = true
	pid, engine := c.PID(), c.Engine()
	time.AfterFunc(a.n.s.cfg.NotifyDelay, func() { engine.Send(pid, busFlushMsg{}) })
}

func (a *busActor) flush() {
	if len(a.order) == 0 && len(a.deleted) == 0 {
		return
	}
	items := make([]wirePresence, 0, len(a.order))
	for _, k := range a.order {
		items = append(items, a.presence[k])
	}
	clear(a.presence)
	a.order = a.order[:0]
	deleted := a.deleted
	a.deleted = nil
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, payload := range packEnvelopes(a.n.instance, items, deleted) {
		if err := a.n.publish(ctx, payload); err != nil {
			// Presence is refreshed by its clients and expires by
			// itself; another instance that missed a deletion finds
			// the canvas gone at its next database read.
			a.n.log.Warn("sending presence and deletions failed", zap.Error(err))
			return
		}
		a.n.s.Metrics.NotifySent.Add(1)
	}
}

// packEnvelopes packs items and deleted into as few payloads under
// maxPayload as it can.
func packEnvelopes(instance string, items []wirePresence, deleted []string) []string {
	var (
		out  []string
		cur  = envelope{Instance: instance}
		size = 0
	)
	base := len(instance) + 32
	emit := func() {
		if len(cur.Presence) == 0 && len(cur.Deleted) == 0 {
			return
		}
		out = append(out, string(marshalJSON(cur)))
		cur = envelope{Instance: instance}
		size = 0
	}
	for _, id := range deleted {
		if base+size+len(id)+3 > maxPayload {
			emit()
		}
		cur.Deleted = append(cur.Deleted, id)
		size += len(id) + 3
	}
	for _, p := range items {
		b := marshalJSON(p)
		if base+size+len(b)+1 > maxPayload {
			emit()
		}
		cur.Presence = append(cur.Presence, p)
		size += len(b) + 1
	}
	emit()
	return out
}

// marshalJSON encodes v without escaping <, > and & (which would make a
// 2 KiB presence state up to six times longer).
func marshalJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// publish sends payload to every instance listening on the channel, the
// way pokes go.
func (n *notifier) publish(ctx context.Context, payload string) error {
	return n.s.notify(ctx, n.s.cfg.NotifyChannel, payload)
}

// isEnvelope tells presence and deletion payloads from pokes.
func isEnvelope(payload string) bool { return strings.HasPrefix(payload, "{") }

// receiveEnvelope applies what another instance sent.
func (n *notifier) receiveEnvelope(payload string) {
	var env envelope
	if err := json.Unmarshal([]byte(payload), &env); err != nil {
		n.log.Warn("undecodable notification", zap.Error(err))
		return
	}
	if env.Instance == n.instance {
		return
	}
	n.s.Metrics.NotifyReceived.Add(1)
	for _, id := range env.Deleted {
		n.s.canvasDeleted(id)
	}
	for _, p := range env.Presence {
		var state json.RawMessage
		if len(p.State) > 0 && string(p.State) != "null" {
			state = p.State
		}
		_ = n.s.presence.update(p.Canvas, p.Client, p.User, state, false)
	}
}
