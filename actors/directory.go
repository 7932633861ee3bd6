package actors

import (
	"maps"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anthdm/hollywood/actor"
)

// entry is one activation of a canvas actor. refs counts the messages in
// flight to it (pushes awaiting their commit, pokes) and the open
// subscriptions; an entry is passivated only at refs == 0, under the
// directory lock, so no message can reach an actor that is going away.
type entry struct {
	canvasID string
	pid      *actor.PID
	refs     int       // guarded by directory.mu
	lastUsed time.Time // guarded by directory.mu
	queued   atomic.Int64
	// subscribers counts the open event streams of the canvas.
	subscribers atomic.Int32
	// missing is set by the actor when its canvas does not exist: the
	// entry then goes at once, so requests for made-up ids cannot fill
	// memory with actors until the idle timeout.
	missing atomic.Bool
}

// directory activates canvas actors on demand and passivates idle ones.
// Every activation gets a fresh actor id: hollywood v1.0.5 hands back the
// dying actor when an id is spawned again right after Poison, so reusing
// ids would race with passivation.
type directory struct {
	s       *System
	mu      sync.Mutex
	entries map[string]*entry
	closed  bool
	seq     atomic.Uint64
	// passivated counts passivations since memory was last given back.
	passivated int
}

func newDirectory(s *System) *directory {
	return &directory{s: s, entries: make(map[string]*entry)}
}

func (d *directory) nextID() string { return strconv.FormatUint(d.seq.Add(1), 36) }

// acquire returns the live entry of canvasID, activating it if needed, with
// a reference the caller must hand back through release. nil once stopped.
func (d *directory) acquire(canvasID string) *entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	e, ok := d.entries[canvasID]
	if !ok {
		e = &entry{canvasID: canvasID}
		e.pid = d.s.engine.Spawn(newCanvasActor(d.s, canvasID, e), "canvas",
			append(d.s.actorOpts(), actor.WithID(canvasID+"."+d.nextID()), actor.WithInboxSize(256))...)
		d.entries[canvasID] = e
		d.s.Metrics.ActiveCanvases.Add(1)
	}
	e.refs++
	return e
}

// acquireExisting is acquire without activation: nil if canvasID is not
// active here.
func (d *directory) acquireExisting(canvasID string) *entry {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[canvasID]
	if !ok || d.closed {
		return nil
	}
	e.refs++
	return e
}

// active returns the ids of every active canvas.
func (d *directory) active() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]string, 0, len(d.entries))
	for id := range d.entries {
		ids = append(ids, id)
	}
	return ids
}

// subscribed returns the ids of the active canvases with event streams.
func (d *directory) subscribed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for id, e := range d.entries {
		if e.subscribers.Load() > 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

func (d *directory) release(e *entry) {
	d.mu.Lock()
	e.refs--
	e.lastUsed = time.Now()
	drop := e.refs == 0 && e.missing.Load() && d.entries[e.canvasID] == e
	if drop {
		delete(d.entries, e.canvasID)
	}
	d.mu.Unlock()
	if drop {
		d.s.engine.Poison(e.pid)
		d.s.Metrics.ActiveCanvases.Add(-1)
	}
}

// sweep passivates the entries unused for the idle timeout.
func (d *directory) sweep(now time.Time) {
	var idle []*entry
	d.mu.Lock()
	for id, e := range d.entries {
		if e.refs == 0 && now.Sub(e.lastUsed) >= d.s.cfg.IdleTimeout {
			delete(d.entries, id)
			idle = append(idle, e)
		}
	}
	d.passivated += len(idle)
	freeMemory := d.passivated >= freeAfter
	if freeMemory {
		// Go maps never shrink: copy the survivors into a map their size.
		d.entries = maps.Clone(d.entries)
		d.passivated = 0
	}
	d.mu.Unlock()
	for _, e := range idle {
		d.s.engine.Poison(e.pid)
		d.s.Metrics.ActiveCanvases.Add(-1)
	}
	if freeMemory {
		// Passivations free much memory; without allocation to drive the
		// GC, the runtime would keep it. Give it back once the actors are
		// gone.
		time.AfterFunc(time.Second, debug.FreeOSMemory)
	}
}

// freeAfter is how many passivations make it worth returning memory to
// the operating system.
const freeAfter = 1000

// stopAll poisons every canvas actor and waits for each to finish the work
// in its mailbox.
func (d *directory) stopAll() {
	d.mu.Lock()
	d.closed = true
	entries := d.entries
	d.entries = map[string]*entry{}
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-d.s.engine.Poison(e.pid).Done()
		}()
	}
	wg.Wait()
	d.s.Metrics.ActiveCanvases.Store(0)
}
