package actors

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/canvasd/canvasd/canvas/store"
)

// gcBatch is how many rows one collector transaction deletes at most: short
// transactions, so writers never wait long on a canvas row the collector
// holds.
const gcBatch = 500

// gcMaxBatches bounds the transactions of one collector run; what is left
// waits for the next run.
const gcMaxBatches = 1000

// GCStats is what one collector run did.
type GCStats struct {
	// Ran is false when another instance held the collector's lock.
	Ran               bool
	GroupsDeleted     int
	TombstonesDeleted int
}

// toucher remembers which client groups were used, and writes it to the
// database at most once per interval per group: a group in use is never
// idle, and a busy group costs no write per request.
type toucher struct {
	mu       sync.Mutex
	interval time.Duration
	last     map[store.GroupKey]time.Time // when each group was last queued
	pending  []store.GroupKey
}

func newToucher(interval time.Duration) *toucher {
	return &toucher{interval: interval, last: make(map[store.GroupKey]time.Time)}
}

// touch notes that group was used on canvasID.
func (t *toucher) touch(canvasID, group string, now time.Time) {
	if group == "" {
		return
	}
	k := store.GroupKey{Canvas: canvasID, Group: group}
	t.mu.Lock()
	if last, ok := t.last[k]; !ok || now.Sub(last) >= t.interval {
		t.last[k] = now
		t.pending = append(t.pending, k)
	}
	t.mu.Unlock()
}

// take returns the groups to write and forgets those not used for an
// interval.
func (t *toucher) take(now time.Time) []store.GroupKey {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.pending
	t.pending = nil
	for k, last := range t.last {
		if now.Sub(last) >= t.interval {
			delete(t.last, k)
		}
	}
	return p
}

// flushTouches writes the groups used since the last flush.
func (s *System) flushTouches() {
	keys := s.touches.take(time.Now())
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.store.TouchGroups(ctx, keys); err != nil {
		s.log.Warn("recording client group activity failed", zap.Int("groups", len(keys)), zap.Error(err))
	}
}

// touchLoop writes group activity every touch interval (bounded to keep
// shutdown and idle detection prompt).
func (s *System) touchLoop() {
	defer s.wg.Done()
	t := time.NewTicker(min(s.touches.interval/2, 10*time.Second))
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			s.flushTouches()
			return
		case <-t.C:
			s.flushTouches()
		}
	}
}

// gcLoop runs the collector every GCInterval.
func (s *System) gcLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-s.stopping:
					cancel()
				case <-ctx.Done():
				}
			}()
			_, _ = s.CollectGarbage(ctx, time.Now())
			cancel()
		}
	}
}

// CollectGarbage runs the collector once, as of now, if no other instance
// is running it: client groups idle for ClientGroupTTL are deleted with
// their clients, tombstones older than TombstoneTTL are purged, in small
// transactions that skip canvases a writer holds.
func (s *System) CollectGarbage(ctx context.Context, now time.Time) (GCStats, error) {
	var st GCStats
	ran, err := s.store.WithGCLock(ctx, func(ctx context.Context) error {
		s.flushTouches()
		for range gcMaxBatches {
			_, n, err := s.store.DeleteIdleGroups(ctx, now.Add(-s.cfg.ClientGroupTTL), gcBatch)
			st.GroupsDeleted += n
			s.Metrics.GroupsDeleted.Add(int64(n))
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
		for range gcMaxBatches {
			// A deleted group is remembered for one more TTL.
			n, err := s.store.ForgetDeletedGroups(ctx, now.Add(-s.cfg.ClientGroupTTL), gcBatch)
			if err != nil {
				return err
			}
			if n < gcBatch {
				break
			}
		}
		for range gcMaxBatches {
			_, n, err := s.store.PurgeTombstones(ctx, now.Add(-s.cfg.TombstoneTTL), gcBatch)
			st.TombstonesDeleted += n
			s.Metrics.TombstonesDeleted.Add(int64(n))
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
		return nil
	})
	st.Ran = ran
	if ran {
		s.Metrics.GCRuns.Add(1)
	}
	if err != nil {
		s.Metrics.GCErrors.Add(1)
		s.log.Warn("data lifecycle collection failed", zap.Error(err))
		return st, err
	}
	if st.GroupsDeleted > 0 || st.TombstonesDeleted > 0 {
		s.log.Info("data lifecycle collection", zap.Int("client_groups_deleted", st.GroupsDeleted),
			zap.Int("tombstones_deleted", st.TombstonesDeleted))
	}
	return st, nil
}
