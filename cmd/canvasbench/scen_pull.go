package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Targets of the pull scenario.
const (
	targetIncrementalP99 = 5 * time.Millisecond
	targetInitialPull    = 150 * time.Millisecond
	targetInitialWire    = 3 << 20
	targetQueriesPerCk   = 5 // "a handful" of database transactions per distinct cookie
)

// runPullScenario: one canvas of --nodes nodes; initial pulls (gzip),
// incremental pulls after --changes one-mutation pushes, and one push that
// pokes --pullers SSE clients which all pull.
func runPullScenario(ctx context.Context, env *scenEnv) (*ScenarioReport, error) {
	cfg, s := env.cfg, env.cfg.Scen
	a := env.api
	run := randID(6)
	cv := "pull-" + run
	rep := &ScenarioReport{
		Title:  "scenario pull",
		Params: fmt.Sprintf("nodes=%d changes=%d reps=%d initial-pulls=%d pullers=%d server=%s", cfg.Nodes, s.Changes, s.Reps, s.InitialPulls, s.Pullers, env.base),
	}

	env.prog.note("pull: creating canvas %s with %d nodes ...", cv, cfg.Nodes)
	t0 := time.Now()
	if err := a.createCanvas(ctx, cv); err != nil {
		return nil, fmt.Errorf("create canvas: %w", err)
	}
	writer := newScenClient("w-" + run)
	if err := createNodes(ctx, a, writer, cv, cfg.Nodes, 500); err != nil {
		return nil, err
	}
	rep.add(info("setup: create nodes (pushes of 500)", fmt.Sprintf("%d nodes in %.2f s", cfg.Nodes, time.Since(t0).Seconds())))

	// Initial pulls, each by a new client group, with Accept-Encoding: gzip.
	env.prog.note("pull: %d initial pulls ...", s.InitialPulls)
	initial := NewHist()
	var wire, decoded int64
	var enc string
	var cookie json.RawMessage
	for i := range s.InitialPulls {
		c := newScenClient(fmt.Sprintf("i-%s-%d", run, i))
		st, err := a.pullRaw(ctx, cv, c.pullReq(nil), true)
		if err != nil {
			return nil, fmt.Errorf("initial pull: %w", err)
		}
		if got := len(*st.Resp.Patch); got != cfg.Nodes+2 { // clear + canvas + nodes
			rep.note("initial pull %d returned %d patch ops, want %d (clear, canvas, nodes)", i, got, cfg.Nodes+2)
		}
		initial.Record(st.Dur)
		wire, decoded, enc = max(wire, st.Wire), max(decoded, st.Decoded), st.Encoding
		cookie = st.Resp.Cookie
	}
	if enc == "" {
		enc = "identity"
	}
	rep.add(
		check("initial pull time (Accept-Encoding: gzip)", fmtHist(initial), "p99 <= 150 ms", initial.Quantile(.99) <= targetInitialPull),
		check("initial pull bytes on the wire", fmt.Sprintf("%s (Content-Encoding: %s)", fmtBytes(wire), enc), "<= 3 MiB", wire <= targetInitialWire),
		info("initial pull bytes decoded", fmtBytes(decoded)),
	)

	// Incremental pulls: an editing client (its group exists: it pushed
	// once) pulls after every --changes pushes by the writer.
	env.prog.note("pull: %d incremental pulls after %d changes each ...", s.Reps, s.Changes)
	puller := newScenClient("p-" + run)
	if err := puller.push(ctx, a, cv, []string{"moveNode"}, []any{moveArgs(0, 1)}); err != nil {
		return nil, fmt.Errorf("puller's first push: %w", err)
	}
	st, err := a.pullRaw(ctx, cv, puller.pullReq(cookie), true)
	if err != nil {
		return nil, fmt.Errorf("puller's first pull: %w", err)
	}
	cookie = st.Resp.Cookie
	store0 := env.metric(ctx, "canvasd_pulls_from_store_total")
	inc := NewHist()
	push := NewHist()
	var wrongPatch int
	var incWire int64
	node := 0
	for r := range s.Reps {
		for range s.Changes {
			node = (node + 1) % cfg.Nodes
			t := time.Now()
			if err := writer.push(ctx, a, cv, []string{"moveNode"}, []any{moveArgs(node, float64(r+2))}); err != nil {
				return nil, fmt.Errorf("change push: %w", err)
			}
			push.Record(time.Since(t))
		}
		st, err := a.pullRaw(ctx, cv, puller.pullReq(cookie), true)
		if err != nil {
			return nil, fmt.Errorf("incremental pull: %w", err)
		}
		inc.Record(st.Dur)
		incWire = max(incWire, st.Wire)
		if len(*st.Resp.Patch) != s.Changes {
			wrongPatch++
		}
		cookie = st.Resp.Cookie
	}
	store1 := env.metric(ctx, "canvasd_pulls_from_store_total")
	rep.add(
		check(fmt.Sprintf("incremental pull after %d changes", s.Changes), fmtHist(inc), "p99 <= 5 ms", inc.Quantile(.99) <= targetIncrementalP99),
		info("incremental pull: largest body on the wire", fmtBytes(incWire)),
		info("incremental pull: patches without exactly the changes", fmt.Sprintf("%d of %d", wrongPatch, s.Reps)),
		info("incremental phase: pulls answered from the store", deltaStr(store0, store1)),
		info("change pushes (one mutation each)", fmtHist(push)),
	)

	if err := pullHerd(ctx, env, rep, cv, run, writer, cookie); err != nil {
		return rep, err
	}
	return rep, nil
}

func deltaStr(a, b float64) string {
	if a < 0 || b < 0 {
		return "unknown (no /metrics)"
	}
	return fmt.Sprintf("%.0f", b-a)
}

// herdPuller is one of the clients pulling on a poke.
type herdPuller struct {
	c      *scenClient
	cookie json.RawMessage
	wake   chan struct{}
}

// pullHerd: --pullers clients (each pushed once, so their groups exist, and
// pulled up to the same cookie) hold SSE streams; one push pokes them all
// and each pulls. Database transactions are counted around that push.
func pullHerd(ctx context.Context, env *scenEnv, rep *ScenarioReport, cv, run string, writer *scenClient, cookie json.RawMessage) error {
	s := env.cfg.Scen
	a := env.api
	env.prog.note("pull: %d pullers: pushing once each, pulling, connecting SSE ...", s.Pullers)
	ps := make([]*herdPuller, s.Pullers)
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for i := range ps {
		p := &herdPuller{c: newScenClient(fmt.Sprintf("h-%s-%d", run, i)), wake: make(chan struct{}, 1)}
		ps[i] = p
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := p.c.push(ctx, a, cv, []string{"moveNode"}, []any{moveArgs(i%env.cfg.Nodes, -1)}); err != nil {
				firstErr.CompareAndSwap(nil, fmt.Errorf("puller push: %w", err))
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	for _, p := range ps {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			st, err := a.pullRaw(ctx, cv, p.c.pullReq(cookie), true)
			if err != nil {
				firstErr.CompareAndSwap(nil, fmt.Errorf("puller pull: %w", err))
				return
			}
			p.cookie = st.Resp.Cookie
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	hc := newSSEClient()
	defer hc.CloseIdleConnections()
	var armed atomic.Bool
	var armedAt atomic.Int64
	herd := NewHist()     // push ack -> pull done, per puller
	herdPull := NewHist() // the pull's own round trip
	var pulled atomic.Int64
	var pullErrs Errors
	var ckMu sync.Mutex
	cookies := map[string]bool{}
	dialSem := make(chan struct{}, s.Dials)
	var connected, connErrs atomic.Int64
	var readers sync.WaitGroup
	for _, p := range ps {
		readers.Go(func() {
			dialSem <- struct{}{}
			resp, err := openSSE(sctx, hc, a.base, cv)
			<-dialSem
			if err != nil {
				connErrs.Add(1)
				return
			}
			connected.Add(1)
			defer resp.Body.Close()
			_ = readPokes(resp.Body, func(int64, time.Time) {
				if armed.Load() {
					select {
					case p.wake <- struct{}{}:
					default:
					}
				}
			})
		})
		readers.Go(func() {
			select {
			case <-sctx.Done():
				return
			case <-p.wake:
			}
			ckMu.Lock()
			cookies[string(p.cookie)] = true
			ckMu.Unlock()
			t := time.Now()
			st, err := a.pullRaw(sctx, cv, p.c.pullReq(p.cookie), true)
			if err != nil {
				pullErrs.Add(errKind(err))
				return
			}
			done := time.Now()
			herdPull.Record(done.Sub(t))
			if at := armedAt.Load(); at != 0 {
				herd.Record(max(done.Sub(time.Unix(0, at)), 0))
			} else {
				herd.Record(0) // done before the pusher got its ack
			}
			p.cookie = st.Resp.Cookie
			pulled.Add(1)
		})
	}
	deadline := time.Now().Add(60 * time.Second)
	for connected.Load()+connErrs.Load() < int64(len(ps)) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if connErrs.Load() > 0 {
		rep.note("%d of %d SSE streams failed to connect", connErrs.Load(), len(ps))
	}

	// Calibration: what one push costs the database with nobody pulling.
	time.Sleep(statsFlush)
	x0, xerr := env.xacts(ctx)
	if err := writer.push(ctx, a, cv, []string{"moveNode"}, []any{moveArgs(1, -2)}); err != nil {
		return fmt.Errorf("calibration push: %w", err)
	}
	time.Sleep(statsFlush)
	x1, _ := env.xacts(ctx)
	store0 := env.metric(ctx, "canvasd_pulls_from_store_total")
	pulls0 := env.metric(ctx, "canvasd_pulls_total")

	// The measured push: every puller is poked and pulls once.
	armed.Store(true)
	if err := writer.push(ctx, a, cv, []string{"moveNode"}, []any{moveArgs(2, -3)}); err != nil {
		return fmt.Errorf("herd push: %w", err)
	}
	armedAt.Store(time.Now().UnixNano())
	deadline = time.Now().Add(30 * time.Second)
	for pulled.Load()+pullErrs.Total() < connected.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	window := time.Since(time.Unix(0, armedAt.Load()))
	time.Sleep(statsFlush)
	x2, _ := env.xacts(ctx)
	store1 := env.metric(ctx, "canvasd_pulls_from_store_total")
	pulls1 := env.metric(ctx, "canvasd_pulls_total")
	stop()
	readers.Wait()

	distinct := len(cookies)
	rep.add(
		info("herd: pullers poked / pulled", fmt.Sprintf("%d / %d (errors: %s)", connected.Load(), pulled.Load(), orZero(formatErrors(pullErrs.Snapshot())))),
		info("herd: push ack -> pull done", fmtHist(herd)),
		info("herd: pull round trip", fmtHist(herdPull)),
		info("herd: distinct cookies pulled with", fmt.Sprint(distinct)),
		info("herd: canvasd_pulls_total delta", deltaStr(pulls0, pulls1)),
		info("herd: canvasd_pulls_from_store_total delta", deltaStr(store0, store1)),
	)
	if xerr != nil {
		rep.note("database transactions not measured: %v", xerr)
		return nil
	}
	pushCost := x1 - x0
	herdTx := x2 - x1 - pushCost
	rep.add(
		info("db transactions: one push, nobody pulling (calibration)", fmt.Sprint(pushCost)),
		info("db transactions: one push + herd pulls (raw)", fmt.Sprintf("%d (window %.0f ms + %.1f s stats flush)", x2-x1, float64(window)/1e6, statsFlush.Seconds())),
		check("db transactions caused by the herd's pulls", fmt.Sprintf("%d for %d distinct cookie(s)", herdTx, distinct),
			fmt.Sprintf("<= %d per distinct cookie", targetQueriesPerCk), herdTx <= int64(targetQueriesPerCk*max(distinct, 1))),
	)
	rep.note("db transactions = xact_commit + xact_rollback of pg_stat_database for %s (pg_stat_statements is not used)", env.statsDB)
	return nil
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}
