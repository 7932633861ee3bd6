package actors

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/anthdm/hollywood/actor"
	"go.uber.org/zap"

	"github.com/canvasd/canvasd/canvas"
)

// versionCheckedMsg carries a canvas's current version (or why it could
// not be read) back to its actor.
type versionCheckedMsg struct {
	version int64
	err     error
}

type versionReq struct {
	canvasID string
	pid      *actor.PID
}

// versionChecker reads the current versions of the canvases whose actors
// have pulls waiting, many canvases in one query: under load every query
// serves the requests that queued while the previous one ran. The actors
// go on committing meanwhile.
type versionChecker struct {
	s      *System
	reqs   chan versionReq
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newVersionChecker(s *System) *versionChecker {
	return &versionChecker{s: s, reqs: make(chan versionReq, 4096)}
}

func (v *versionChecker) start() {
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	v.wg.Add(1)
	go v.run(ctx)
}

func (v *versionChecker) stop() {
	if v.cancel != nil {
		v.cancel()
		v.wg.Wait()
	}
}

func (v *versionChecker) request(canvasID string, pid *actor.PID) {
	v.reqs <- versionReq{canvasID: canvasID, pid: pid}
}

func (v *versionChecker) run(ctx context.Context) {
	defer v.wg.Done()
	var batch []versionReq
	var ids []string
	for {
		batch, ids = batch[:0], ids[:0]
		select {
		case r := <-v.reqs:
			batch = append(batch, r)
		case <-ctx.Done():
			return
		}
	drain:
		for len(batch) < 1024 {
			select {
			case r := <-v.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		for _, r := range batch {
			ids = append(ids, r.canvasID)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		qctx, cancel := context.WithTimeout(ctx, v.s.cfg.WriteTimeout)
		versions, err := v.s.store.Versions(qctx, ids)
		cancel()
		if err != nil && ctx.Err() == nil {
			v.s.log.Warn("version check failed", zap.Int("canvases", len(ids)), zap.Error(err))
		}
		for _, r := range batch {
			msg := versionCheckedMsg{err: err}
			if err == nil {
				var ok bool
				if msg.version, ok = versions[r.canvasID]; !ok {
					msg.err = canvas.ErrNotFound
				}
			}
			v.s.engine.Send(r.pid, msg)
		}
		if err != nil && ctx.Err() == nil {
			// Do not spin against a database that is down.
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
}
