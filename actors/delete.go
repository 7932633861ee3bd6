package actors

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/canvasd/canvasd/canvas"
)

// deletedMsg tells a canvas actor that its canvas was deleted.
type deletedMsg struct{ entry *entry }

// DeleteCanvas deletes canvasID: from then on every read and write of it
// answers canvas.ErrNotFound, here and on every other instance; its event
// streams end; its presence is forgotten; its rows are removed in the
// background. Creating the id again starts a new incarnation (a new epoch).
func (s *System) DeleteCanvas(ctx context.Context, canvasID string) error {
	if s.closed.Load() {
		return ErrStopped
	}
	if err := s.store.DeleteCanvas(ctx, canvasID); err != nil {
		return err
	}
	s.Metrics.CanvasesDeleted.Add(1)
	s.canvasDeleted(canvasID)
	s.notifier.publishDeleted(canvasID)
	s.kickPurger()
	return nil
}

// canvasDeleted drops what this instance holds of a deleted canvas.
func (s *System) canvasDeleted(canvasID string) {
	s.presence.drop(canvasID)
	if e := s.dir.acquireExisting(canvasID); e != nil {
		s.engine.Send(e.pid, &deletedMsg{entry: e})
	}
}

// deleted ends the canvas's streams and forgets its memory: whatever
// comes next reads the database again and finds the canvas gone (or its
// next incarnation).
func (a *canvasActor) deleted(msg *deletedMsg) {
	for sub := range a.subs {
		sub.end() // each closes its subscription, which releases its reference
	}
	a.loaded, a.known = false, false
	a.seen, a.version = 0, 0
	a.state, a.clients, a.groups = nil, nil, nil
	a.entry.missing.Store(true)
	a.s.dir.release(msg.entry)
}

// exists answers whether the canvas exists, reading the database only if
// nothing in memory says so already.
func (a *canvasActor) exists(msg *existsMsg) {
	defer a.s.dir.release(msg.entry)
	if a.loaded || a.known || a.seen > 0 {
		msg.reply <- nil
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.s.cfg.WriteTimeout)
	defer cancel()
	_, err := a.s.store.GetCanvas(ctx, a.id)
	if errors.Is(err, canvas.ErrNotFound) {
		a.entry.missing.Store(true)
	}
	a.known = err == nil
	msg.reply <- err
}

// startPurger runs the background removal of deleted canvases' rows: at
// start-up (a purge an instance left unfinished), after each deletion, and
// every purgePeriod. Instances share the work (each purge step locks its
// canvas's purge row, skipping those locked by others).
func (s *System) startPurger() {
	s.purgeKick = make(chan struct{}, 1)
	s.kickPurger()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(purgePeriod)
		defer t.Stop()
		for {
			select {
			case <-s.stopping:
				return
			case <-t.C:
			case <-s.purgeKick:
			}
			s.purge()
		}
	}()
}

// purgePeriod is how often an instance looks for deleted canvases whose
// rows are left to remove.
const purgePeriod = time.Minute

func (s *System) kickPurger() {
	select {
	case s.purgeKick <- struct{}{}:
	default:
	}
}

// purge removes the rows of deleted canvases, one small transaction at a
// time, until none is left or the system stops.
func (s *System) purge() {
	log := s.log.Named("purge")
	for {
		select {
		case <-s.stopping:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.WriteTimeout)
		worked, err := s.store.PurgeStep(ctx, s.cfg.PurgeBatch)
		cancel()
		if err != nil {
			log.Warn("purging deleted canvases failed, retrying later", zap.Error(err))
			return
		}
		if !worked {
			return
		}
		s.Metrics.PurgeBatches.Add(1)
	}
}
