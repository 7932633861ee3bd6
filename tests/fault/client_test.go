package fault

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// pullState pulls canvas with cookie and applies the patch onto state
// (a copy; nil: empty). It returns the new state and cookie.
func pullState(ctx context.Context, hc *http.Client, base, canvas, group string, cookie json.RawMessage, state map[string]any) (map[string]any, json.RawMessage, error) {
	if cookie == nil {
		cookie = json.RawMessage("null")
	}
	body, _ := json.Marshal(map[string]any{"profileID": "fault", "clientGroupID": group, "cookie": cookie, "pullVersion": 1, "schemaVersion": "1"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/canvases/"+canvas+"/replicache/pull", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("pull: status %d: %.200s", resp.StatusCode, raw)
	}
	var pr struct {
		Error  string          `json:"error"`
		Cookie json.RawMessage `json:"cookie"`
		Patch  []struct {
			Op    string          `json:"op"`
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		} `json:"patch"`
	}
	if err := json.Unmarshal(raw, &pr); err != nil {
		return nil, nil, fmt.Errorf("pull: %w: %.200s", err, raw)
	}
	if pr.Error != "" {
		return nil, nil, fmt.Errorf("pull: %w: %s", errClientState, pr.Error)
	}
	next := make(map[string]any, len(state)+len(pr.Patch))
	for k, v := range state {
		next[k] = v
	}
	for _, op := range pr.Patch {
		switch op.Op {
		case "clear":
			clear(next)
		case "put":
			var v any
			if err := json.Unmarshal(op.Value, &v); err != nil {
				return nil, nil, err
			}
			next[op.Key] = v
		case "del":
			delete(next, op.Key)
		default:
			return nil, nil, fmt.Errorf("pull: unknown patch op %q", op.Op)
		}
	}
	return next, pr.Cookie, nil
}

var errClientState = errors.New("client state not found")

// counters are the errors one client saw.
type counters struct {
	PushErrors, PullErrors, StreamErrors, Resets int
	FirstPushErrors                              []string
}

// goClient speaks the exact Replicache protocol: it pushes its mutations
// until acknowledged (re-sending the unacknowledged ones, as Replicache
// does), pulls only when its event stream pokes it or opens, and keeps a
// model of what it was acknowledged.
type goClient struct {
	who, canvas, group, clientID string
	idx                          int // unique x values: idx*100000 + mutation id
	base                         string
	hc                           *http.Client
	rng                          *rand.Rand

	mu       sync.Mutex
	nextID   int64
	pending  []mutation
	acked    int64
	state    map[string]any
	cookie   json.RawMessage
	errs     counters
	ackTimes []time.Time
	pushLat  []pushSample
	// changedAt is when the state last changed: a client found equal to
	// the database got there at that moment.
	changedAt time.Time

	nodes []string // own live nodes, oldest first (writer goroutine only)
	edges []string
	seq   int

	pushCh, pullCh chan struct{}
	streamOpen     atomic.Bool
}

type mutation struct {
	ID       int64  `json:"id"`
	ClientID string `json:"clientID"`
	Name     string `json:"name"`
	Args     any    `json:"args"`
	TS       int64  `json:"timestamp"`
}

type pushSample struct {
	start time.Time
	took  time.Duration
	ok    bool
}

func newGoClient(who, canvas string, idx int, p *proxy, seed uint64) *goClient {
	return &goClient{
		who: who, canvas: canvas, idx: idx, base: p.base,
		group: "g-" + who, clientID: "c-" + who,
		hc:     &http.Client{Transport: p.c.tr, Timeout: 15 * time.Second},
		rng:    rand.New(rand.NewPCG(seed, uint64(idx))),
		state:  map[string]any{},
		pushCh: make(chan struct{}, 1), pullCh: make(chan struct{}, 1),
	}
}

func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run starts the stream, puller and pusher; they stop with ctx.
func (g *goClient) run(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(3)
	go func() { defer wg.Done(); g.streamLoop(ctx) }()
	go func() { defer wg.Done(); g.pullLoop(ctx) }()
	go func() { defer wg.Done(); g.pushLoop(ctx) }()
}

// write issues n random mutations, one every interval (jittered), until
// ctx or stop ends.
func (g *goClient) write(ctx context.Context, stop <-chan struct{}, n int, interval time.Duration) {
	for range n {
		d := interval/2 + time.Duration(g.rng.Int64N(int64(interval)))
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-time.After(d):
		}
		g.mutate()
	}
}

func (g *goClient) mutate() {
	g.mu.Lock()
	g.nextID++
	id := g.nextID
	g.mu.Unlock()
	tag := fmt.Sprintf("%s.%d", g.who, id)
	x := float64(g.idx*100000) + float64(id)
	var name string
	var args any
	r := g.rng.IntN(100)
	switch {
	case len(g.nodes) < 2 || r < 25:
		g.seq++
		nid := fmt.Sprintf("%sn%d", g.who, g.seq)
		g.nodes = append(g.nodes, nid)
		name, args = "createNode", map[string]any{"id": nid, "kind": "note", "x": x, "y": float64(g.rng.IntN(1000)), "w": 200, "h": 120, "title": tag, "body": ""}
	case r < 55:
		name, args = "moveNode", map[string]any{"id": g.nodes[g.rng.IntN(len(g.nodes))], "x": x, "y": float64(g.rng.IntN(1000))}
	case r < 75:
		name, args = "updateNode", map[string]any{"id": g.nodes[g.rng.IntN(len(g.nodes))], "title": tag}
	case r < 85:
		i := g.rng.IntN(len(g.nodes))
		name, args = "deleteNode", map[string]any{"id": g.nodes[i]}
		g.nodes = append(g.nodes[:i:i], g.nodes[i+1:]...)
	case r < 95 || len(g.edges) == 0:
		// From an older node to a newer one of this client: acyclic.
		i := g.rng.IntN(len(g.nodes) - 1)
		j := i + 1 + g.rng.IntN(len(g.nodes)-i-1)
		g.seq++
		eid := fmt.Sprintf("%se%d", g.who, g.seq)
		g.edges = append(g.edges, eid)
		name, args = "createEdge", map[string]any{"id": eid, "from": g.nodes[i], "to": g.nodes[j]}
	default:
		i := g.rng.IntN(len(g.edges))
		name, args = "deleteEdge", map[string]any{"id": g.edges[i]}
		g.edges = append(g.edges[:i:i], g.edges[i+1:]...)
	}
	g.mu.Lock()
	g.pending = append(g.pending, mutation{ID: id, ClientID: g.clientID, Name: name, Args: args, TS: time.Now().UnixMilli()})
	g.mu.Unlock()
	kick(g.pushCh)
}

func (g *goClient) pushLoop(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.pushCh:
		}
		for {
			g.mu.Lock()
			batch := append([]mutation(nil), g.pending[:min(len(g.pending), 50)]...)
			g.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			if err := g.push(ctx, batch); err != nil {
				g.mu.Lock()
				g.errs.PushErrors++
				if len(g.errs.FirstPushErrors) < 3 {
					g.errs.FirstPushErrors = append(g.errs.FirstPushErrors, time.Now().Format("15:04:05.000 ")+err.Error())
				}
				g.mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, time.Second)
				continue
			}
			backoff = 50 * time.Millisecond
		}
	}
}

func (g *goClient) push(ctx context.Context, batch []mutation) error {
	body, _ := json.Marshal(map[string]any{"profileID": "fault", "clientGroupID": g.group, "pushVersion": 1, "schemaVersion": "1", "mutations": batch})
	start := time.Now()
	err := func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/api/canvases/"+g.canvas+"/replicache/push", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := g.hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(raw)) != "{}" {
			return fmt.Errorf("push: %d %.200s", resp.StatusCode, raw)
		}
		return nil
	}()
	took := time.Since(start)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pushLat = append(g.pushLat, pushSample{start, took, err == nil})
	if err != nil {
		return err
	}
	last := batch[len(batch)-1].ID
	if last > g.acked {
		g.acked = last
	}
	g.ackTimes = append(g.ackTimes, time.Now())
	for len(g.pending) > 0 && g.pending[0].ID <= last {
		g.pending = g.pending[1:]
	}

	return nil
}

func (g *goClient) pullLoop(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.pullCh:
		}
		for {
			g.mu.Lock()
			cookie, state := g.cookie, g.state
			g.mu.Unlock()
			next, nc, err := pullState(ctx, g.hc, g.base, g.canvas, g.group, cookie, state)
			if err == nil {
				g.mu.Lock()
				if !sameState(next, g.state) {
					g.changedAt = time.Now()
				}
				g.state, g.cookie = next, nc
				g.mu.Unlock()
				backoff = 50 * time.Millisecond
				break
			}
			if ctx.Err() != nil {
				return
			}
			g.mu.Lock()
			g.errs.PullErrors++
			if errors.Is(err, errClientState) {
				g.errs.Resets++
				g.cookie, g.state = nil, map[string]any{}
			}
			g.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Second)
		}
	}
}

// streamLoop keeps an event stream open; it pulls when the stream opens
// and on every poke, and reconnects after a short pause when it ends.
func (g *goClient) streamLoop(ctx context.Context) {
	sc := &http.Client{Transport: g.hc.Transport}
	for ctx.Err() == nil {
		err := g.stream(ctx, sc)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			g.mu.Lock()
			g.errs.StreamErrors++
			g.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(100+time.Now().UnixNano()%200) * time.Millisecond):
		}
	}
}

func (g *goClient) stream(ctx context.Context, sc *http.Client) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+"/api/canvases/"+g.canvas+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := sc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("events: status %d", resp.StatusCode)
	}
	g.streamOpen.Store(true)
	defer g.streamOpen.Store(false)
	kick(g.pullCh)
	br := bufio.NewReader(resp.Body)
	event := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if event == "poke" {
				kick(g.pullCh)
			}
			event = ""
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		}
	}
}

func (g *goClient) lastChange() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changedAt
}

// snapshot returns the client's state, pending count, model and errors.
func (g *goClient) snapshot() (map[string]any, int, ackModel, counters) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state, len(g.pending), ackModel{who: g.who, canvas: g.canvas, clientID: g.clientID, acked: g.acked}, g.errs
}
