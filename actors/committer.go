package actors

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/canvasd/canvasd/canvas/store"
)

// maxCommitCanvases bounds the canvases written by one statement.
const maxCommitCanvases = 256

type commitReq struct {
	batch     store.CanvasBatch
	mutations int       // for the batch-size histogram
	deadline  time.Time // the caller's: past it, the caller has answered 503
	reply     chan store.Committed
}

// committer writes the batches of many canvas actors in one statement: the
// batches that queue while a statement runs go into the next. A canvas's
// actor still serializes its canvas; the committer shares commits between
// canvases, so under load the database sees far fewer commits than there
// are canvas batches. A few committers run at once, so one slow statement
// does not hold every canvas up.
type committer struct {
	s      *System
	reqs   chan *commitReq
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newCommitter(s *System) *committer {
	return &committer{s: s, reqs: make(chan *commitReq, 4096)}
}

func (c *committer) start(n int) {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	for range n {
		c.wg.Go(func() { c.run(ctx) })
	}
}

// stop ends the committers; call it once no actor commits any more.
func (c *committer) stop() {
	if c.cancel != nil {
		c.cancel()
		c.wg.Wait()
	}
}

// commit writes one canvas's batch and waits for the outcome.
func (c *committer) commit(ctx context.Context, b store.CanvasBatch, mutations int) (int64, error) {
	req := &commitReq{batch: b, mutations: mutations, reply: make(chan store.Committed, 1)}
	req.deadline, _ = ctx.Deadline()
	select {
	case c.reqs <- req:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	// The statement is bounded by our deadline, and the committer always
	// answers: waiting for it (rather than for ctx) means an error here is
	// a statement that did not commit, not one that might still.
	res := <-req.reply
	return res.Version, res.Err
}

func (c *committer) run(ctx context.Context) {
	var (
		reqs    []*commitReq
		batches []store.CanvasBatch
	)
	for {
		reqs, batches = reqs[:0], batches[:0]
		select {
		case r := <-c.reqs:
			reqs = append(reqs, r)
		case <-ctx.Done():
			return
		}
		// With batching off (the ablation), every batch gets its own
		// statement and commit.
		limit := maxCommitCanvases
		if !c.s.cfg.Batching {
			limit = 1
		}
	drain:
		for len(reqs) < limit {
			select {
			case r := <-c.reqs:
				reqs = append(reqs, r)
			default:
				break drain
			}
		}
		for _, r := range reqs {
			batches = append(batches, r.batch)
		}
		var channel string
		if c.s.cfg.Notify == NotifyInTx {
			channel = c.s.cfg.NotifyChannel
		}
		mutations := 0
		for _, r := range reqs {
			mutations += r.mutations
		}
		deadline := c.deadline(reqs)
		if len(reqs) > 1 {
			// A shared statement that fails leaves its canvases at least
			// half the budget to be written one by one.
			if half := time.Now().Add(c.s.cfg.WriteTimeout / 2); half.Before(deadline) {
				deadline = half
			}
		}
		res, err := c.write(batches, mutations, channel, deadline)
		if err != nil && len(batches) > 1 {
			// One canvas's batch must not fail the others (nor a deadlock
			// with another instance all of them): write each alone.
			c.s.log.Warn("shared commit failed, writing its canvases one by one", zap.Int("canvases", len(batches)), zap.Error(err))
			for i := range reqs {
				one, err := c.write(batches[i:i+1], reqs[i].mutations, channel, c.deadline(reqs[i:i+1]))
				if err != nil {
					res[i] = store.Committed{Err: err}
				} else {
					res[i] = one[0]
				}
			}
			err = nil
		}
		for i, r := range reqs {
			if err != nil {
				r.reply <- store.Committed{Err: err}
			} else {
				r.reply <- res[i]
			}
		}
	}
}

// deadline is when a statement for reqs must end: the earliest deadline
// among its callers. A caller that timed out has told its client nothing
// was written, so the statement must not commit after that.
func (c *committer) deadline(reqs []*commitReq) time.Time {
	d := time.Now().Add(c.s.cfg.WriteTimeout)
	for _, r := range reqs {
		if !r.deadline.IsZero() && r.deadline.Before(d) {
			d = r.deadline
		}
	}
	return d
}

// write runs one statement for batches, abandoned at deadline.
func (c *committer) write(batches []store.CanvasBatch, mutations int, channel string, deadline time.Time) ([]store.Committed, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	c.s.Metrics.Statements.Add(1)
	var lockTimeout time.Duration
	if c.s.cfg.LockTimeout > 0 {
		// Canvas rows are skipped when locked; any other lock held by
		// another session fails the statement quickly, and its canvases
		// are then written one by one.
		lockTimeout = lockAttempt
	}
	c.s.Metrics.BatchCanvases.Observe(float64(len(batches)))
	c.s.Metrics.BatchMutations.Observe(float64(mutations))
	start := time.Now()
	res, err := c.s.store.CommitBatches(ctx, batches, channel, c.s.notifier.instance, lockTimeout)
	c.s.Metrics.CommitSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		return make([]store.Committed, len(batches)), err
	}
	return res, nil
}
