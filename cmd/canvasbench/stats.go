package main

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Hist is a log-linear latency histogram in microseconds (HDR-style): values
// below histSub are exact, above that each power of two is split into
// histSub/2 buckets, so a reported percentile is within 1/128 (< 0.8 %) of
// the true sample. Safe for concurrent use.
type Hist struct {
	mu       sync.Mutex
	counts   []int64
	n        int64
	min, max int64
	sum      float64
}

const (
	histSub     = 256 // exact below this; then histSub/2 buckets per power of two
	histHalf    = histSub / 2
	histBuckets = histSub + 64*histHalf
)

func NewHist() *Hist { return &Hist{counts: make([]int64, histBuckets), min: math.MaxInt64} }

func histIndex(v int64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - bits.Len64(histSub-1) // v>>e in [histHalf, histSub)
	return histSub + (e-1)*histHalf + int(v>>e) - histHalf
}

// histMid is a representative value (the middle) of bucket i.
func histMid(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := (i-histSub)/histHalf + 1
	m := int64((i-histSub)%histHalf + histHalf)
	lo := m << e
	hi := (m+1)<<e - 1
	return lo + (hi-lo)/2
}

// Record adds one duration.
func (h *Hist) Record(d time.Duration) {
	v := d.Microseconds()
	if v < 0 {
		v = 0
	}
	h.mu.Lock()
	h.counts[histIndex(v)]++
	h.n++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
	h.mu.Unlock()
}

// Count is the number of recorded values.
func (h *Hist) Count() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Quantile returns the nearest-rank q-quantile (q in [0,1]); 0 if empty.
// The exact minimum and maximum are returned for q = 0 and q = 1.
func (h *Hist) Quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min) * time.Microsecond
	}
	if q >= 1 {
		return time.Duration(h.max) * time.Microsecond
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var cum int64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			v := min(max(histMid(i), h.min), h.max)
			return time.Duration(v) * time.Microsecond
		}
	}
	return time.Duration(h.max) * time.Microsecond
}

// Mean is the arithmetic mean; 0 if empty.
func (h *Hist) Mean() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum/float64(h.n)) * time.Microsecond
}

// Errors counts errors by kind. Safe for concurrent use.
type Errors struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *Errors) Add(kind string) {
	e.mu.Lock()
	if e.m == nil {
		e.m = map[string]int64{}
	}
	e.m[kind]++
	e.mu.Unlock()
}

func (e *Errors) Total() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var t int64
	for _, n := range e.m {
		t += n
	}
	return t
}

// Snapshot returns a copy of the counts.
func (e *Errors) Snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}

// formatErrors renders {"http_503": 3, "timeout": 1} as "http_503:3 timeout:1".
func formatErrors(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(m[k], 10))
	}
	return b.String()
}

// chooser picks a canvas index in [0, n): uniformly, or Zipf-distributed
// with canvas 0 the hottest. Not safe for concurrent use (one per goroutine).
type chooser struct {
	n    int
	r    *rand.Rand
	zipf *rand.Zipf
}

func newChooser(n int, dist string, s float64, seed uint64) *chooser {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	c := &chooser{n: n, r: r}
	if dist == "zipf" && n > 1 {
		c.zipf = rand.NewZipf(r, s, 1, uint64(n-1))
	}
	return c
}

func (c *chooser) next() int {
	if c.zipf != nil {
		return int(c.zipf.Uint64())
	}
	return c.r.IntN(c.n)
}
