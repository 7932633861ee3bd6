package canvas

import (
	"encoding/json"
	"strconv"
	"testing"
)

func BenchmarkDecodeMoveNode(b *testing.B) {
	args := json.RawMessage(`{"id":"node-1234","x":1234.5,"y":-678.25}`)
	lim := DefaultLimits()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(MutMoveNode, args, lim); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyMoveNode(b *testing.B) {
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c"})
	for i := range 1000 {
		id := "n" + strconv.Itoa(i)
		if _, err := s.Apply(CreateNode{Node{ID: id, Kind: "k", W: 1, H: 1}}, lim, nil); err != nil {
			b.Fatal(err)
		}
	}
	op := MoveNode{ID: "n500", X: 1, Y: 2}
	out := make([]Change, 0, 1)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = s.Apply(op, lim, out[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateEdgeAcyclicCheck measures the worst case of the cycle
// check: a search that walks the whole of a 10,000-node chain (with some
// skip edges, so nodes are reached more than once).
func BenchmarkCreateEdgeAcyclicCheck(b *testing.B) {
	const n = 10_000
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c"})
	id := func(i int) string { return "n" + strconv.Itoa(i) }
	for i := range n {
		if _, err := s.Apply(CreateNode{Node{ID: id(i), Kind: "k", W: 1, H: 1}}, lim, nil); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Apply(CreateNode{Node{ID: "lone", Kind: "k", W: 1, H: 1}}, lim, nil); err != nil {
		b.Fatal(err)
	}
	for i := 1; i < n; i++ {
		ops := []Edge{{ID: "c" + strconv.Itoa(i), From: id(i - 1), To: id(i)}}
		if i%10 == 0 {
			ops = append(ops, Edge{ID: "s" + strconv.Itoa(i), From: id(i - 10), To: id(i)})
		}
		for _, e := range ops {
			if _, err := s.Apply(CreateEdge{e}, lim, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("rejected", func(b *testing.B) {
		op := CreateEdge{Edge{ID: "back", From: id(n - 1), To: id(0)}}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Apply(op, lim, nil); err == nil {
				b.Fatal("cycle accepted")
			}
		}
	})
	b.Run("accepted", func(b *testing.B) {
		op := CreateEdge{Edge{ID: "in", From: "lone", To: id(0)}}
		del := DeleteEdge{ID: "in"}
		out := make([]Change, 0, 1)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if out, err = s.Apply(op, lim, out[:0]); err != nil {
				b.Fatal(err)
			}
			if out, err = s.Apply(del, lim, out[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkPatchOp(b *testing.B) {
	c := Change{Kind: ChangeNode, ID: "node-1234", Node: Node{ID: "node-1234", Kind: "note", X: 1234.5, Y: -678.25, W: 200, H: 120, Title: "A title", Body: "Some body text"}}
	b.ReportAllocs()
	for b.Loop() {
		_ = c.PatchOp()
	}
}
