package actors

import (
	"context"
	"fmt"
	"runtime/debug"

	"go.uber.org/zap"

	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
)

// batchWriter applies the pushes of one transaction to the canvas actor's
// state and collects the rows to write.
type batchWriter struct {
	a       *canvasActor
	owner   groupOwnerFunc
	write   store.Write
	changes []canvas.Change
	index   map[changeKey]int // position in changes of the newest change of a row
	err     error             // a database error: the whole batch fails
	// mutations counts the mutations applied or rejected (for metrics).
	mutations int
	// gap is set when a mutation waited for a missing predecessor: with a
	// stale cache of lastMutationIDs that may be wrong, so it must be
	// checked even when the batch writes nothing.
	gap bool
}

type changeKey struct {
	kind canvas.ChangeKind
	id   string
}

// groupOwnerFunc finds the canvas and user a client group is bound to.
type groupOwnerFunc func(ctx context.Context, group string) (canvasID, userID string, found bool, err error)

func newBatchWriter(a *canvasActor, owner groupOwnerFunc) *batchWriter {
	return &batchWriter{a: a, owner: owner, write: store.Write{Clients: make(map[string]store.Client)}, index: make(map[changeKey]int)}
}

// client returns what this batch knows of clientID.
func (b *batchWriter) client(clientID string) (store.Client, bool) {
	if cl, ok := b.write.Clients[clientID]; ok {
		return cl, true
	}
	cl, ok := b.a.clients[clientID]
	return cl, ok
}

// groupUser returns the user of a client group bound to this canvas.
func (b *batchWriter) groupUser(ctx context.Context, groupID string) (user string, bound, known bool) {
	if u, ok := b.a.groups[groupID]; ok {
		return u, true, true
	}
	for _, g := range b.write.NewGroups {
		if g.ID == groupID {
			return g.UserID, true, true
		}
	}
	canvasID, user, found, err := b.owner(ctx, groupID)
	if err != nil {
		b.err = err
		return "", false, false
	}
	if !found {
		return "", false, false
	}
	if canvasID != b.a.id {
		return user, false, true
	}
	b.a.groups[groupID] = user
	return user, true, true
}

// push applies one push. It returns a protocol error for the push alone
// (nil if its mutations were applied or skipped).
func (b *batchWriter) push(ctx context.Context, p *pushMsg) error {
	if b.err != nil {
		return nil
	}
	req := p.req
	user, bound, known := b.groupUser(ctx, req.ClientGroupID)
	switch {
	case b.err != nil:
		return nil
	case known && !bound:
		// A group belongs to the canvas of its first push.
		return canvas.ErrClientStateNotFound
	case known && user != p.userID:
		// Another user's group: change nothing, reveal nothing.
		return canvas.ErrClientStateNotFound
	}
	// Check every client before applying anything, so that a refused push
	// leaves no trace.
	for i, m := range req.Mutations {
		if i > 0 && m.ClientID == req.Mutations[i-1].ClientID {
			continue
		}
		cl, ok := b.client(m.ClientID)
		if ok && cl.Group != req.ClientGroupID {
			return canvas.ErrClientStateNotFound
		}
		if !ok && !known && m.ID > 1 {
			// A group we have never seen whose client starts past its
			// first mutation: this server lost (or never had) its state.
			return canvas.ErrClientStateNotFound
		}
	}
	if !known {
		b.write.NewGroups = append(b.write.NewGroups, store.Group{ID: req.ClientGroupID, UserID: p.userID})
	}

	var stopped map[string]bool
	for _, m := range req.Mutations {
		if stopped[m.ClientID] {
			continue
		}
		cl, _ := b.client(m.ClientID)
		next := cl.LastMutationID + 1
		if m.ID < next {
			continue // already applied: every push resends what is pending
		}
		if m.ID > next {
			// A gap: later mutations of this client wait for the missing one.
			if stopped == nil {
				stopped = make(map[string]bool)
			}
			stopped[m.ClientID] = true
			b.gap = true
			b.a.logger.Debug("mutation gap", zap.String("client", m.ClientID), zap.Int64("expected", next), zap.Int64("got", m.ID))
			continue
		}
		if err := b.apply(m); err != nil {
			b.a.s.Metrics.RejectedMutations.Add(1)
			b.a.s.rejections.log(b.a.logger, m, err)
		}
		b.a.s.Metrics.Mutations.Add(1)
		b.mutations++
		b.write.Clients[m.ClientID] = store.Client{Group: req.ClientGroupID, LastMutationID: m.ID}
	}
	return nil
}

// apply runs one mutation against the state. Any error is permanent: the
// mutation is skipped and its client moves on. A panicking mutator is a bug,
// and is treated the same way rather than wedging the client.
func (b *batchWriter) apply(m canvas.Mutation) (err error) {
	defer func() {
		if v := recover(); v != nil {
			b.a.loaded = false // the state may be half-changed: reload it
			b.a.logger.Error("mutator panicked", zap.String("mutator", m.Name), zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
			err = &canvas.RuleError{Mutator: m.Name, Reason: fmt.Sprintf("internal error: %v", v)}
		}
	}()
	op, err := b.a.s.decode(m.Name, m.Args, b.a.s.cfg.Limits)
	if err != nil {
		return err
	}
	before := len(b.changes)
	b.changes, err = b.a.state.Apply(op, b.a.s.cfg.Limits, b.changes)
	if err != nil {
		return err
	}
	// Keep only the newest change of each row.
	for i := before; i < len(b.changes); i++ {
		k := changeKey{b.changes[i].Kind, b.changes[i].ID}
		if j, ok := b.index[k]; ok {
			b.changes[j].Kind = 0 // superseded
		}
		b.index[k] = i
	}
	return nil
}

// finish compacts the changes into the write.
func (b *batchWriter) finish() {
	out := b.changes[:0]
	for _, c := range b.changes {
		if c.Kind != 0 {
			out = append(out, c)
		}
	}
	b.write.Changes = out
}
