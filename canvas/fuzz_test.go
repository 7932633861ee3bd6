package canvas

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

// checkInvariants verifies what any sequence of Apply calls must keep: every
// live edge joins two live nodes, from→to pairs are unique, the graph is
// acyclic, the limits hold, and the adjacency agrees with the edges.
func checkInvariants(t testing.TB, s *State, lim Limits) {
	t.Helper()
	live := 0
	for id, sl := range s.slots {
		if sl.live {
			live++
			if sl.node.ID != id {
				t.Fatalf("slot %q holds node %q", id, sl.node.ID)
			}
		} else if len(sl.out) == 0 && len(sl.in) == 0 {
			t.Fatalf("empty slot %q kept", id)
		}
		for eid, to := range sl.out {
			if e, ok := s.edges[eid]; !ok || e.From != id || s.slots[e.To] != to {
				t.Fatalf("slot %q lists out-edge %q wrongly", id, eid)
			}
		}
		for eid := range sl.in {
			if e, ok := s.edges[eid]; !ok || e.To != id {
				t.Fatalf("slot %q lists in-edge %q wrongly", id, eid)
			}
		}
	}
	if live != s.nnodes {
		t.Fatalf("nnodes %d, live slots %d", s.nnodes, live)
	}
	if s.nnodes > lim.MaxNodes || len(s.edges) > lim.MaxEdges {
		t.Fatalf("limits exceeded: %d nodes, %d edges", s.nnodes, len(s.edges))
	}
	var bytes int64
	for _, sl := range s.slots {
		if sl.live {
			bytes += NodeBytes(sl.node)
		}
	}
	for _, e := range s.edges {
		bytes += EdgeBytes(e)
	}
	if bytes != s.bytes {
		t.Fatalf("byte count %d, content %d", s.bytes, bytes)
	}
	if lim.MaxBytes > 0 && s.bytes > lim.MaxBytes {
		t.Fatalf("byte budget %d exceeded: %d", lim.MaxBytes, s.bytes)
	}
	pairs := map[pair]int{}
	indeg := map[string]int{}
	for id, e := range s.edges {
		if e.ID != id {
			t.Fatalf("edge %q stored under %q", e.ID, id)
		}
		if _, ok := s.Node(e.From); !ok {
			t.Fatalf("edge %q from missing node %q", id, e.From)
		}
		if _, ok := s.Node(e.To); !ok {
			t.Fatalf("edge %q to missing node %q", id, e.To)
		}
		if _, ok := s.slots[e.From].out[id]; !ok {
			t.Fatalf("edge %q missing from out of %q", id, e.From)
		}
		if _, ok := s.slots[e.To].in[id]; !ok {
			t.Fatalf("edge %q missing from in of %q", id, e.To)
		}
		pairs[pair{e.From, e.To}]++
		indeg[e.To]++
	}
	for p, n := range pairs {
		if n != 1 || s.pairs[p] != 1 {
			t.Fatalf("pair %v: %d edges, counted %d", p, n, s.pairs[p])
		}
	}
	if len(pairs) != len(s.pairs) {
		t.Fatalf("pairs index has %d entries, want %d", len(s.pairs), len(pairs))
	}
	// Kahn's algorithm, independent of State.reaches.
	var queue []string
	for id, sl := range s.slots {
		if sl.live && indeg[id] == 0 {
			queue = append(queue, id)
		}
	}
	seen := 0
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		seen++
		for eid := range s.slots[id].out {
			to := s.edges[eid].To
			if indeg[to]--; indeg[to] == 0 {
				queue = append(queue, to)
			}
		}
	}
	if seen != s.nnodes {
		t.Fatalf("graph has a cycle: sorted %d of %d nodes", seen, s.nnodes)
	}
}

func fuzzLimits() Limits {
	lim := DefaultLimits()
	lim.MaxNodes = 6
	lim.MaxEdges = 5
	lim.MaxBytes = 1500 // the start state takes 5 nodes' and 2 edges' worth
	return lim
}

func fuzzState(t testing.TB, lim Limits) *State {
	s := NewState(Meta{ID: "c", Title: "T"})
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := s.Apply(CreateNode{Node{ID: id, Kind: "k", W: 1, H: 1}}, lim, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []Edge{{"ab", "a", "b"}, {"bc", "b", "c"}} {
		if _, err := s.Apply(CreateEdge{e}, lim, nil); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// applyChecked applies op and checks the contract of Apply.
func applyChecked(t testing.TB, s *State, op Op, lim Limits) {
	t.Helper()
	before := sortedSnapshot(s)
	prev := []Change{{Kind: ChangeCanvas, ID: "sentinel"}}
	out, err := s.Apply(op, lim, prev)
	if err != nil {
		var re *RuleError
		if !errors.As(err, &re) {
			t.Fatalf("Apply %#v: not a RuleError: %v", op, err)
		}
		if len(out) != 1 || out[0] != prev[0] {
			t.Fatalf("Apply %#v: out changed on error: %v", op, out)
		}
		if after := sortedSnapshot(s); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("Apply %#v: state changed on error", op)
		}
	} else {
		for _, c := range out[1:] {
			p := c.PatchOp()
			if _, err := json.Marshal(p); err != nil {
				t.Fatalf("patch of %v: %v", c, err)
			}
		}
		// The rows Apply wrote are what a restart loads; loading them again
		// must not change the state.
		after := sortedSnapshot(s)
		for _, c := range out[1:] {
			s.Load(c)
		}
		if fmt.Sprint(sortedSnapshot(s)) != fmt.Sprint(after) {
			t.Fatalf("Apply %#v: reloading its changes altered the state", op)
		}
	}
	checkInvariants(t, s, lim)
}

func FuzzDecode(f *testing.F) {
	f.Add("createNode", []byte(`{"id":"e","kind":"k","x":1,"y":2}`))
	f.Add("moveNode", []byte(`{"id":"a","x":1,"y":2}`))
	f.Add("createEdge", []byte(`{"id":"ca","from":"c","to":"a"}`))
	lim := fuzzLimits()
	f.Fuzz(func(t *testing.T, name string, args []byte) {
		op, err := Decode(name, args, lim)
		if err != nil {
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("not a RuleError: %T %v", err, err)
			}
			if re.Mutator != name || re.Reason == "" {
				t.Fatalf("bad RuleError %+v", re)
			}
			if op != nil {
				t.Fatalf("op %#v with error", op)
			}
			return
		}
		if MutatorName(op) != name {
			t.Fatalf("decoded %q as %T", name, op)
		}
		s := fuzzState(t, lim)
		applyChecked(t, s, op, lim)
		// Twice, for the paths that depend on the first (already exists,
		// no-op delete, duplicate pair).
		applyChecked(t, s, op, lim)
	})
}

// FuzzApplySequence drives Apply with sequences of ops over a few ids, so
// that long interleavings of creates and deletes are explored.
func FuzzApplySequence(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 0, 0, 2, 4, 0, 1, 4, 1, 2, 4, 2, 0})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 4, 0, 1, 2, 0, 0, 0, 0, 0, 4, 1, 0})
	lim := fuzzLimits()
	f.Fuzz(func(t *testing.T, data []byte) {
		s := NewState(Meta{ID: "c"})
		ids := []string{"a", "b", "c", "d", "e", "f", "g"}
		id := func(b byte) string { return ids[int(b)%len(ids)] }
		for i := 0; i+3 <= len(data); i += 3 {
			x, y := float64(data[i+1]), float64(data[i+2])
			var op Op
			switch data[i] % 7 {
			case 0:
				op = CreateNode{Node{ID: id(data[i+1]), Kind: "k", X: y, W: 1, H: 1}}
			case 1:
				op = MoveNode{ID: id(data[i+1]), X: x, Y: y}
			case 2:
				op = DeleteNode{ID: id(data[i+1])}
			case 3:
				op = UpdateNode{ID: id(data[i+1]), Y: &y}
			case 4:
				op = CreateEdge{Edge{ID: id(data[i+1] / 7), From: id(data[i+1]), To: id(data[i+2])}}
			case 5:
				op = DeleteEdge{ID: id(data[i+1])}
			case 6:
				op = UpdateCanvas{Title: id(data[i+1])}
			}
			applyChecked(t, s, op, lim)
		}
	})
}
