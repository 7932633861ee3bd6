package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The presence scenario measures how fast a presence update reaches a
// stream on the instance it was posted to and on another instance, and
// what many moving cursors on one canvas cost: canvasd CPU and the bytes
// each subscriber receives.

// presenceStream is one event stream of the scenario: it counts what it
// receives and records when each probe sequence number arrived.
type presenceStream struct {
	bytes  atomic.Int64
	events atomic.Int64
	mu     sync.Mutex
	probes map[int]time.Time
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// openPresenceStream subscribes to canvas on base as clientID ("" for
// none) and reads it until ctx ends.
func openPresenceStream(ctx context.Context, hc *http.Client, base, canvas, clientID string) (*presenceStream, error) {
	url := base + canvasPath(canvas) + "/events"
	if clientID != "" {
		url += "?clientID=" + clientID
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET events: %s", resp.Status)
	}
	ps := &presenceStream{probes: map[int]time.Time{}}
	go func() {
		defer resp.Body.Close()
		_ = readSSE(countingReader{resp.Body, &ps.bytes}, func(ev sseEvent) {
			if ev.Event != "presence" {
				return
			}
			at := time.Now()
			ps.events.Add(1)
			if !strings.Contains(ev.Data, `"probe"`) {
				return
			}
			var p struct {
				State struct {
					Seq *int `json:"seq"`
				} `json:"state"`
			}
			if json.Unmarshal([]byte(ev.Data), &p) == nil && p.State.Seq != nil {
				ps.mu.Lock()
				if _, ok := ps.probes[*p.State.Seq]; !ok {
					ps.probes[*p.State.Seq] = at
				}
				ps.mu.Unlock()
			}
		})
	}()
	return ps, nil
}

func (ps *presenceStream) arrival(seq int) (time.Time, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	at, ok := ps.probes[seq]
	return at, ok
}

// cpuTime returns the user+system CPU time of process pid (0 if unknown).
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

func postPresence(ctx context.Context, a *api, canvas, clientID string, state any) error {
	_, err := a.post(ctx, canvasPath(canvas)+"/presence", map[string]any{"clientID": clientID, "state": state}, http.StatusNoContent)
	return err
}

func runPresenceScenario(ctx context.Context, env *scenEnv) (*ScenarioReport, error) {
	cfg, s := env.cfg, env.cfg.Scen
	a := env.api
	canvas := "presence-" + randID(6)
	rep := &ScenarioReport{
		Title: "scenario presence",
		Params: fmt.Sprintf("samples=%d interval=%s cursors=%d at %.0f/s, subscribers=%d, duration=%s, server=%s second=%s",
			s.Samples, s.SampleInterval, s.Cursors, s.CursorRate, s.Subscribers, cfg.Duration, env.base, orDash(env.base2)),
	}
	if err := a.createCanvas(ctx, canvas); err != nil {
		return nil, fmt.Errorf("create canvas: %w", err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	hc := newSSEClient()

	// Latency: one probe client posts to the first instance; a stream on
	// each instance notes when each probe arrives.
	env.prog.note("presence: %d latency probes ...", s.Samples)
	local, err := openPresenceStream(sctx, hc, env.base, canvas, "")
	if err != nil {
		return nil, err
	}
	var remote *presenceStream
	if env.base2 != "" {
		if remote, err = openPresenceStream(sctx, hc, env.base2, canvas, ""); err != nil {
			return nil, err
		}
	}
	sent := make([]time.Time, s.Samples)
	var postErrs atomic.Int64
	for i := range s.Samples {
		sent[i] = time.Now()
		if err := postPresence(ctx, a, canvas, "probe", map[string]any{"seq": i, "x": i, "y": i}); err != nil {
			postErrs.Add(1)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(s.SampleInterval):
		}
	}
	time.Sleep(time.Second) // stragglers
	measure := func(ps *presenceStream) (*Hist, int) {
		h, missed := NewHist(), 0
		for i, t0 := range sent {
			at, ok := ps.arrival(i)
			if !ok {
				missed++
				continue
			}
			h.Record(at.Sub(t0))
		}
		return h, missed
	}
	hl, ml := measure(local)
	rep.add(info("presence latency (ms), same instance: post sent -> event read", fmtHist(hl)), info("… probes not received (coalesced away: newest wins)", strconv.Itoa(ml)))
	if remote != nil {
		hr, mr := measure(remote)
		rep.add(info("presence latency (ms), across two instances", fmtHist(hr)), info("… probes not received (coalesced away: newest wins)", strconv.Itoa(mr)))
	} else {
		rep.note("no second instance (--url2): cross-instance latency not measured")
	}
	_ = postPresence(ctx, a, canvas, "probe", nil)

	// Cost: cursors move at CursorRate on one canvas watched by
	// Subscribers streams on the first instance.
	env.prog.note("presence: %d cursors at %.0f/s, %d subscribers, %s ...", s.Cursors, s.CursorRate, s.Subscribers, cfg.Duration)
	subs := make([]*presenceStream, s.Subscribers)
	for i := range subs {
		if subs[i], err = openPresenceStream(sctx, hc, env.base, canvas, fmt.Sprintf("cursor-%d", i)); err != nil {
			return nil, err
		}
	}
	time.Sleep(500 * time.Millisecond)
	var bytes0, events0 int64
	for _, ps := range subs {
		bytes0 += ps.bytes.Load()
		events0 += ps.events.Load()
	}
	cpu0, cpu20, self0 := cpuTime(env.pid), cpuTime(env.pid2), cpuTime(os.Getpid())
	start := time.Now()
	wctx, wstop := context.WithTimeout(ctx, cfg.Duration)
	defer wstop()
	var posts atomic.Int64
	postTimes := NewHist()
	var wg sync.WaitGroup
	period := time.Duration(float64(time.Second) / s.CursorRate)
	for c := range s.Cursors {
		wg.Go(func() {
			id := fmt.Sprintf("cursor-%d", c)
			t := time.NewTicker(period)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-wctx.Done():
					return
				case <-t.C:
				}
				state := map[string]any{"x": float64(c*10 + i%500), "y": float64(i % 300), "name": id, "color": "#3b82f6"}
				t0 := time.Now()
				err := postPresence(wctx, a, canvas, id, state)
				postTimes.Record(time.Since(t0))
				if err != nil {
					if wctx.Err() == nil {
						postErrs.Add(1)
					}
					continue
				}
				posts.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, cpu21, self1 := cpuTime(env.pid), cpuTime(env.pid2), cpuTime(os.Getpid())
	var bytes1, events1 int64
	for _, ps := range subs {
		bytes1 += ps.bytes.Load()
		events1 += ps.events.Load()
	}
	secs := elapsed.Seconds()
	n := float64(len(subs))
	rep.add(
		info("presence posts accepted", fmt.Sprintf("%d (%.0f/s offered %.0f/s); errors %d", posts.Load(), float64(posts.Load())/secs, float64(s.Cursors)*s.CursorRate, postErrs.Load())),
		info("presence post round trip (ms)", fmtHist(postTimes)),
		info("events received per subscriber", fmt.Sprintf("%.0f/s", float64(events1-events0)/secs/n)),
		info("bytes received per subscriber", fmt.Sprintf("%s/s", fmtBytes(int64(float64(bytes1-bytes0)/secs/n)))),
	)
	if env.pid > 0 {
		used := (cpu1 - cpu0).Seconds()
		perEvent := "-"
		if delivered := events1 - events0; delivered > 0 {
			perEvent = fmt.Sprintf("%.1f µs CPU per event delivered (posts included)", used/float64(delivered)*1e6)
		}
		rep.add(info("canvasd CPU, instance with the posts and streams", fmt.Sprintf("%.2f cores; %s", used/secs, perEvent)))
	}
	if env.pid2 > 0 {
		rep.add(info("canvasd CPU, second instance (relays only, no streams)", fmt.Sprintf("%.2f cores", (cpu21-cpu20).Seconds()/secs)))
	}
	rep.add(info("canvasbench CPU (load generator)", fmt.Sprintf("%.2f cores", (self1-self0).Seconds()/secs)))
	return rep, nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
