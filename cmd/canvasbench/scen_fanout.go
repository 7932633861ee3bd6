package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Targets of the fanout scenario.
const (
	targetFanoutP99    = 250 * time.Millisecond
	targetSubscriberB  = 32 << 10
	targetBurstPokeMax = 10 // "a handful" of pokes per subscriber for a burst of commits
)

// pokeEvent is one poke as a subscriber received it.
type pokeEvent struct {
	version int64
	at      time.Time
}

// fanSub is one SSE subscriber of the fanout scenario.
type fanSub struct {
	canvas int
	ok     atomic.Bool // connected
	mu     sync.Mutex
	events []pokeEvent
}

func (f *fanSub) add(v int64, at time.Time) {
	f.mu.Lock()
	f.events = append(f.events, pokeEvent{v, at})
	f.mu.Unlock()
}

func (f *fanSub) snapshot() []pokeEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pokeEvent(nil), f.events...)
}

func (f *fanSub) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events)
}

func (f *fanSub) maxVersion() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := int64(-1)
	for _, e := range f.events {
		m = max(m, e.version)
	}
	return m
}

// firstAtOrAbove returns the arrival of the first poke with version >= v.
func firstAtOrAbove(events []pokeEvent, v int64) (time.Time, bool) {
	for _, e := range events {
		if e.version >= v {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// fanSample is one latency push: acknowledged at ack, committed at version.
type fanSample struct {
	canvas  int
	ack     time.Time
	version int64
}

// fanoutLatency records, for every sample and every subscriber of its
// canvas, push ack -> the first poke with that version or later (0 when the
// poke beat the ack), and counts the subscribers that never got one.
func fanoutLatency(samples []fanSample, subsOf [][]int, events [][]pokeEvent, h *Hist) (missed int64) {
	for _, s := range samples {
		for _, i := range subsOf[s.canvas] {
			at, ok := firstAtOrAbove(events[i], s.version)
			if !ok {
				missed++
				continue
			}
			h.Record(max(at.Sub(s.ack), 0))
		}
	}
	return missed
}

// countStats returns the mean and max of per-subscriber counts.
func countStats(counts []int) (mean float64, maxN int) {
	if len(counts) == 0 {
		return 0, 0
	}
	sum := 0
	for _, c := range counts {
		sum += c
		maxN = max(maxN, c)
	}
	return float64(sum) / float64(len(counts)), maxN
}

// fanCanvas is one canvas of the scenario with its writer.
type fanCanvas struct {
	id     string
	w      *scenClient
	cookie json.RawMessage
}

// version pushes nothing; it pulls to learn the canvas's current version.
func (c *fanCanvas) version(ctx context.Context, a *api) (int64, error) {
	st, err := a.pullRaw(ctx, c.id, c.w.pullReq(c.cookie), false)
	if err != nil {
		return 0, err
	}
	c.cookie = st.Resp.Cookie
	return int64(cookieOrder(c.cookie)), nil
}

// forEach runs fn for every index with at most conc at a time and returns
// the first error.
func forEach(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func runFanoutScenario(ctx context.Context, env *scenEnv) (*ScenarioReport, error) {
	cfg, s := env.cfg, env.cfg.Scen
	a := env.api
	run := randID(6)
	nc := cfg.Canvases
	rep := &ScenarioReport{
		Title: "scenario fanout",
		Params: fmt.Sprintf("subscribers=%d canvases=%d (%.1f per canvas) samples=%d interval=%s burst=%d server=%s",
			s.Subscribers, nc, float64(s.Subscribers)/float64(nc), s.Samples, s.SampleInterval, s.Burst, env.base),
	}

	env.prog.note("fanout: creating %d canvas(es) ...", nc)
	cvs := make([]*fanCanvas, nc)
	err := forEach(ctx, nc, s.Concurrency, func(ctx context.Context, i int) error {
		c := &fanCanvas{id: fmt.Sprintf("fan-%s-%d", run, i), w: newScenClient(fmt.Sprintf("fw-%s-%d", run, i))}
		cvs[i] = c
		if err := a.createCanvas(ctx, c.id); err != nil {
			return fmt.Errorf("create canvas: %w", err)
		}
		if err := createNodes(ctx, a, c.w, c.id, cfg.Nodes, 500); err != nil {
			return err
		}
		_, err := c.version(ctx, a)
		return err
	})
	if err != nil {
		return nil, err
	}

	// Idle memory per subscriber.
	time.Sleep(time.Second)
	heap0, stack0 := env.heap(ctx)
	rss0, _ := env.rss()

	env.prog.note("fanout: connecting %d subscribers ...", s.Subscribers)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	hc := newSSEClient()
	subs := make([]*fanSub, s.Subscribers)
	subsOf := make([][]int, nc)
	for i := range subs {
		subs[i] = &fanSub{canvas: i % nc}
		subsOf[i%nc] = append(subsOf[i%nc], i)
	}
	var connected, connErrs, dropped atomic.Int64
	var connErrKinds Errors
	var readers sync.WaitGroup
	dialSem := make(chan struct{}, s.Dials)
	tConn := time.Now()
	for _, sub := range subs {
		readers.Go(func() {
			dialSem <- struct{}{}
			resp, err := openSSE(sctx, hc, a.base, cvs[sub.canvas].id)
			<-dialSem
			if err != nil {
				if sctx.Err() == nil {
					connErrs.Add(1)
					connErrKinds.Add(errKind(err))
				}
				return
			}
			connected.Add(1)
			sub.ok.Store(true)
			defer resp.Body.Close()
			_ = readPokes(resp.Body, sub.add)
			if sctx.Err() == nil {
				dropped.Add(1)
			}
		})
	}
	deadline := time.Now().Add(2 * time.Minute)
	for connected.Load()+connErrs.Load() < int64(len(subs)) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	connectTime := time.Since(tConn)
	for time.Now().Before(deadline) && env.metric(ctx, "canvasd_sse_subscribers") < float64(connected.Load()) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second) // idle
	heap1, stack1 := env.heap(ctx)
	rss1, _ := env.rss()
	n := connected.Load()
	// Only connected subscribers count from here on.
	all := subs
	subs, subsOf = nil, make([][]int, nc)
	for _, sub := range all {
		if sub.ok.Load() {
			subsOf[sub.canvas] = append(subsOf[sub.canvas], len(subs))
			subs = append(subs, sub)
		}
	}
	rep.add(info("subscribers connected", fmt.Sprintf("%d of %d in %.1f s (errors: %s); server reports %.0f", n, len(all), connectTime.Seconds(),
		orZero(formatErrors(connErrKinds.Snapshot())), env.metric(ctx, "canvasd_sse_subscribers"))))
	if n == 0 {
		return rep, fmt.Errorf("no subscriber connected")
	}
	if rss0 > 0 {
		per := (rss1 - rss0) / n
		rep.add(check("server memory per idle subscriber (RSS delta / subscribers)",
			fmt.Sprintf("%s (RSS %s -> %s)", fmtBytes(per), fmtBytes(rss0), fmtBytes(rss1)), "<= 32 KiB", per <= targetSubscriberB))
	} else {
		rep.note("server RSS unknown (external server without --server-pid): memory per subscriber not measured")
	}
	if heap0 > 0 && heap1 > 0 {
		rep.add(info("Go heap+stack in use per idle subscriber (after forced GC)",
			fmt.Sprintf("%s (heap %s -> %s, stacks %s -> %s)", fmtBytes((heap1+stack1-heap0-stack0)/n),
				fmtBytes(heap0), fmtBytes(heap1), fmtBytes(stack0), fmtBytes(stack1))))
	}

	// Latency: --samples rounds; each pushes once to every canvas.
	env.prog.note("fanout: %d latency rounds over %d canvas(es) ...", s.Samples, nc)
	var smu sync.Mutex
	var samples []fanSample
	pushLat := NewHist()
	final := make([]int64, nc)
	for r := range s.Samples {
		err := forEach(ctx, nc, s.Concurrency, func(ctx context.Context, i int) error {
			c := cvs[i]
			t := time.Now()
			if err := c.w.push(ctx, a, c.id, []string{"moveNode"}, []any{moveArgs(r%max(cfg.Nodes, 1), float64(r+1))}); err != nil {
				return fmt.Errorf("latency push: %w", err)
			}
			ack := time.Now()
			pushLat.Record(ack.Sub(t))
			v, err := c.version(ctx, a)
			if err != nil {
				return fmt.Errorf("version pull: %w", err)
			}
			final[i] = v
			smu.Lock()
			samples = append(samples, fanSample{canvas: i, ack: ack, version: v})
			smu.Unlock()
			return nil
		})
		if err != nil {
			return rep, err
		}
		time.Sleep(s.SampleInterval)
	}
	waitReached(ctx, subs, final, 15*time.Second)
	events := make([][]pokeEvent, len(subs))
	for i, sub := range subs {
		events[i] = sub.snapshot()
	}
	lat := NewHist()
	missed := fanoutLatency(samples, subsOf, events, lat)
	rep.add(
		check("poke latency: push ack -> poke (that version or later) at each subscriber", fmtHist(lat), "p99 <= 250 ms", lat.Count() > 0 && lat.Quantile(.99) <= targetFanoutP99 && missed == 0),
		info("poke latency: (push, subscriber) pairs never poked", fmt.Sprint(missed)),
		info("latency pushes: request -> ack", fmtHist(pushLat)),
	)

	// Coalescing: --burst sequential one-mutation pushes (= commits) per canvas.
	if s.Burst > 0 {
		env.prog.note("fanout: burst of %d commits on each of %d canvas(es) ...", s.Burst, nc)
		before := make([]int, len(subs))
		for i, sub := range subs {
			before[i] = sub.count()
		}
		pokes0 := env.metric(ctx, "canvasd_pokes_total")
		tx0 := env.metric(ctx, "canvasd_write_transactions_total")
		tb := time.Now()
		err := forEach(ctx, nc, s.Concurrency, func(ctx context.Context, i int) error {
			c := cvs[i]
			for k := range s.Burst {
				if err := c.w.push(ctx, a, c.id, []string{"moveNode"}, []any{moveArgs(k%max(cfg.Nodes, 1), float64(1000+k))}); err != nil {
					return fmt.Errorf("burst push: %w", err)
				}
			}
			v, err := c.version(ctx, a)
			final[i] = v
			return err
		})
		if err != nil {
			return rep, err
		}
		burstDur := time.Since(tb)
		notReached := waitReached(ctx, subs, final, 15*time.Second)
		time.Sleep(500 * time.Millisecond) // late pokes count too
		counts := make([]int, len(subs))
		for i, sub := range subs {
			counts[i] = sub.count() - before[i]
		}
		mean, mx := countStats(counts)
		rep.add(
			check(fmt.Sprintf("pokes per subscriber for a burst of %d commits", s.Burst), fmt.Sprintf("mean %.1f max %d", mean, mx),
				fmt.Sprintf("a handful (max <= %d)", targetBurstPokeMax), mx <= targetBurstPokeMax && notReached == 0),
			info("burst: subscribers that never saw the final version", fmt.Sprint(notReached)),
			info("burst: commits / duration", fmt.Sprintf("%s write transactions in %.2f s", deltaStr(tx0, env.metric(ctx, "canvasd_write_transactions_total")), burstDur.Seconds())),
			info("burst: canvasd_pokes_total delta", deltaStr(pokes0, env.metric(ctx, "canvasd_pokes_total"))),
		)
	}
	_, peak := env.rss()
	rep.add(info("server peak RSS (VmHWM)", fmtBytes(peak)))
	if d := dropped.Load(); d > 0 {
		rep.add(info("SSE streams closed by the server during the run", fmt.Sprint(d)))
	}
	stop()
	readers.Wait()
	return rep, nil
}

// waitReached waits until every subscriber has seen its canvas's version in
// final (or timeout) and returns how many have not.
func waitReached(ctx context.Context, subs []*fanSub, final []int64, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		behind := 0
		for _, s := range subs {
			if s.maxVersion() < final[s.canvas] {
				behind++
			}
		}
		if behind == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return behind
		}
		time.Sleep(50 * time.Millisecond)
	}
}
