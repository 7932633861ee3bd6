package actors

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/anthdm/hollywood/actor"
	"go.uber.org/zap"

	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
)

// ErrPullFromStore tells the caller to answer a pull from the database:
// the canvas actor cannot place the cookie in the history it holds (older
// than its change log, or written by another instance it has not caught up
// with).
var ErrPullFromStore = errors.New("pull must be read from the store")

// logEntry records that a row changed at a version.
type logEntry struct {
	version int64
	key     changeKey
}

// Patch is the part of a pull response shared by every client that pulls
// from the same version: the rows changed since. Encode it once.
type Patch struct {
	// Full is set for a pull from a null cookie: the patch starts with clear.
	Full    bool
	Changes []canvas.Change

	once sync.Once
	json []byte
}

// JSON returns the patch array encoded, computed once however many pulls
// share it.
func (p *Patch) JSON(encode func(full bool, changes []canvas.Change) []byte) []byte {
	p.once.Do(func() { p.json = encode(p.Full, p.Changes) })
	return p.json
}

// PullResult is a pull answered from a canvas actor's memory.
type PullResult struct {
	Cookie                canvas.Cookie
	LastMutationIDChanges map[string]int64
	Patch                 *Patch
}

type pullMsg struct {
	entry  *entry
	group  string
	userID string
	cookie *canvas.Cookie // nil for a first pull
	reply  chan pullReply
}

type pullReply struct {
	res *PullResult
	err error
}

// Pull answers a pull from the canvas actor's memory, or returns
// ErrPullFromStore, a protocol error, or canvas.ErrNotFound.
func (s *System) Pull(ctx context.Context, canvasID, userID, group string, cookie *canvas.Cookie) (*PullResult, error) {
	if s.closed.Load() {
		return nil, ErrStopped
	}
	e := s.dir.acquire(canvasID)
	if e == nil {
		return nil, ErrStopped
	}
	s.touches.touch(canvasID, group, time.Now())
	msg := &pullMsg{entry: e, group: group, userID: userID, cookie: cookie, reply: make(chan pullReply, 1)}
	s.engine.Send(e.pid, msg)
	select {
	case r := <-msg.reply:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pullFlushMsg is sent by a canvas actor to itself behind the pulls already
// in its mailbox, so that one freshness check serves all of them.
type pullFlushMsg struct{}

// checkInterval is the shortest time between two version checks of a
// canvas. A herd of clients poked at once pulls over tens of milliseconds;
// pulls that come within the interval wait for one shared check instead of
// a check each. A canvas pulled less often is answered at once.
const checkInterval = 10 * time.Millisecond

// schedulePulls arranges for the waiting pulls to be answered: right
// behind the messages already in the mailbox, or when the check interval
// since the last check ends.
func (a *canvasActor) schedulePulls(c *actor.Context) {
	if a.pullScheduled {
		return
	}
	a.pullScheduled = true
	if wait := checkInterval - time.Since(a.lastCheck); wait > 0 {
		pid, engine := c.PID(), c.Engine()
		time.AfterFunc(wait, func() { engine.Send(pid, pullFlushMsg{}) })
		return
	}
	c.Send(c.PID(), pullFlushMsg{})
}

// flushPulls answers the waiting pulls. One query first checks that memory
// holds the canvas's current version (another instance may have written
// it); if not, the rows written since are read in. Every pull that arrived
// before the check sees every commit made before it.
func (a *canvasActor) flushPulls() {
	pulls := a.pendingPulls
	a.pendingPulls = nil
	a.lastCheck = time.Now()
	err := a.refresh()
	if errors.Is(err, canvas.ErrNotFound) {
		a.entry.missing.Store(true)
	}
	for _, msg := range pulls {
		var r pullReply
		if err != nil {
			r.err = err
		} else {
			r.res, r.err = a.pullFromMemory(msg)
		}
		msg.reply <- r
		a.s.dir.release(msg.entry)
	}
}

// refresh brings memory to the database's current version of the canvas.
func (a *canvasActor) refresh() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.s.cfg.WriteTimeout)
	defer cancel()
	if !a.loaded {
		return a.load(ctx)
	}
	current, err := a.s.store.Version(ctx, a.id)
	if err != nil || current == a.version {
		return err
	}
	snap, err := a.s.store.ReadSince(ctx, a.id, a.version)
	if err != nil {
		return err
	}
	if snap.Canvas.Version < a.version {
		return a.load(ctx) // the database went back (restored?): start over
	}
	if snap.Canvas.TombstoneHorizon > a.version || snap.Canvas.GroupsPurgedVersion > a.version {
		// Tombstones written since were purged, or client groups were
		// deleted: the rows read miss deletions, so read everything.
		return a.load(ctx)
	}
	a.logger.Debug("read in another instance's writes", zap.Int64("from", a.version), zap.Int64("to", snap.Canvas.Version))
	a.applyCaughtUp(snap, snap.Canvas.Version)
	return nil
}

// applyCaughtUp brings memory up to snap, the rows written after a.version
// by another instance up to version, and logs them for incremental pulls.
func (a *canvasActor) applyCaughtUp(snap *store.Snapshot, version int64) {
	for _, ch := range snap.Changes {
		a.state.Load(ch)
	}
	for id, cl := range snap.Clients {
		a.setClient(id, cl)
	}
	slices.SortFunc(snap.Changes, func(x, y canvas.Change) int { return cmp.Compare(x.Version, y.Version) })
	for _, c := range snap.Changes {
		a.log = append(a.log, logEntry{version: c.Version, key: changeKey{c.Kind, c.ID}})
	}
	a.trimLog()
	a.version = version
	a.seen = max(a.seen, a.version)
}

func (a *canvasActor) pullFromMemory(msg *pullMsg) (*PullResult, error) {
	owner, err := a.groupOwner(msg.group)
	if err != nil {
		return nil, err
	}
	if owner.canvas != "" && (owner.canvas != a.id || owner.user != msg.userID) {
		return nil, canvas.ErrClientStateNotFound
	}
	since := store.Full
	if c := msg.cookie; c != nil {
		switch {
		case c.Canvas != a.id || c.Epoch != a.epoch:
			return nil, canvas.ErrClientStateNotFound
		case owner.canvas == "" && c.Order < a.groupsPurged && a.groupDeleted(msg.group):
			// A group this server does not know, with a cookie from
			// before client groups were deleted, that is one of them
			// (the real client also gives new groups the cookie of the
			// group they replace).
			return nil, canvas.ErrClientStateNotFound
		case c.Order > a.version || c.Order < a.logFloor:
			return nil, ErrPullFromStore
		}
		since = c.Order
	}
	res := &PullResult{
		Cookie:                canvas.Cookie{Order: a.version, Canvas: a.id, Epoch: a.epoch},
		LastMutationIDChanges: make(map[string]int64),
		Patch:                 a.patchSince(since),
	}
	for _, id := range a.groupClients[msg.group] {
		if cl := a.clients[id]; cl.Version > since {
			res.LastMutationIDChanges[id] = cl.LastMutationID
		}
	}
	return res, nil
}

// patchSince returns the rows changed after since (store.Full: every live
// row), shared with every other pull from the same version until the next
// commit.
func (a *canvasActor) patchSince(since int64) *Patch {
	if p, ok := a.patches[since]; ok {
		return p
	}
	p := &Patch{Full: since == store.Full}
	if p.Full {
		p.Changes = a.state.Snapshot(nil)
	} else {
		// The log is in version order: everything after since is a suffix.
		i, _ := slices.BinarySearchFunc(a.log, since+1, func(e logEntry, v int64) int {
			switch {
			case e.version < v:
				return -1
			case e.version > v:
				return 1
			}
			return 0
		})
		seen := make(map[changeKey]bool, len(a.log)-i)
		for _, e := range a.log[i:] {
			if !seen[e.key] {
				seen[e.key] = true
				p.Changes = append(p.Changes, a.current(e.key))
			}
		}
	}
	if len(a.patches) >= 16 {
		clear(a.patches)
	}
	a.patches[since] = p
	return p
}

// current returns the row under key as it is now: its value, or its
// deletion.
func (a *canvasActor) current(k changeKey) canvas.Change {
	c := canvas.Change{Kind: k.kind, ID: k.id}
	switch k.kind {
	case canvas.ChangeNode:
		c.Node, c.Deleted = a.state.Node(k.id)
		c.Deleted = !c.Deleted
	case canvas.ChangeEdge:
		c.Edge, c.Deleted = a.state.Edge(k.id)
		c.Deleted = !c.Deleted
	case canvas.ChangeCanvas:
		c.Title = a.state.Meta().Title
	}
	return c
}

// recordChanges appends a committed batch to the change log and forgets
// the patches computed before it.
func (a *canvasActor) recordChanges(version int64, changes []canvas.Change) {
	for _, c := range changes {
		a.log = append(a.log, logEntry{version: version, key: changeKey{c.Kind, c.ID}})
	}
	a.trimLog()
}

// trimLog keeps the change log within its bound and forgets the patches
// computed before its last entries.
func (a *canvasActor) trimLog() {
	if len(a.log) > a.s.cfg.ChangeLog {
		// Drop the older half, whole versions at a time.
		cut := len(a.log) / 2
		for cut < len(a.log) && a.log[cut].version == a.log[cut-1].version {
			cut++
		}
		a.logFloor = a.log[cut-1].version
		a.log = slices.Clone(a.log[cut:])
	}
	clear(a.patches)
}

// resetLog forgets the change log: pulls from before version go to the
// store.
func (a *canvasActor) resetLog(version int64) {
	a.log = a.log[:0]
	a.logFloor = version
	clear(a.patches)
}

// groupDeleted reports whether group, unknown here, was deleted for
// idleness; remembered with its binding. A database error counts as not
// deleted: the pull is then served as a new group's.
func (a *canvasActor) groupDeleted(group string) bool {
	b := a.pullGroups[group]
	if !b.checked {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		deleted, err := a.s.store.GroupDeleted(ctx, a.id, group)
		if err != nil {
			a.logger.Warn("deleted client group lookup failed", zap.String("group", group), zap.Error(err))
		}
		b.checked, b.deleted = err == nil, deleted
		a.pullGroups[group] = b
	}
	return b.deleted
}

// groupOwner is the binding of a client group, read from the store once.
type groupBinding struct {
	canvas, user     string // canvas "" when the group is bound nowhere yet
	checked, deleted bool   // looked up among the deleted groups, and found there
}

func (a *canvasActor) groupOwner(group string) (groupBinding, error) {
	if user, ok := a.groups[group]; ok {
		return groupBinding{canvas: a.id, user: user}, nil
	}
	if b, ok := a.pullGroups[group]; ok {
		return b, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	canvasID, user, found, err := a.s.store.GroupOwner(ctx, group, a.id)
	if err != nil {
		return groupBinding{}, err
	}
	b := groupBinding{}
	if found {
		b = groupBinding{canvas: canvasID, user: user}
	}
	if len(a.pullGroups) >= 10000 {
		clear(a.pullGroups)
	}
	// A group bound nowhere may bind to this canvas by a push, which then
	// records it in a.groups, consulted first.
	a.pullGroups[group] = b
	return b, nil
}
