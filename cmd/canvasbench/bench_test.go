package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHistQuantiles(t *testing.T) {
	h := NewHist()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{.5, 500 * time.Millisecond}, {.95, 950 * time.Millisecond}, {.99, 990 * time.Millisecond}} {
		got := h.Quantile(tc.q)
		if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 0.01 {
			t.Errorf("q%.2f = %v, want %v ±1%%", tc.q, got, tc.want)
		}
	}
	if got := h.Quantile(1); got != time.Second {
		t.Errorf("max = %v, want 1s", got)
	}
	if got := h.Quantile(0); got != time.Millisecond {
		t.Errorf("min = %v, want 1ms", got)
	}
	if h.Count() != 1000 {
		t.Errorf("count = %d", h.Count())
	}
	if m := h.Mean(); m < 495*time.Millisecond || m > 506*time.Millisecond {
		t.Errorf("mean = %v", m)
	}
}

func TestHistSmallAndEmpty(t *testing.T) {
	h := NewHist()
	if h.Quantile(.99) != 0 {
		t.Fatal("empty histogram should report 0")
	}
	h.Record(-time.Second) // clamped to 0
	h.Record(37 * time.Microsecond)
	if got := h.Quantile(1); got != 37*time.Microsecond {
		t.Errorf("max = %v", got)
	}
	if got := h.Quantile(.5); got != 0 {
		t.Errorf("p50 = %v, want 0", got)
	}
}

func TestHistBucketsMonotonic(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<22; v += 1 + v/300 {
		i := histIndex(v)
		if i < prev {
			t.Fatalf("index(%d) = %d < previous %d", v, i, prev)
		}
		prev = i
		mid := histMid(i)
		if v >= histSub && math.Abs(float64(mid-v))/float64(v) > 1.0/histHalf {
			t.Fatalf("value %d in bucket %d with mid %d: error too large", v, i, mid)
		}
	}
	if histIndex(math.MaxInt64) >= histBuckets {
		t.Fatal("largest value out of range")
	}
}

func TestChooserBounds(t *testing.T) {
	for _, n := range []int{1, 2, 16, 1000} {
		for _, dist := range []string{"uniform", "zipf"} {
			c := newChooser(n, dist, 1.1, 42)
			counts := make([]int, n)
			for range 20000 {
				k := c.next()
				if k < 0 || k >= n {
					t.Fatalf("%s n=%d: %d out of range", dist, n, k)
				}
				counts[k]++
			}
			if dist == "zipf" && n >= 16 && counts[0] <= counts[n-1] {
				t.Errorf("zipf n=%d: canvas 0 (%d) should be hotter than the last (%d)", n, counts[0], counts[n-1])
			}
		}
	}
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix("move=90, update=5,create=5")
	if err != nil {
		t.Fatal(err)
	}
	if m[opMove] != 90 || m[opUpdate] != 5 || m[opCreate] != 5 || m[opEdge] != 0 || m.total() != 100 {
		t.Fatalf("got %v", m)
	}
	if m.pick(0) != opMove || m.pick(89) != opMove || m.pick(90) != opUpdate || m.pick(99) != opCreate {
		t.Fatal("pick maps wrongly")
	}
	if m.String() != "move=90,update=5,create=5" {
		t.Fatalf("String = %q", m.String())
	}
	for _, bad := range []string{"", "move", "jump=3", "move=-1", "move=x", "move=0"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q): want error", bad)
		}
	}
}

func TestParseSweep(t *testing.T) {
	s, err := ParseSweep("canvases=1,4,16")
	if err != nil || s.Param != "canvases" || len(s.Values) != 3 || s.Values[2] != 16 {
		t.Fatalf("got %+v, %v", s, err)
	}
	if got := s.Apply(Config{Canvases: 2}, 4).Canvases; got != 4 {
		t.Fatalf("Apply: %d", got)
	}
	for _, bad := range []string{"canvases", "speed=1", "canvases=1.5", "rate=0", "rate=a"} {
		if _, err := ParseSweep(bad); err == nil {
			t.Errorf("ParseSweep(%q): want error", bad)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cfg, err := ParseConfig([]string{"--url", "http://127.0.0.1:9"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server != "external" || cfg.Canvases != 16 || cfg.Clients != 4 || cfg.Batch != 1 || cfg.Duration != 10*time.Second {
		t.Fatalf("defaults: %+v", cfg)
	}
	if _, err := ParseConfig([]string{"--url", "http://10.1.2.3:80"}, io.Discard); err == nil {
		t.Error("non-loopback --url accepted")
	}
	if _, err := ParseConfig([]string{"--url", "http://10.1.2.3:80", "--allow-remote"}, io.Discard); err != nil {
		t.Errorf("--allow-remote: %v", err)
	}
	if _, err := ParseConfig([]string{"compare", "--url", "http://127.0.0.1:9"}, io.Discard); err == nil {
		t.Error("compare against an external server accepted")
	}
	if _, err := ParseConfig([]string{"--dist", "zipf", "--zipf-s", "1"}, io.Discard); err == nil {
		t.Error("zipf-s 1 accepted")
	}
	if _, err := ParseConfig([]string{"-h"}, io.Discard); !errors.Is(err, flagErrHelp()) {
		t.Errorf("-h: %v", err)
	}
}

func sampleResults() []*Result {
	var rs []*Result
	for _, mode := range []string{"canvas", "global", "a<b&c"} {
		for _, x := range []float64{1, 4, 16} {
			r := newResult(Config{Canvases: int(x), Clients: 4, Batch: 1, Dist: "uniform", Duration: time.Second}, mode)
			r.Param, r.X = "canvases", x
			r.Mutations = int64(100 * x)
			r.Push.Record(time.Duration(x) * time.Millisecond)
			rs = append(rs, r)
		}
	}
	failed := newResult(Config{Duration: time.Second}, "broken")
	failed.Param, failed.X, failed.Err = "canvases", 4, "canvasd exited <early>"
	return append(rs, failed)
}

func TestSVGWellFormed(t *testing.T) {
	cfg := Config{Sweep: Sweep{Param: "canvases", Values: []float64{1, 4, 16}}}
	for _, rs := range [][]*Result{sampleResults(), sampleResults()[:1], nil} {
		var buf bytes.Buffer
		if err := writeSVG(&buf, cfg, rs); err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(&buf)
		var root string
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("SVG is not well-formed XML: %v", err)
			}
			if se, ok := tok.(xml.StartElement); ok && root == "" {
				root = se.Name.Local
			}
		}
		if root != "svg" {
			t.Fatalf("root element %q", root)
		}
	}
}

func TestCSVAndTable(t *testing.T) {
	rs := sampleResults()
	var buf bytes.Buffer
	if err := writeCSV(&buf, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(rs)+1 {
		t.Fatalf("%d CSV lines for %d results", len(lines), len(rs))
	}
	buf.Reset()
	writeTable(&buf, Config{Sweep: Sweep{Param: "canvases"}, Duration: time.Second}, rs)
	if !strings.Contains(buf.String(), "FAILED: canvasd exited <early>") {
		t.Fatalf("table lacks the failure:\n%s", buf.String())
	}
}

func TestReadSSE(t *testing.T) {
	stream := ": ping\n\nevent: poke\nid: 7\ndata: {\"canvas\":\"a\",\"version\":7}\n\nevent: poke\r\nid: 8\r\ndata: {\"canvas\":\"a\",\"version\":8}\r\n\r\n"
	var evs []sseEvent
	if err := readSSE(strings.NewReader(stream), func(e sseEvent) { evs = append(evs, e) }); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Event != "poke" || evs[0].ID != "7" || evs[1].Data != `{"canvas":"a","version":8}` {
		t.Fatalf("got %+v", evs)
	}
}

// fakeServer is a tiny in-memory stand-in for canvasd's HTTP contract, enough
// to drive the whole load path in a unit test.
type fakeServer struct {
	mu       sync.Mutex
	canvases map[string]*fakeCanvas
}

type fakeCanvas struct {
	version int64
	nodes   map[string]map[string]any
	nodeVer map[string]int64
	lmid    map[string]int64
	subs    map[chan int64]bool
}

func newFakeServer() http.Handler {
	f := &fakeServer{canvases: map[string]*fakeCanvas{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/canvases", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ ID string }
		json.NewDecoder(r.Body).Decode(&body)
		f.mu.Lock()
		f.canvases[body.ID] = &fakeCanvas{nodes: map[string]map[string]any{}, nodeVer: map[string]int64{}, lmid: map[string]int64{}, subs: map[chan int64]bool{}}
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q}`, body.ID)
	})
	mux.HandleFunc("POST /api/canvases/{id}/replicache/push", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Mutations []struct {
				ID       int64
				ClientID string
				Name     string
				Args     map[string]any
			}
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		c := f.canvases[r.PathValue("id")]
		c.version++
		for _, m := range req.Mutations {
			if m.ID != c.lmid[m.ClientID]+1 {
				continue
			}
			c.lmid[m.ClientID] = m.ID
			id, _ := m.Args["id"].(string)
			switch m.Name {
			case "createNode":
				c.nodes[id] = m.Args
			case "moveNode", "updateNode":
				if n := c.nodes[id]; n != nil {
					for k, v := range m.Args {
						n[k] = v
					}
				}
			default:
				continue
			}
			c.nodeVer[id] = c.version
		}
		for ch := range c.subs {
			select {
			case ch <- c.version:
			default:
			}
		}
		w.Write([]byte("{}"))
	})
	mux.HandleFunc("POST /api/canvases/{id}/replicache/pull", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Cookie *struct{ Order int64 } }
		json.NewDecoder(r.Body).Decode(&req)
		var since int64
		if req.Cookie != nil {
			since = req.Cookie.Order
		}
		f.mu.Lock()
		c := f.canvases[r.PathValue("id")]
		patch := []patchOp{}
		for id, v := range c.nodeVer {
			if v > since {
				val, _ := json.Marshal(c.nodes[id])
				patch = append(patch, patchOp{Op: "put", Key: "node/" + id, Value: val})
			}
		}
		ver := c.version
		f.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"cookie": map[string]any{"order": ver}, "lastMutationIDChanges": map[string]int64{}, "patch": patch})
	})
	mux.HandleFunc("GET /api/canvases/{id}/events", func(w http.ResponseWriter, r *http.Request) {
		ch := make(chan int64, 1)
		f.mu.Lock()
		c := f.canvases[r.PathValue("id")]
		c.subs[ch] = true
		f.mu.Unlock()
		defer func() { f.mu.Lock(); delete(c.subs, ch); f.mu.Unlock() }()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case v := <-ch:
				fmt.Fprintf(w, "event: poke\nid: %d\ndata: {\"canvas\":%q,\"version\":%d}\n\n", v, r.PathValue("id"), v)
				w.(http.Flusher).Flush()
			}
		}
	})
	return mux
}

func TestLoadAgainstFakeServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for a few seconds")
	}
	srv := httptest.NewServer(newFakeServer())
	defer srv.Close()
	mix, _ := ParseMix("move=80,update=10,create=5,edge=3,unedge=2")
	for _, rate := range []float64{0, 400} {
		t.Run("rate="+strconv.FormatFloat(rate, 'f', -1, 64), func(t *testing.T) {
			cfg := Config{Canvases: 3, Clients: 2, Batch: 2, Nodes: 10, Mix: mix, Rate: rate, Dist: "zipf", ZipfS: 1.2,
				Duration: 800 * time.Millisecond, Warmup: 200 * time.Millisecond, Drain: time.Second, Timeout: 5 * time.Second, Seed: 1}
			res, err := runLoad(context.Background(), cfg, "fake", srv.URL, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(summaryLine(res), "visible p99", res.Visible.Quantile(.99), "early", res.Early, "pokes", res.Poke.Count())
			if res.Mutations == 0 || res.Push.Count() == 0 {
				t.Fatalf("nothing committed: %+v", res)
			}
			if len(res.Errors) != 0 {
				t.Fatalf("errors: %v", res.Errors)
			}
			if res.Unseen != 0 || res.Stale != 0 {
				t.Errorf("%d observers stale, %d pushes never seen by them", res.Stale, res.Unseen)
			}
			if res.Visible.Count() == 0 || res.Pull.Count() == 0 {
				t.Errorf("no visibility samples: visible %d pull %d", res.Visible.Count(), res.Pull.Count())
			}
			if rate > 0 {
				want := rate * cfg.Duration.Seconds()
				if got := float64(res.Mutations); got < want*0.7 || got > want*1.3 {
					t.Errorf("open loop committed %v mutations, offered %v", got, want)
				}
			}
		})
	}
}

func flagErrHelp() error { return flag.ErrHelp }
