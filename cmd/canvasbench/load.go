package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one run (one mode at one sweep point) measured.
type Result struct {
	Mode     string
	Param    string  // sweep parameter, "" without a sweep
	X        float64 // sweep value
	Round    int     // 1-based round of a --repeat comparison
	Canvases int
	Clients  int
	Batch    int
	Rate     float64 // offered mutations/s; 0 = closed loop
	Dist     string
	Duration time.Duration

	Mutations int64 // committed mutations acknowledged inside the window
	Pushes    int64
	Push      *Hist
	Poke      *Hist
	Visible   *Hist
	Pull      *Hist
	Errors    map[string]int64
	Unseen    int64 // measured pushes on canvases whose observer ended behind the final version
	Stale     int64 // observers still behind their canvas's final version at the end of the drain
	Early     int64 // measured pushes the observer saw before their ack reached the pusher
	NotSent   int64 // open loop: scheduled pushes never sent (client backlog)
	RSS       int64 // bytes at the end of the window; 0 = unknown
	PeakRSS   int64 // bytes, peak (VmHWM); 0 = unknown
	Err       string
}

func newResult(cfg Config, mode string) *Result {
	return &Result{
		Mode: mode, Canvases: cfg.Canvases, Clients: cfg.Clients, Batch: cfg.Batch,
		Rate: cfg.Rate, Dist: cfg.Dist, Duration: cfg.Duration,
		Push: NewHist(), Poke: NewHist(), Visible: NewHist(), Pull: NewHist(),
	}
}

// MutPerSec is the committed mutation rate over the measured window.
func (r *Result) MutPerSec() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Mutations) / r.Duration.Seconds()
}

// canvasState is the bench's view of one canvas.
type canvasState struct {
	idx   int
	id    string
	seq   atomic.Int64 // tag source, unique per canvas
	nodes []string     // node pool created in setup
	box   *pokeBox
	track tracker
	// seenOrder is the cookie order of the observer's latest pull; final
	// is the canvas's version once the load stopped (-1: unknown).
	seenOrder atomic.Int64
	final     int64

	mu      sync.Mutex
	edges   []string // acknowledged createEdge ids, candidates for deleteEdge
	created []string // acknowledged createNode ids, candidates for deleteNode
}

// benchClient is one simulated Replicache client: a client group with one
// client, bound to one canvas. Not safe for concurrent use.
type benchClient struct {
	cv      *canvasState
	group   string
	id      string
	nextID  int64      // next mutation id (Replicache starts at 1)
	pending []mutation // sent but not acknowledged: resent first, as a real client does
	rnd     *rand.Rand
	queue   chan time.Time // open loop: intended start times
}

// loadRun is one run of the HTTP workload.
type loadRun struct {
	cfg    Config
	api    *api
	res    *Result
	errs   Errors
	runID  string
	epoch  time.Time // timestamps of mutations are ms since this
	mStart time.Time // measured window
	mEnd   time.Time

	canvases []*canvasState
	clients  []*benchClient

	totalMuts atomic.Int64 // all acknowledged mutations, for the progress line
	notSent   atomic.Int64
}

func (l *loadRun) inWindow(t time.Time) bool { return !t.Before(l.mStart) && !t.After(l.mEnd) }

// fail records an error of kind if it happened inside the measured window.
func (l *loadRun) fail(kind string, at time.Time) {
	if l.inWindow(at) {
		l.errs.Add(kind)
	}
}

// runLoad drives the protocol workload against base and fills a Result.
// rss, if not nil, reports the server's memory (current, peak) in bytes.
func runLoad(ctx context.Context, cfg Config, mode, base string, rss func() (int64, int64, error), prog *progress) (*Result, error) {
	l := &loadRun{
		cfg:   cfg,
		api:   newAPI(base, cfg.Timeout, cfg.Canvases*(cfg.Clients+2)),
		res:   newResult(cfg, mode),
		runID: randID(6),
		epoch: time.Now(),
	}
	defer l.api.close()

	if err := l.setup(ctx); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}

	// Observers: one SSE listener + puller per canvas.
	obsCtx, stopObs := context.WithCancel(ctx)
	defer stopObs()
	var obsWG sync.WaitGroup
	if !cfg.NoObserver {
		if err := l.startObservers(obsCtx, &obsWG); err != nil {
			return nil, err
		}
	}

	start := time.Now()
	l.mStart = start.Add(cfg.Warmup)
	l.mEnd = l.mStart.Add(cfg.Duration)
	// In-flight requests at the end may finish (unmeasured) within the timeout.
	loadCtx, stopLoad := context.WithDeadline(ctx, l.mEnd.Add(cfg.Timeout))
	defer stopLoad()

	prog.begin(mode, start, l.mStart, l.mEnd, &l.totalMuts, &l.errs)
	defer prog.end()

	var rssNow, rssPeak int64
	rssDone := make(chan struct{})
	go func() { // sample the server's RSS during the window
		defer close(rssDone)
		if rss == nil {
			return
		}
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-loadCtx.Done():
				return
			case now := <-t.C:
				if now.Before(l.mStart) {
					continue
				}
				cur, peak, err := rss()
				if err == nil {
					rssNow = cur
					rssPeak = max(rssPeak, peak, cur)
				}
				if now.After(l.mEnd) {
					return
				}
			}
		}
	}()

	if cfg.Rate > 0 {
		l.openLoop(loadCtx)
	} else {
		l.closedLoop(loadCtx)
	}
	stopLoad()
	<-rssDone
	prog.phaseSet("drain")

	// Drain: give the observers time to reach each canvas's final
	// version. An observer at the final version has seen every push, also
	// those whose effect a later push overwrote or that carry no tag.
	if !cfg.NoObserver {
		l.finalVersions(ctx)
		deadline := time.Now().Add(cfg.Drain)
		for time.Now().Before(deadline) && l.behind() > 0 && ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	stopObs()
	obsWG.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	r := l.res
	if !cfg.NoObserver {
		r.Unseen, r.Stale = l.unseen()
	}
	r.Errors = l.errs.Snapshot()
	r.NotSent = l.notSent.Load()
	r.RSS, r.PeakRSS = rssNow, rssPeak
	return r, nil
}

// finalVersions reads each canvas's version once the load has stopped,
// by a first pull of a client group of its own.
func (l *loadRun) finalVersions(ctx context.Context) {
	for _, cv := range l.canvases {
		cv.final = -1
		req := &pullRequest{ProfileID: "p", ClientGroupID: fmt.Sprintf("final-%s-%d", l.runID, cv.idx),
			Cookie: json.RawMessage("null"), PullVersion: 1, SchemaVersion: "1"}
		resp, err := l.api.pull(ctx, cv.id, req)
		if err != nil {
			if !canceled(err) {
				l.errs.Add("final_" + strings.TrimPrefix(errKind(err), "pull_"))
			}
			continue
		}
		cv.final = int64(cookieOrder(resp.Cookie))
	}
}

// behind counts the observers whose latest pull is older than their
// canvas's final version.
func (l *loadRun) behind() int {
	n := 0
	for _, cv := range l.canvases {
		if cv.final >= 0 && cv.seenOrder.Load() < cv.final {
			n++
		}
	}
	return n
}

// unseen compares each observer's cookie with its canvas's final version
// at the end of the drain. An observer that reached it saw every push of
// its canvas; one still behind is stale, and its canvas's pushes it has
// not seen are unseen. (Counting unresolved pushes instead would call a
// push unseen when a later one overwrote its tag, or when it carried no
// tag: an artefact, not a missed poke.)
func (l *loadRun) unseen() (unseen, stale int64) {
	for _, cv := range l.canvases {
		if cv.final >= 0 && cv.seenOrder.Load() >= cv.final {
			continue
		}
		stale++
		unseen += cv.track.unresolved()
	}
	return unseen, stale
}

// setup creates the canvases, their node pools and the clients.
func (l *loadRun) setup(ctx context.Context) error {
	cfg := l.cfg
	l.canvases = make([]*canvasState, cfg.Canvases)
	for i := range l.canvases {
		cv := &canvasState{idx: i, id: fmt.Sprintf("bench-%s-%d", l.runID, i), box: newPokeBox()}
		cv.track.init(l)
		for j := range cfg.Nodes {
			cv.nodes = append(cv.nodes, "n"+strconv.Itoa(j))
		}
		l.canvases[i] = cv
	}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, cv := range l.canvases {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := l.setupCanvas(gctx, cv); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}

	// Clients. Closed loop: each client is bound to a canvas, uniformly (K
	// per canvas) or by a Zipf draw. Open loop: K per canvas; each push picks
	// its canvas by the distribution instead.
	ch := newChooser(cfg.Canvases, cfg.Dist, cfg.ZipfS, cfg.Seed)
	n := cfg.Canvases * cfg.Clients
	for i := range n {
		cv := l.canvases[i/cfg.Clients]
		if cfg.Rate == 0 && cfg.Dist == "zipf" {
			cv = l.canvases[ch.next()]
		}
		l.clients = append(l.clients, l.newClient(cv, "c", i))
	}
	return nil
}

// setupCanvas creates one canvas and its node pool.
// takeRandom removes and returns a random id of *ids ("" if none), under
// the canvas's lock.
func (cv *canvasState) takeRandom(ids *[]string, rnd *rand.Rand) string {
	cv.mu.Lock()
	defer cv.mu.Unlock()
	n := len(*ids)
	if n == 0 {
		return ""
	}
	k := rnd.IntN(n)
	id := (*ids)[k]
	(*ids)[k] = (*ids)[n-1]
	*ids = (*ids)[:n-1]
	return id
}

func (l *loadRun) setupCanvas(ctx context.Context, cv *canvasState) error {
	if err := l.api.createCanvas(ctx, cv.id); err != nil {
		return fmt.Errorf("create canvas %s: %w", cv.id, err)
	}
	c := l.newClient(cv, "setup", 0)
	for j := 0; j < len(cv.nodes); j += 100 {
		var muts []mutation
		for k := j; k < min(j+100, len(cv.nodes)); k++ {
			muts = append(muts, c.mutation("createNode", map[string]any{
				"id": cv.nodes[k], "kind": "box", "x": 0, "y": float64(10 * k),
				"w": 200, "h": 120, "title": "", "body": "",
			}, 0))
		}
		if err := l.api.push(ctx, cv.id, c.request(muts)); err != nil {
			return fmt.Errorf("create nodes on %s: %w", cv.id, err)
		}
	}
	return nil
}

func (l *loadRun) newClient(cv *canvasState, kind string, i int) *benchClient {
	seed := l.cfg.Seed*1_000_003 + uint64(i)*7919 + uint64(cv.idx)
	return &benchClient{
		cv:     cv,
		group:  fmt.Sprintf("%s-%s-%d-%d-g", kind, l.runID, cv.idx, i),
		id:     fmt.Sprintf("%s-%s-%d-%d", kind, l.runID, cv.idx, i),
		nextID: 1,
		rnd:    rand.New(rand.NewPCG(seed, seed+1)),
	}
}

func (c *benchClient) mutation(name string, args any, tag int64) mutation {
	m := mutation{ID: c.nextID, ClientID: c.id, Name: name, Args: args, tag: tag,
		Timestamp: float64(time.Now().UnixNano()) / 1e6}
	c.nextID++
	return m
}

func (c *benchClient) request(muts []mutation) *pushRequest {
	return &pushRequest{ProfileID: "p", ClientGroupID: c.group, PushVersion: 1, SchemaVersion: "1", Mutations: muts}
}

// nextMutation builds one mutation of the mix. Moves, updates and creates
// carry a tag (x = tag, or title = "s<tag>") so the observer can recognise
// them.
func (l *loadRun) nextMutation(c *benchClient) mutation {
	cv := c.cv
	rnd := c.rnd
	op := l.cfg.Mix.pick(rnd.IntN(l.cfg.Mix.total()))
	y := math.Round(rnd.Float64()*10000) / 10
	switch op {
	case opDelete:
		if id := cv.takeRandom(&cv.created, rnd); id != "" {
			return c.mutation("deleteNode", map[string]any{"id": id}, 0)
		}
	case opUnedge:
		if id := cv.takeRandom(&cv.edges, rnd); id != "" {
			return c.mutation("deleteEdge", map[string]any{"id": id}, 0)
		}
		op = opEdge
	}
	switch op {
	case opEdge:
		// from the lower to the higher pool index: the graph stays acyclic.
		a, b := rnd.IntN(len(cv.nodes)), rnd.IntN(len(cv.nodes)-1)
		if b >= a {
			b++
		} else {
			a, b = b, a
		}
		tag := cv.seq.Add(1)
		return c.mutation("createEdge", map[string]any{"id": "e" + strconv.FormatInt(tag, 10), "from": cv.nodes[a], "to": cv.nodes[b]}, 0)
	case opUpdate:
		tag := cv.seq.Add(1)
		return c.mutation("updateNode", map[string]any{"id": cv.nodes[rnd.IntN(len(cv.nodes))], "title": "s" + strconv.FormatInt(tag, 10)}, tag)
	case opCreate:
		tag := cv.seq.Add(1)
		return c.mutation("createNode", map[string]any{"id": "c" + strconv.FormatInt(tag, 10), "kind": "box",
			"x": float64(tag), "y": y, "w": 200, "h": 120, "title": "", "body": ""}, tag)
	default: // move (also delete with nothing to delete)
		tag := cv.seq.Add(1)
		return c.mutation("moveNode", map[string]any{"id": cv.nodes[rnd.IntN(len(cv.nodes))], "x": float64(tag), "y": y}, tag)
	}
}

// maxPending bounds the unacknowledged mutations a client carries; above it
// the client only resends and adds nothing new.
func (l *loadRun) maxPending() int { return 10 * l.cfg.Batch }

// pushOnce sends the client's pending mutations plus a new batch. origin is
// where push latency counts from (the send time in a closed loop, the
// intended send time in an open loop). It returns the error, if any.
func (l *loadRun) pushOnce(ctx context.Context, c *benchClient, origin time.Time) error {
	muts := c.pending
	if len(muts) < l.maxPending() {
		for range l.cfg.Batch {
			muts = append(muts, l.nextMutation(c))
		}
	}
	rec := &pushRec{}
	for _, m := range muts {
		if m.tag != 0 {
			rec.tags = append(rec.tags, m.tag)
		}
	}
	sent := time.Now()
	c.cv.track.register(rec, sent)
	err := l.api.push(ctx, c.cv.id, c.request(muts))
	ack := time.Now()
	if err != nil {
		c.cv.track.failed(rec)
		if canceled(err) {
			c.pending = muts
			return err
		}
		kind := errKind(err)
		l.fail(kind, ack)
		if strings.HasPrefix(kind, "protocol_") {
			c.pending = nil // the server will not take them; nothing to resend
		} else {
			c.pending = muts
		}
		return err
	}
	c.pending = nil
	measured := l.inWindow(ack)
	if measured {
		l.res.Push.Record(ack.Sub(origin))
		atomic.AddInt64(&l.res.Mutations, int64(len(muts)))
		atomic.AddInt64(&l.res.Pushes, 1)
	}
	l.totalMuts.Add(int64(len(muts)))
	c.cv.track.acked(rec, ack, measured)

	// Remember what may be deleted later.
	for _, m := range muts {
		if m.Name == "createEdge" || m.Name == "createNode" && strings.HasPrefix(m.Args.(map[string]any)["id"].(string), "c") {
			c.cv.mu.Lock()
			id := m.Args.(map[string]any)["id"].(string)
			if m.Name == "createEdge" {
				c.cv.edges = append(c.cv.edges, id)
			} else {
				c.cv.created = append(c.cv.created, id)
			}
			c.cv.mu.Unlock()
		}
	}
	return nil
}

// backoff waits after a failed push: Retry-After (at most 1 s) for 429/503,
// a short pause for other failures so a dead server is not hammered.
func backoff(ctx context.Context, err error) {
	d := 20 * time.Millisecond
	var ce *callError
	if asCallError(err, &ce) && ce.RetryAfter > 0 {
		d = min(ce.RetryAfter, time.Second)
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func asCallError(err error, target **callError) bool {
	ce, ok := err.(*callError)
	if ok {
		*target = ce
	}
	return ok
}

// closedLoop: every client pushes, waits for the answer, pushes again, until
// the window ends.
func (l *loadRun) closedLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range l.clients {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(l.mEnd) {
				if err := l.pushOnce(ctx, c, time.Now()); err != nil && !canceled(err) {
					backoff(ctx, err)
				}
			}
		})
	}
	wg.Wait()
}

// openLoop offers cfg.Rate mutations/s on a fixed schedule of intended start
// times (independent of how fast the server answers). Each push goes to a
// client of a canvas chosen by the distribution; a client sends its pushes in
// order, so a slow server shows up as queueing delay in the push latency,
// which counts from the intended start (no coordinated omission).
func (l *loadRun) openLoop(ctx context.Context) {
	cfg := l.cfg
	var wg sync.WaitGroup
	for _, c := range l.clients {
		c.queue = make(chan time.Time, 4096)
		wg.Go(func() {
			for intended := range c.queue {
				if ctx.Err() != nil || time.Now().After(l.mEnd) {
					l.notSent.Add(1)
					continue
				}
				if d := time.Until(intended); d > 0 {
					time.Sleep(d)
				}
				if err := l.pushOnce(ctx, c, intended); err != nil && !canceled(err) {
					backoff(ctx, err)
				}
			}
		})
	}
	ch := newChooser(cfg.Canvases, cfg.Dist, cfg.ZipfS, cfg.Seed+17)
	rr := make([]int, cfg.Canvases)
	interval := time.Duration(float64(time.Second) * float64(cfg.Batch) / cfg.Rate)
	start := time.Now()
	for i := int64(0); ; i++ {
		intended := start.Add(time.Duration(i) * interval)
		if !intended.Before(l.mEnd) || ctx.Err() != nil {
			break
		}
		if d := time.Until(intended); d > time.Millisecond {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		k := ch.next()
		c := l.clients[k*cfg.Clients+rr[k]%cfg.Clients]
		rr[k]++
		select {
		case c.queue <- intended:
		default:
			l.notSent.Add(1)
			l.fail("client_backlog", intended)
		}
	}
	for _, c := range l.clients {
		close(c.queue)
	}
	wg.Wait()
}

// startObservers gives every canvas an observer client: an SSE listener and
// a puller that pulls on every (coalesced) poke. It returns once every SSE
// stream is connected and every observer has made its first (full) pull.
func (l *loadRun) startObservers(ctx context.Context, wg *sync.WaitGroup) error {
	errs := func(kind string) { l.fail(kind, time.Now()) }
	for _, cv := range l.canvases {
		connected := make(chan struct{})
		wg.Go(func() { listenSSE(ctx, l.api, cv.id, cv.box, errs, connected) })
		select {
		case <-connected:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("SSE stream of %s did not connect within 10s", cv.id)
		case <-ctx.Done():
			return ctx.Err()
		}
		group := fmt.Sprintf("obs-%s-%d", l.runID, cv.idx)
		req := &pullRequest{ProfileID: "p", ClientGroupID: group, Cookie: json.RawMessage("null"), PullVersion: 1, SchemaVersion: "1"}
		resp, err := l.api.pull(ctx, cv.id, req)
		if err != nil {
			return fmt.Errorf("first pull of %s: %w", cv.id, err)
		}
		req.Cookie = resp.Cookie
		cv.seenOrder.Store(int64(cookieOrder(resp.Cookie)))
		wg.Go(func() { l.observe(ctx, cv, req) })
	}
	return nil
}

// observe pulls after every poke and tells the tracker what it saw.
func (l *loadRun) observe(ctx context.Context, cv *canvasState, req *pullRequest) {
	lastOrder := cookieOrder(req.Cookie)
	for {
		select {
		case <-ctx.Done():
			return
		case <-cv.box.wake:
		}
		pokeAt, ok := cv.box.take()
		if !ok {
			continue
		}
		start := time.Now()
		resp, err := l.api.pull(ctx, cv.id, req)
		done := time.Now()
		if err != nil {
			if canceled(err) {
				return
			}
			l.fail("pull_"+strings.TrimPrefix(errKind(err), "pull_"), done)
			if errKind(err) == "protocol_ClientStateNotFound" {
				req.Cookie = json.RawMessage("null")
			}
			cv.box.put(pokeAt) // pull again
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if l.inWindow(done) {
			l.res.Pull.Record(done.Sub(start))
		}
		if o := cookieOrder(resp.Cookie); o < lastOrder {
			l.fail("pull_cookie_went_back", done)
		} else {
			lastOrder = o
		}
		req.Cookie = resp.Cookie
		cv.seenOrder.Store(int64(lastOrder))
		cv.track.observe(patchTags(*resp.Patch), done, pokeAt)
	}
}

// patchTags extracts the bench tags from the node values of a patch.
func patchTags(patch []patchOp) []int64 {
	var tags []int64
	for _, op := range patch {
		if op.Op != "put" || !strings.HasPrefix(op.Key, "node/") {
			continue
		}
		var v struct {
			X     float64 `json:"x"`
			Title string  `json:"title"`
		}
		if json.Unmarshal(op.Value, &v) != nil {
			continue
		}
		if v.X >= 1 && v.X == math.Trunc(v.X) && v.X < 1<<53 {
			tags = append(tags, int64(v.X))
		}
		if t, ok := strings.CutPrefix(v.Title, "s"); ok {
			if n, err := strconv.ParseInt(t, 10, 64); err == nil && n > 0 {
				tags = append(tags, n)
			}
		}
	}
	return tags
}

// pushRec is one push as the visibility tracker sees it.
type pushRec struct {
	tags     []int64
	sent     time.Time
	ack      time.Time
	acked    bool
	failed   bool
	early    bool // the observer saw it before the ack
	resolved bool
	measured bool // acked inside the window: its latencies count
}

// tracker matches a canvas's acknowledged pushes with what its observer
// sees. Definition (also in the usage text):
//
//   - A push P is visible at the first observer pull that completes after
//     P's ack and whose patch contains P's tag, or the tag of any push sent
//     after P's ack (a push sent after P was acknowledged commits at a higher
//     canvas version, and a pull returns every row above its cookie, so P's
//     effects are in that pull too). visible = pull completion - ack.
//   - poke = arrival of the latest poke before that pull was sent - ack.
//   - Both are 0 if the observer saw P before the ack reached the pusher.
//
// A push whose tag is overwritten by a concurrent push (sent before P's ack)
// resolves only at a later pull, so the numbers err on the high side.
type tracker struct {
	l       *loadRun
	mu      sync.Mutex
	byTag   map[int64]*pushRec
	pending []*pushRec // acknowledged, not yet seen
}

func (t *tracker) init(l *loadRun) { t.l, t.byTag = l, map[int64]*pushRec{} }

func (t *tracker) register(rec *pushRec, sent time.Time) {
	t.mu.Lock()
	rec.sent = sent
	for _, tag := range rec.tags {
		t.byTag[tag] = rec
	}
	t.mu.Unlock()
}

func (t *tracker) failed(rec *pushRec) {
	t.mu.Lock()
	rec.failed = true
	for _, tag := range rec.tags {
		if t.byTag[tag] == rec {
			delete(t.byTag, tag)
		}
	}
	t.mu.Unlock()
}

func (t *tracker) acked(rec *pushRec, at time.Time, measured bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rec.ack, rec.acked, rec.measured = at, true, measured
	if rec.early {
		if measured {
			atomic.AddInt64(&t.l.res.Early, 1)
		}
		t.resolve(rec, at, at)
		return
	}
	t.pending = append(t.pending, rec)
}

func (t *tracker) observe(tags []int64, pulled, pokeAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var horizon time.Time // latest send time among the pushes seen
	for _, tag := range tags {
		rec := t.byTag[tag]
		if rec == nil || rec.failed {
			continue
		}
		if rec.sent.After(horizon) {
			horizon = rec.sent
		}
		if !rec.acked {
			rec.early = true
		} else if !rec.resolved {
			t.resolve(rec, pulled, pokeAt)
		}
	}
	keep := t.pending[:0]
	for _, rec := range t.pending {
		if !rec.resolved && !horizon.IsZero() && !rec.ack.After(horizon) {
			t.resolve(rec, pulled, pokeAt)
		}
		if !rec.resolved {
			keep = append(keep, rec)
		}
	}
	clear(t.pending[len(keep):])
	t.pending = keep
}

func (t *tracker) resolve(rec *pushRec, visibleAt, pokeAt time.Time) {
	rec.resolved = true
	if rec.measured {
		t.l.res.Visible.Record(max(visibleAt.Sub(rec.ack), 0))
		t.l.res.Poke.Record(max(pokeAt.Sub(rec.ack), 0))
	}
	for _, tag := range rec.tags {
		if t.byTag[tag] == rec {
			delete(t.byTag, tag)
		}
	}
}

// unresolved counts measured pushes not yet seen.
func (t *tracker) unresolved() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var n int64
	for _, rec := range t.pending {
		if rec.measured && !rec.resolved {
			n++
		}
	}
	return n
}

func randID(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b strings.Builder
	for range n {
		b.WriteByte(alphabet[rand.IntN(len(alphabet))])
	}
	return b.String()
}
