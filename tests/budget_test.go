package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/httpapi"
	"github.com/canvasd/canvasd/tests/harness"
)

func withCanvasBudget(n int64) harness.Option {
	return func(a *actors.Config, h *httpapi.Config) {
		a.Limits.MaxBytes = n
		h.Limits.MaxBytes = n
	}
}

// TestCanvasByteBudget: one writer cannot grow a canvas past its byte
// budget. The mutation that would is a permanent error: skipped, its
// client's lastMutationID advances, nothing of it is stored, and the
// canvas goes on taking mutations that fit (or shrink it).
func TestCanvasByteBudget(t *testing.T) {
	t.Parallel()
	s := newServer(t, withCanvasBudget(64<<10))
	s.CreateCanvas(t, "c")
	body := strings.Repeat("b", 30<<10)
	withBody := func(id string) map[string]any {
		n := node(id, 0, 0)
		n["body"] = body
		return n
	}
	mustPush(t, s, "c", "g", M{1, "a", "createNode", withBody("n1")}, M{2, "a", "createNode", withBody("n2")})
	mustPush(t, s, "c", "g", M{3, "a", "createNode", withBody("n3")})
	mustPush(t, s, "c", "g", M{4, "a", "updateNode", map[string]any{"id": "n1", "title": strings.Repeat("t", 200), "body": body + body}})
	mustPush(t, s, "c", "g", M{5, "a", "createNode", node("small", 1, 1)})
	p := s.Pull(t, "c", "g", nil)
	require.Equal(t, int64(5), p.LastMutationIDChanges["a"])
	vals := values(t, p)
	require.Contains(t, vals, "node/n1")
	require.Contains(t, vals, "node/n2")
	require.NotContains(t, vals, "node/n3", "the node past the budget was refused")
	require.Len(t, vals["node/n1"]["body"], len(body), "the growth past the budget was refused")
	require.Contains(t, vals, "node/small", "what fits still goes in")

	// Deleting gives room back.
	mustPush(t, s, "c", "g", M{6, "a", "deleteNode", map[string]any{"id": "n2"}}, M{7, "a", "createNode", withBody("n3")})
	require.Contains(t, values(t, s.Pull(t, "c", "g", nil)), "node/n3")
}

// TestLargeInitialPullIsStreamed: an initial pull of more rows than are
// shared in memory is written straight into the response; it holds every
// row, and a second pull of the same version gets the same rows.
func TestLargeInitialPullIsStreamed(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	const n = 5000
	id := int64(0)
	for batch := 0; batch < n/1000; batch++ {
		ms := make([]M, 1000)
		for i := range ms {
			id++
			ms[i] = M{id, "a", "createNode", node(fmt.Sprintf("n%d", id), float64(i), 0)}
		}
		mustPush(t, s, "c", "g", ms...)
	}
	first := s.Pull(t, "c", "g", nil)
	require.Len(t, first.Patch, 1+1+n, "clear, the canvas, every node")
	require.Equal(t, "clear", first.Patch[0].Op)
	second := s.Pull(t, "c", "g2", nil)
	require.ElementsMatch(t, first.Patch, second.Patch)
}

// TestMeasureFullCanvasMemory measures the heap a canvas filled to the
// default byte budget holds, and what one initial pull of it adds at its
// peak. It only runs with CANVASD_MEASURE_MEMORY=1, alone:
//
//	CANVASD_MEASURE_MEMORY=1 go test -count=1 -run TestMeasureFullCanvasMemory -v ./tests/
func TestMeasureFullCanvasMemory(t *testing.T) {
	if os.Getenv("CANVASD_MEASURE_MEMORY") == "" {
		t.Skip("set CANVASD_MEASURE_MEMORY=1 to measure")
	}
	for _, shape := range []struct {
		name  string
		nodes int
		body  int
	}{
		{"text-heavy: 256 nodes of 64,000-byte bodies", 256, 64_000},
		{"many nodes: 20,000 nodes of 700-byte bodies", 20_000, 700},
	} {
		t.Run(shape.name, func(t *testing.T) { measureCanvas(t, shape.nodes, shape.body) })
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func measureCanvas(t *testing.T, nodes, bodyLen int) {
	s := newServer(t)
	s.CreateCanvas(t, "c")
	before := heapInUse()
	body := strings.Repeat("b", bodyLen)
	per := max(1, min(1000, (6<<20)/(bodyLen+200)))
	id := int64(0)
	for id < int64(nodes) {
		ms := make([]M, 0, per)
		for len(ms) < per && id < int64(nodes) {
			id++
			n := node(fmt.Sprintf("n%d", id), 0, 0)
			n["body"] = body
			ms = append(ms, M{id, "a", "createNode", n})
		}
		mustPush(t, s, "c", "g", ms...)
	}
	// Let the actor's pending work settle, then count.
	full := heapInUse()
	t.Logf("canvas content %d nodes × %d-byte bodies (%.1f MiB as the budget counts)", nodes, bodyLen,
		float64(int64(nodes)*int64(bodyLen+96+2*len("n00000")+3))/(1<<20))
	t.Logf("heap held by the loaded canvas: %.1f MiB", float64(full-before)/(1<<20))

	// The live heap after each collection, collecting often (GOGC=5) so
	// garbage not yet collected does not count.
	old := debug.SetGCPercent(5)
	defer debug.SetGCPercent(old)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	base := live[0].Value.Uint64()
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			metrics.Read(live)
			if v := live[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/api/canvases/c/replicache/pull",
		bytes.NewReader([]byte(`{"profileID":"p","clientGroupID":"g2","cookie":null,"pullVersion":1,"schemaVersion":"1"}`)))
	require.NoError(t, err)
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	n, err := io.Copy(io.Discard, resp.Body) // the client does not hold it
	resp.Body.Close()
	require.NoError(t, err)
	close(done)
	<-sampled
	t.Logf("initial pull: %.1f MiB sent; live heap peak during it %.1f MiB above the loaded canvas", float64(n)/(1<<20),
		float64(peak.Load()-min(peak.Load(), base))/(1<<20))
}
