package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"go.uber.org/zap"

	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
)

// benchActor is a loaded canvas actor with n nodes, without a database.
func benchActor(b *testing.B, n int) *canvasActor {
	b.Helper()
	s := &System{cfg: DefaultConfig(), log: zap.NewNop(), decode: canvas.Decode}
	s.dir = newDirectory(s)
	a := &canvasActor{s: s, id: "c", logger: zap.NewNop(), loaded: true,
		state:   canvas.NewState(canvas.Meta{ID: "c"}),
		clients: map[string]store.Client{}, groups: map[string]string{"g": ""},
		groupClients: map[string][]string{}, pullGroups: map[string]groupBinding{},
		patches: map[int64]*Patch{}, subs: map[*Subscription]struct{}{}}
	for i := range n {
		a.state.Load(canvas.Change{Kind: canvas.ChangeNode, ID: fmt.Sprintf("n%d", i),
			Node: canvas.Node{ID: fmt.Sprintf("n%d", i), Kind: "box", W: 200, H: 120}})
	}
	return a
}

// BenchmarkBatchBuild applies a batch of 16 single-move pushes to memory
// and builds the rows to write: the canvas actor's CPU per batch.
func BenchmarkBatchBuild(b *testing.B) {
	a := benchActor(b, 1000)
	noOwner := func(context.Context, string) (string, string, bool, error) { return "", "", false, nil }
	batch := make([]*pushMsg, 16)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range batch {
			batch[j] = &pushMsg{req: &canvas.PushRequest{ClientGroupID: "g", Mutations: []canvas.Mutation{{
				ID: int64(i + 1), ClientID: fmt.Sprintf("c%d", j), Name: canvas.MutMoveNode,
				Args: json.RawMessage(fmt.Sprintf(`{"id":"n%d","x":%d,"y":1}`, j*37%1000, i)),
			}}}}
		}
		w, _, err := a.applyBatch(context.Background(), batch, noOwner)
		if err != nil {
			b.Fatal(err)
		}
		w.finish()
		for id, cl := range w.write.Clients {
			a.clients[id] = cl
		}
	}
}

// BenchmarkPokeFanout pokes 5,000 subscriptions of one canvas.
func BenchmarkPokeFanout(b *testing.B) {
	a := benchActor(b, 0)
	subs := make([]*Subscription, 5000)
	for i := range subs {
		ch := make(chan int64, 1)
		subs[i] = &Subscription{C: ch, ch: ch}
		a.subs[subs[i]] = struct{}{}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a.seen = int64(i)
		a.pokeNow()
		if i%2 == 0 { // half the streams keep up
			for _, s := range subs[:2500] {
				<-s.C
			}
		}
	}
}

// BenchmarkPatchSince builds the patch of 10 changes on a 10,000-node
// canvas, as the first of many pulls from one version does.
func BenchmarkPatchSince(b *testing.B) {
	a := benchActor(b, 10000)
	for v := int64(1); v <= 10; v++ {
		a.recordChanges(v, []canvas.Change{{Kind: canvas.ChangeNode, ID: fmt.Sprintf("n%d", v*7)}})
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(a.patches)
		if p := a.patchSince(0); len(p.Changes) != 10 {
			b.Fatal(len(p.Changes))
		}
	}
}
