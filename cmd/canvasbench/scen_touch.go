package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// targetRSSFactor: after passivation the server's RSS is back under this
// many times its idle RSS.
const targetRSSFactor = 2.0

// rssSampler tracks the largest VmRSS seen.
type rssSampler struct{ peak atomic.Int64 }

func (r *rssSampler) observe(v int64) {
	for {
		cur := r.peak.Load()
		if v <= cur || r.peak.CompareAndSwap(cur, v) {
			return
		}
	}
}

// backUnder reports whether rss is back under factor x idle.
func backUnder(rss, idle int64, factor float64) bool {
	return idle > 0 && rss > 0 && float64(rss) < factor*float64(idle)
}

func runTouchScenario(ctx context.Context, env *scenEnv) (*ScenarioReport, error) {
	cfg, s := env.cfg, env.cfg.Scen
	a := env.api
	run := randID(6)
	n := cfg.Canvases
	rep := &ScenarioReport{
		Title: "scenario touch",
		Params: fmt.Sprintf("canvases=%d touch-op=create+%s concurrency=%d idle-timeout=%s settle=%s server=%s",
			n, s.TouchOp, s.Concurrency, s.IdleTimeout, s.Settle, env.base),
	}
	if env.pid <= 0 {
		rep.note("server RSS unknown (external server without --server-pid): only canvasd_active_canvases is reported")
	}

	time.Sleep(2 * time.Second)
	idle, _ := env.rss()
	rep.add(info("idle RSS (before touching)", fmtBytes(idle)))

	var sampler rssSampler
	sampler.observe(idle)
	var done atomic.Int64
	var errs Errors
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-sctx.Done():
				return
			case now := <-t.C:
				if r, _ := env.rss(); r > 0 {
					sampler.observe(r)
				}
				if now.Sub(last) >= 10*time.Second {
					last = now
					r, _ := env.rss()
					env.prog.note("touch: %d of %d canvases, RSS %s, errors %d", done.Load(), n, fmtBytes(r), errs.Total())
				}
			}
		}
	}()

	env.prog.note("touch: creating and touching %d canvases with %d workers ...", n, s.Concurrency)
	t0 := time.Now()
	err := forEach(ctx, n, s.Concurrency, func(ctx context.Context, i int) error {
		id := fmt.Sprintf("t-%s-%d", run, i)
		if err := a.createCanvas(ctx, id); err != nil {
			errs.Add("create_" + errKind(err))
			return ctxErr(ctx)
		}
		c := newScenClient(fmt.Sprintf("tc-%s-%d", run, i))
		var err error
		if s.TouchOp == "pull" {
			_, err = a.pull(ctx, id, c.pullReq(nil))
		} else {
			err = c.push(ctx, a, id, []string{"createNode"}, []any{map[string]any{"id": "n0", "kind": "box", "x": 1, "y": 2, "w": 200, "h": 120, "title": "", "body": ""}})
		}
		if err != nil {
			errs.Add(s.TouchOp + "_" + errKind(err))
			return ctxErr(ctx)
		}
		done.Add(1)
		return nil
	})
	touchDur := time.Since(t0)
	activeAfter := env.metric(ctx, "canvasd_active_canvases")
	if err != nil {
		stopSampling()
		<-sampled
		return rep, err
	}
	rep.add(
		info("canvases touched", fmt.Sprintf("%d in %.1f s (%.0f canvases/s; errors: %s)", done.Load(), touchDur.Seconds(),
			float64(done.Load())/touchDur.Seconds(), orZero(formatErrors(errs.Snapshot())))),
		info("canvasd_active_canvases right after touching", fmt.Sprintf("%.0f", activeAfter)),
	)

	// Passivation: wait for the active canvases to drop to 0.
	env.prog.note("touch: waiting for passivation (idle timeout %s) ...", s.IdleTimeout)
	tp := time.Now()
	passDeadline := tp.Add(4*s.IdleTimeout + 30*time.Second)
	active := activeAfter
	for active != 0 && time.Now().Before(passDeadline) && ctx.Err() == nil {
		time.Sleep(250 * time.Millisecond)
		active = env.metric(ctx, "canvasd_active_canvases")
	}
	passDur := time.Since(tp)
	// Then give the RSS --settle to come back under 2x idle.
	ts := time.Now()
	rss, _ := env.rss()
	for !backUnder(rss, idle, targetRSSFactor) && time.Since(ts) < s.Settle && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		rss, _ = env.rss()
	}
	settleDur := time.Since(ts)
	stopSampling()
	<-sampled
	_, hwm := env.rss()
	peak := max(sampler.peak.Load(), hwm)
	rep.add(
		info("passivation: time to canvasd_active_canvases = 0", fmt.Sprintf("%.1f s after touching ended", passDur.Seconds())),
		info("peak RSS (max of VmRSS samples and VmHWM)", fmtBytes(peak)),
		check("RSS after passivation", fmt.Sprintf("%s = %.2fx idle (%.1f s after passivation)", fmtBytes(rss), ratio(rss, idle), settleDur.Seconds()),
			fmt.Sprintf("< %.0fx idle (%s)", targetRSSFactor, fmtBytes(int64(targetRSSFactor*float64(idle)))), backUnder(rss, idle, targetRSSFactor)),
		check("canvasd_active_canvases at the end", fmt.Sprintf("%.0f", active), "0", active == 0),
	)
	if env.debugURL != "" && env.pid > 0 {
		m := env.memStats(ctx) // forced GC
		time.Sleep(time.Second)
		r, _ := env.rss()
		rep.add(info("after a forced GC (pprof heap?gc=1)", fmt.Sprintf("RSS %s = %.2fx idle; Go HeapInuse %s HeapIdle %s HeapReleased %s HeapSys %s Stack %s Sys %s",
			fmtBytes(r), ratio(r, idle), fmtBytes(m["HeapInuse"]), fmtBytes(m["HeapIdle"]), fmtBytes(m["HeapReleased"]), fmtBytes(m["HeapSys"]), fmtBytes(m["Stack"]), fmtBytes(m["Sys"]))))
	}
	return rep, nil
}

func ratio(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ctxErr keeps a worker going after a failed request unless the run ends.
func ctxErr(ctx context.Context) error { return ctx.Err() }
