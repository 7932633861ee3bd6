package actors

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// Presence (cursors, selections) is ephemeral: it is never versioned and
// never written to the database. Each instance keeps the presence of every
// canvas in memory, as posted to it or heard from other instances over the
// bus, and forgets a client's state when the client posts null, when the
// client's event stream closes, or when the TTL passes without a refresh.
// One client's updates are coalesced: the newest wins, and at most one per
// PresenceInterval is delivered (and sent to other instances).

// ErrPresenceTaken is returned when a client id's presence on a canvas
// belongs to another user.
var ErrPresenceTaken = errors.New("client id is in use by another user on this canvas")

// presenceHub holds the presence of every canvas this instance knows of,
// and the streams to deliver it to.
type presenceHub struct {
	s        *System
	mu       sync.Mutex
	canvases map[string]*canvasPresence
	// known holds the canvases seen to exist, until when, so that posts
	// skip the canvas actor; drops counts deletions, so that a check that
	// raced with one does not mark its canvas.
	known map[string]time.Time
	drops uint64
	stop  chan struct{}
	done  sync.WaitGroup
	once  sync.Once
}

type canvasPresence struct {
	clients map[string]*presenceClient
	subs    map[*Subscription]struct{}
	// streams counts this instance's open streams per client id.
	streams map[string]int
}

type presenceClient struct {
	user  string
	state json.RawMessage // nil: gone
	data  []byte          // the event's data line for state
	// expires is when state is forgotten without a refresh; a gone
	// client is kept until then (briefly) so that its rate holds.
	expires  time.Time
	lastSent time.Time
	dirty    bool // state changed since it was last delivered
	local    bool // the undelivered state was posted here (so goes to other instances)
	timer    bool // a delivery is scheduled
}

// presenceEvent is the data of an `event: presence`.
type presenceEvent struct {
	Canvas   string          `json:"canvas"`
	ClientID string          `json:"clientID"`
	User     string          `json:"user"`
	State    json.RawMessage `json:"state"`
}

func newPresenceHub(s *System) *presenceHub {
	return &presenceHub{s: s, canvases: make(map[string]*canvasPresence), known: make(map[string]time.Time), stop: make(chan struct{})}
}

func (h *presenceHub) start() {
	h.done.Add(1)
	go h.sweepLoop()
}

func (h *presenceHub) close() {
	h.once.Do(func() { close(h.stop) })
	h.done.Wait()
}

func (h *presenceHub) canvas(id string) *canvasPresence {
	cp := h.canvases[id]
	if cp == nil {
		cp = &canvasPresence{clients: map[string]*presenceClient{}, subs: map[*Subscription]struct{}{}, streams: map[string]int{}}
		h.canvases[id] = cp
	}
	return cp
}

// update records a client's state (nil: gone) and delivers it, at once or
// when the client's interval ends. local updates also go to the other
// instances. It fails with ErrPresenceTaken when another user holds the
// client id.
func (h *presenceHub) update(canvasID, clientID, user string, state json.RawMessage, local bool) error {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	cp := h.canvas(canvasID)
	pc := cp.clients[clientID]
	if pc == nil {
		if state == nil {
			return nil // nothing to take away
		}
		pc = &presenceClient{}
		cp.clients[clientID] = pc
	} else if local && pc.state != nil && pc.user != user {
		return ErrPresenceTaken
	}
	pc.user, pc.state = user, state
	pc.data = marshalJSON(presenceEvent{Canvas: canvasID, ClientID: clientID, User: user, State: state})
	pc.expires = now.Add(h.s.cfg.PresenceTTL)
	pc.dirty, pc.local = true, local
	h.schedule(canvasID, clientID, cp, pc, now)
	return nil
}

// schedule delivers pc now if its interval has passed, else once it has.
// Called with h.mu held.
func (h *presenceHub) schedule(canvasID, clientID string, cp *canvasPresence, pc *presenceClient, now time.Time) {
	if pc.timer {
		return
	}
	wait := h.s.cfg.PresenceInterval - now.Sub(pc.lastSent)
	if wait <= 0 {
		h.deliver(canvasID, clientID, cp, pc, now)
		return
	}
	pc.timer = true
	time.AfterFunc(wait, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		pc.timer = false
		if h.canvases[canvasID] == cp && cp.clients[clientID] == pc && pc.dirty {
			h.deliver(canvasID, clientID, cp, pc, time.Now())
		}
	})
}

// deliver hands pc's state to every local stream of the canvas and, for
// local updates, to the other instances. Called with h.mu held.
func (h *presenceHub) deliver(canvasID, clientID string, cp *canvasPresence, pc *presenceClient, now time.Time) {
	pc.dirty = false
	pc.lastSent = now
	for sub := range cp.subs {
		sub.offerPresence(clientID, pc.data)
	}
	h.s.Metrics.PresenceDelivered.Add(int64(len(cp.subs)))
	if pc.local {
		pc.local = false
		h.s.notifier.publishPresence(canvasID, clientID, pc.user, pc.state)
	}
}

// subscribe adds sub to its canvas's presence and hands it the canvas's
// current presence.
func (h *presenceHub) subscribe(sub *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cp := h.canvas(sub.entry.canvasID)
	cp.subs[sub] = struct{}{}
	if sub.clientID != "" {
		cp.streams[sub.clientID]++
	}
	for id, pc := range cp.clients {
		if pc.state != nil {
			sub.offerPresence(id, pc.data)
		}
	}
}

// unsubscribe removes sub; the last stream of a client takes the client's
// presence away (if it is that client's user's).
func (h *presenceHub) unsubscribe(sub *Subscription) {
	id := sub.entry.canvasID
	h.mu.Lock()
	cp := h.canvases[id]
	if cp == nil {
		h.mu.Unlock()
		return
	}
	delete(cp.subs, sub)
	leave := false
	if sub.clientID != "" {
		cp.streams[sub.clientID]--
		if cp.streams[sub.clientID] <= 0 {
			delete(cp.streams, sub.clientID)
			pc := cp.clients[sub.clientID]
			leave = pc != nil && pc.state != nil && pc.user == sub.user
		}
	}
	h.mu.Unlock()
	if leave {
		_ = h.update(id, sub.clientID, sub.user, nil, true)
	}
}

// drop forgets a deleted canvas's presence.
func (h *presenceHub) drop(canvasID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.known, canvasID)
	h.drops++
	if cp := h.canvases[canvasID]; cp != nil {
		// Streams still open are ended by the canvas actor; they are
		// removed from cp as they close.
		clear(cp.clients)
	}
}

// sweepLoop forgets states whose TTL passed, telling the streams, and
// canvases with nothing left. Every instance expires what it holds by
// itself: all of them heard the same updates.
func (h *presenceHub) sweepLoop() {
	defer h.done.Done()
	period := min(max(h.s.cfg.PresenceTTL/10, 10*time.Millisecond), time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case now := <-t.C:
			h.sweep(now)
		}
	}
}

func (h *presenceHub) sweep(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for canvasID, cp := range h.canvases {
		for clientID, pc := range cp.clients {
			if now.Before(pc.expires) || pc.timer {
				continue
			}
			if pc.state == nil {
				delete(cp.clients, clientID)
				continue
			}
			pc.state = nil
			pc.data = marshalJSON(presenceEvent{Canvas: canvasID, ClientID: clientID, User: pc.user})
			pc.expires = now.Add(h.s.cfg.PresenceInterval)
			pc.local = false
			h.deliver(canvasID, clientID, cp, pc, now)
		}
		if len(cp.clients) == 0 && len(cp.subs) == 0 && len(cp.streams) == 0 {
			delete(h.canvases, canvasID)
		}
	}
	for id, until := range h.known {
		if h.canvases[id] == nil || now.After(until) {
			delete(h.known, id)
		}
	}
}

// knownFor is how long a canvas seen to exist is taken to exist without
// asking again (a deletion whose notification was lost is noticed then).
const knownFor = time.Minute

// isKnown reports whether canvasID was seen to exist, and the deletion
// count to hand to markKnown.
func (h *presenceHub) isKnown(canvasID string) (bool, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Now().Before(h.known[canvasID]), h.drops
}

// markKnown records that canvasID exists, unless a canvas was deleted
// since drops was read.
func (h *presenceHub) markKnown(canvasID string, drops uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.drops == drops {
		h.known[canvasID] = time.Now().Add(knownFor)
	}
}

// presenceBox is a stream's presence mailbox: per client the newest event
// not yet written, so a slow stream gets the newest state of each client
// rather than a backlog.
type presenceBox struct {
	mu      sync.Mutex
	pending map[string][]byte
	order   []string
	signal  chan struct{}
}

func (sub *Subscription) offerPresence(clientID string, data []byte) {
	b := &sub.presence
	b.mu.Lock()
	if b.pending == nil {
		b.pending = make(map[string][]byte)
	}
	if _, ok := b.pending[clientID]; !ok {
		b.order = append(b.order, clientID)
	}
	b.pending[clientID] = data
	b.mu.Unlock()
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

// TakePresence returns the presence events waiting for the stream (the
// data of each), oldest client first, and empties the mailbox.
func (sub *Subscription) TakePresence() [][]byte {
	b := &sub.presence
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.order) == 0 {
		return nil
	}
	out := make([][]byte, len(b.order))
	for i, id := range b.order {
		out[i] = b.pending[id]
	}
	clear(b.pending)
	b.order = b.order[:0]
	return out
}

// Presence posts a client's presence on canvasID: state is a JSON object,
// or nil when the client leaves. It returns canvas.ErrNotFound for a
// canvas that does not exist (checked at most once a minute per canvas,
// and then without the database while the canvas actor is active) and
// ErrPresenceTaken when another user holds clientID.
func (s *System) Presence(ctx context.Context, canvasID, clientID, user string, state json.RawMessage) error {
	if s.closed.Load() {
		return ErrStopped
	}
	known, drops := s.presence.isKnown(canvasID)
	if !known {
		e := s.dir.acquire(canvasID)
		if e == nil {
			return ErrStopped
		}
		reply := make(chan error, 1)
		s.engine.Send(e.pid, &existsMsg{entry: e, reply: reply})
		select {
		case err := <-reply:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		s.presence.markKnown(canvasID, drops)
	}
	return s.presence.update(canvasID, clientID, user, state, true)
}

// existsMsg asks a canvas actor whether its canvas exists.
type existsMsg struct {
	entry *entry
	reply chan error
}
