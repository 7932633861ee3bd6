package canvas

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// mustApply decodes and applies one mutation, failing the test on error.
func mustApply(t testing.TB, s *State, lim Limits, name, args string) []Change {
	t.Helper()
	out, err := apply(s, lim, name, args)
	require.NoError(t, err)
	return out
}

func apply(s *State, lim Limits, name, args string) ([]Change, error) {
	op, err := Decode(name, json.RawMessage(args), lim)
	if err != nil {
		return nil, err
	}
	return s.Apply(op, lim, nil)
}

func requireRule(t *testing.T, err error, reason string) {
	t.Helper()
	var re *RuleError
	require.ErrorAs(t, err, &re)
	require.Contains(t, re.Reason, reason)
}

func addNodes(t testing.TB, s *State, lim Limits, ids ...string) {
	t.Helper()
	for _, id := range ids {
		mustApply(t, s, lim, "createNode", fmt.Sprintf(`{"id":%q,"kind":"k","x":0,"y":0}`, id))
	}
}

func addEdge(t testing.TB, s *State, lim Limits, id, from, to string) {
	t.Helper()
	mustApply(t, s, lim, "createEdge", fmt.Sprintf(`{"id":%q,"from":%q,"to":%q}`, id, from, to))
}

func edgeArgsJSON(id, from, to string) string {
	return fmt.Sprintf(`{"id":%q,"from":%q,"to":%q}`, id, from, to)
}

func TestCreateNode(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c", Title: "T"})
	out := mustApply(t, s, lim, "createNode", `{"id":"a","kind":"note","x":1,"y":2,"title":"hi"}`)
	want := Node{ID: "a", Kind: "note", X: 1, Y: 2, W: 200, H: 120, Title: "hi"}
	require.Equal(t, []Change{{Kind: ChangeNode, ID: "a", Node: want}}, out)
	n, ok := s.Node("a")
	require.True(t, ok)
	require.Equal(t, want, n)

	_, err := apply(s, lim, "createNode", `{"id":"a","kind":"other","x":5,"y":5}`)
	requireRule(t, err, "already exists")
	n, _ = s.Node("a")
	require.Equal(t, want, n, "a rejected duplicate must not overwrite")
	nodes, edges := s.Len()
	require.Equal(t, 1, nodes)
	require.Equal(t, 0, edges)
}

func TestRecreateAfterDelete(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c"})
	addNodes(t, s, lim, "a", "b")
	addEdge(t, s, lim, "e", "a", "b")
	mustApply(t, s, lim, "deleteNode", `{"id":"a"}`)
	_, ok := s.Node("a")
	require.False(t, ok)

	out := mustApply(t, s, lim, "createNode", `{"id":"a","kind":"new","x":9,"y":9}`)
	require.Len(t, out, 1)
	n, ok := s.Node("a")
	require.True(t, ok)
	require.Equal(t, "new", n.Kind)
	_, ok = s.Edge("e")
	require.False(t, ok, "the cascaded edge must not come back with the node")
	// The old a→b pair is gone, so the same edge can be made again.
	addEdge(t, s, lim, "e", "a", "b")
}

func TestNodeLimit(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	lim.MaxNodes = 2
	s := NewState(Meta{ID: "c"})
	addNodes(t, s, lim, "a", "b")
	_, err := apply(s, lim, "createNode", `{"id":"c","kind":"k","x":0,"y":0}`)
	requireRule(t, err, "too many nodes")
	_, ok := s.Node("c")
	require.False(t, ok)
	mustApply(t, s, lim, "deleteNode", `{"id":"a"}`)
	addNodes(t, s, lim, "c")
	nodes, _ := s.Len()
	require.Equal(t, 2, nodes)
}

func TestUpdateNode(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c"})
	mustApply(t, s, lim, "createNode", `{"id":"a","kind":"note","x":1,"y":2,"w":3,"h":4,"title":"t","body":"b"}`)

	out := mustApply(t, s, lim, "updateNode", `{"id":"a","title":"T2","w":30}`)
	want := Node{ID: "a", Kind: "note", X: 1, Y: 2, W: 30, H: 4, Title: "T2", Body: "b"}
	require.Equal(t, []Change{{Kind: ChangeNode, ID: "a", Node: want}}, out)

	out = mustApply(t, s, lim, "updateNode", `{"id":"a","kind":"box","x":-1,"y":-2,"h":40,"body":""}`)
	want = Node{ID: "a", Kind: "box", X: -1, Y: -2, W: 30, H: 40, Title: "T2"}
	require.Equal(t, want, out[0].Node)
	n, _ := s.Node("a")
	require.Equal(t, want, n)

	_, err := apply(s, lim, "updateNode", `{"id":"zz","title":"x"}`)
	requireRule(t, err, "does not exist")
}

func TestMoveNode(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c"})
	mustApply(t, s, lim, "createNode", `{"id":"a","kind":"note","x":1,"y":2,"title":"t"}`)
	prev := []Change{{Kind: ChangeCanvas, ID: "x"}}
	op, err := Decode("moveNode", json.RawMessage(`{"id":"a","x":7,"y":8}`), lim)
	require.NoError(t, err)
	out, err := s.Apply(op, lim, prev)
	require.NoError(t, err)
	require.Len(t, out, 2, "Apply appends to out")
	require.Equal(t, Change{Kind: ChangeNode, ID: "a", Node: Node{ID: "a", Kind: "note", X: 7, Y: 8, W: 200, H: 120, Title: "t"}}, out[1])

	mustApply(t, s, lim, "deleteNode", `{"id":"a"}`)
	_, err = apply(s, lim, "moveNode", `{"id":"a","x":1,"y":1}`)
	requireRule(t, err, "does not exist")
}

func TestDeleteNodeCascade(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c"})
	addNodes(t, s, lim, "a", "b", "c", "d")
	addEdge(t, s, lim, "e1", "a", "b")
	addEdge(t, s, lim, "e2", "b", "c")
	addEdge(t, s, lim, "e3", "d", "b")
	addEdge(t, s, lim, "e4", "a", "c")

	out := mustApply(t, s, lim, "deleteNode", `{"id":"b"}`)
	require.Equal(t, []Change{
		{Kind: ChangeEdge, ID: "e1", Deleted: true},
		{Kind: ChangeEdge, ID: "e2", Deleted: true},
		{Kind: ChangeEdge, ID: "e3", Deleted: true},
		{Kind: ChangeNode, ID: "b", Deleted: true},
	}, out)
	nodes, edges := s.Len()
	require.Equal(t, 3, nodes)
	require.Equal(t, 1, edges)
	_, ok := s.Edge("e4")
	require.True(t, ok, "an edge not touching b survives")
	for _, id := range []string{"e1", "e2", "e3"} {
		_, ok := s.Edge(id)
		require.False(t, ok, id)
	}

	// Deleting a missing node is a no-op, not an error.
	out = mustApply(t, s, lim, "deleteNode", `{"id":"b"}`)
	require.Empty(t, out)
	out = mustApply(t, s, lim, "deleteNode", `{"id":"never"}`)
	require.Empty(t, out)
}

func TestCreateEdgeRules(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c"})
	addNodes(t, s, lim, "a", "b", "c")

	out := mustApply(t, s, lim, "createEdge", edgeArgsJSON("e1", "a", "b"))
	require.Equal(t, []Change{{Kind: ChangeEdge, ID: "e1", Edge: Edge{ID: "e1", From: "a", To: "b"}}}, out)

	for _, tc := range []struct{ name, args, reason string }{
		{"edge id taken", edgeArgsJSON("e1", "b", "c"), "edge e1 already exists"},
		{"from missing", edgeArgsJSON("e2", "x", "b"), "node x does not exist"},
		{"to missing", edgeArgsJSON("e2", "a", "x"), "node x does not exist"},
		{"self loop", edgeArgsJSON("e2", "a", "a"), "itself"},
		{"duplicate from→to", edgeArgsJSON("e2", "a", "b"), "already exists"},
		{"two-cycle", edgeArgsJSON("e2", "b", "a"), "edge would close a cycle"},
	} {
		_, err := apply(s, lim, "createEdge", tc.args)
		requireRule(t, err, tc.reason)
	}
	_, edges := s.Len()
	require.Equal(t, 1, edges)
	// The reverse of a duplicate is a cycle, but a parallel to another node is fine.
	addEdge(t, s, lim, "e2", "a", "c")
}

func TestCreateEdgeCycleOnChain(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c"})
	addNodes(t, s, lim, "a", "b", "c", "d")
	addEdge(t, s, lim, "ab", "a", "b")
	addEdge(t, s, lim, "bc", "b", "c")

	_, err := apply(s, lim, "createEdge", edgeArgsJSON("ca", "c", "a"))
	requireRule(t, err, "edge would close a cycle")
	_, ok := s.Edge("ca")
	require.False(t, ok)

	// A diamond is acyclic: a→c alongside a→b→c.
	addEdge(t, s, lim, "ac", "a", "c")
	addEdge(t, s, lim, "cd", "c", "d")
	_, err = apply(s, lim, "createEdge", edgeArgsJSON("da", "d", "a"))
	requireRule(t, err, "edge would close a cycle")
	_, err = apply(s, lim, "createEdge", edgeArgsJSON("db", "d", "b"))
	requireRule(t, err, "edge would close a cycle")

	// Breaking the chain makes c→a legal.
	mustApply(t, s, lim, "deleteEdge", `{"id":"bc"}`)
	_, err = apply(s, lim, "createEdge", edgeArgsJSON("ca", "c", "a"))
	requireRule(t, err, "edge would close a cycle") // a→c still closes it
	mustApply(t, s, lim, "deleteEdge", `{"id":"ac"}`)
	addEdge(t, s, lim, "ca", "c", "a")
}

func TestCreateEdgeLongChain(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c"})
	const n = 5000 // deep enough that a recursive search would be costly
	for i := range n {
		addNodes(t, s, lim, fmt.Sprint("n", i))
		if i > 0 {
			addEdge(t, s, lim, fmt.Sprint("e", i), fmt.Sprint("n", i-1), fmt.Sprint("n", i))
		}
	}
	_, err := apply(s, lim, "createEdge", edgeArgsJSON("back", fmt.Sprint("n", n-1), "n0"))
	requireRule(t, err, "edge would close a cycle")
	addEdge(t, s, lim, "skip", "n0", fmt.Sprint("n", n-1))
}

func TestEdgeLimit(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	lim.MaxEdges = 1
	s := NewState(Meta{ID: "c"})
	addNodes(t, s, lim, "a", "b", "c")
	addEdge(t, s, lim, "e1", "a", "b")
	_, err := apply(s, lim, "createEdge", edgeArgsJSON("e2", "b", "c"))
	requireRule(t, err, "too many edges")
	mustApply(t, s, lim, "deleteEdge", `{"id":"e1"}`)
	addEdge(t, s, lim, "e2", "b", "c")
}

func TestDeleteEdge(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c"})
	addNodes(t, s, lim, "a", "b")
	addEdge(t, s, lim, "e", "a", "b")
	out := mustApply(t, s, lim, "deleteEdge", `{"id":"e"}`)
	require.Equal(t, []Change{{Kind: ChangeEdge, ID: "e", Deleted: true}}, out)
	out = mustApply(t, s, lim, "deleteEdge", `{"id":"e"}`)
	require.Empty(t, out)
	// The pair and the reverse direction are free again.
	addEdge(t, s, lim, "r", "b", "a")
	// And the nodes no longer carry the edge: deleting a cascades only r.
	out = mustApply(t, s, lim, "deleteNode", `{"id":"a"}`)
	require.Equal(t, []Change{{Kind: ChangeEdge, ID: "r", Deleted: true}, {Kind: ChangeNode, ID: "a", Deleted: true}}, out)
}

func TestUpdateCanvas(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	s := NewState(Meta{ID: "cv", Title: "old"})
	out := mustApply(t, s, lim, "updateCanvas", `{"title":"new"}`)
	require.Equal(t, []Change{{Kind: ChangeCanvas, ID: "cv", Title: "new"}}, out)
	require.Equal(t, Meta{ID: "cv", Title: "new"}, s.Meta())
}

func TestApplyErrorLeavesStateUnchanged(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	lim.MaxNodes = 3
	lim.MaxEdges = 2
	s := NewState(Meta{ID: "c", Title: "T"})
	addNodes(t, s, lim, "a", "b", "c")
	addEdge(t, s, lim, "ab", "a", "b")
	addEdge(t, s, lim, "bc", "b", "c")
	before := sortedSnapshot(s)

	bad := []struct{ name, args string }{
		{"createNode", `{"id":"d","kind":"k","x":0,"y":0}`}, // node limit
		{"createNode", `{"id":"a","kind":"k","x":5,"y":5}`}, // exists
		{"createEdge", edgeArgsJSON("ca", "c", "a")},        // cycle
		{"createEdge", edgeArgsJSON("ab2", "a", "b")},       // duplicate pair
		{"createEdge", edgeArgsJSON("ac", "a", "c")},        // edge limit
		{"createEdge", edgeArgsJSON("bc", "a", "c")},        // edge id taken
		{"updateNode", `{"id":"x","title":"t"}`},
		{"moveNode", `{"id":"x","x":1,"y":1}`},
	}
	prev := []Change{{Kind: ChangeCanvas, ID: "sentinel"}}
	for _, b := range bad {
		op, err := Decode(b.name, json.RawMessage(b.args), lim)
		require.NoError(t, err, b.args)
		out, err := s.Apply(op, lim, prev)
		require.Error(t, err, b.args)
		require.True(t, IsRuleError(err))
		require.Equal(t, prev, out, "out is returned as passed in")
		require.Len(t, out, 1)
		require.Equal(t, before, sortedSnapshot(s), "state changed by %s %s", b.name, b.args)
	}

	// Later ops behave as if the rejected ones never happened.
	out := mustApply(t, s, lim, "deleteNode", `{"id":"b"}`)
	require.Equal(t, []Change{
		{Kind: ChangeEdge, ID: "ab", Deleted: true},
		{Kind: ChangeEdge, ID: "bc", Deleted: true},
		{Kind: ChangeNode, ID: "b", Deleted: true},
	}, out)
	addEdge(t, s, lim, "ca", "c", "a")
	n, _ := s.Node("a")
	require.Equal(t, Node{ID: "a", Kind: "k", W: 200, H: 120}, n)
}

func TestApplyUnknownOp(t *testing.T) {
	t.Parallel()
	s := NewState(Meta{ID: "c"})
	out, err := s.Apply(nil, DefaultLimits(), nil)
	require.Nil(t, out)
	requireRule(t, err, "unknown mutator")
}

func TestLoad(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c", Title: "old"})
	s.Load(Change{Kind: ChangeCanvas, ID: "c", Title: "loaded"})
	s.Load(Change{Kind: ChangeNode, ID: "a", Node: Node{ID: "a", Kind: "k"}})
	s.Load(Change{Kind: ChangeNode, ID: "b", Node: Node{ID: "b", Kind: "k"}})
	// An edge to a node not loaded yet: rows may arrive in any order.
	s.Load(Change{Kind: ChangeEdge, ID: "bc", Edge: Edge{ID: "bc", From: "b", To: "c"}})
	s.Load(Change{Kind: ChangeEdge, ID: "ab", Edge: Edge{ID: "ab", From: "a", To: "b"}})
	require.Equal(t, Meta{ID: "c", Title: "loaded"}, s.Meta())
	nodes, edges := s.Len()
	require.Equal(t, 2, nodes)
	require.Equal(t, 2, edges)

	// The dangling edge still counts for the cycle check once c arrives.
	s.Load(Change{Kind: ChangeNode, ID: "c", Node: Node{ID: "c", Kind: "k"}})
	_, err := apply(s, lim, "createEdge", edgeArgsJSON("ca", "c", "a"))
	requireRule(t, err, "edge would close a cycle")

	// Replacing an edge moves its adjacency.
	s.Load(Change{Kind: ChangeEdge, ID: "bc", Edge: Edge{ID: "bc", From: "a", To: "c"}})
	_, err = apply(s, lim, "createEdge", edgeArgsJSON("ac2", "a", "c"))
	requireRule(t, err, "already exists")
	addEdge(t, s, lim, "cb", "c", "b")

	// Deletes of missing rows are harmless; a loaded node put replaces.
	s.Load(Change{Kind: ChangeEdge, ID: "nope", Deleted: true})
	s.Load(Change{Kind: ChangeNode, ID: "nope", Deleted: true})
	s.Load(Change{Kind: ChangeNode, ID: "a", Node: Node{ID: "a", Kind: "k2", X: 3}})
	n, _ := s.Node("a")
	require.Equal(t, Node{ID: "a", Kind: "k2", X: 3}, n)
	nodes, _ = s.Len()
	require.Equal(t, 3, nodes)

	s.Load(Change{Kind: ChangeNode, ID: "a", Deleted: true})
	_, ok := s.Node("a")
	require.False(t, ok)
	nodes, edges = s.Len()
	require.Equal(t, 2, nodes)
	require.Equal(t, 3, edges, "Load does not cascade: the deleting rows come separately")
	s.Load(Change{Kind: ChangeEdge, ID: "ab", Deleted: true})
	s.Load(Change{Kind: ChangeEdge, ID: "bc", Deleted: true})
	s.Load(Change{Kind: ChangeEdge, ID: "cb", Deleted: true})
	_, edges = s.Len()
	require.Equal(t, 0, edges)
	require.Len(t, s.slots, 2, "slots of gone nodes are dropped")
	require.Empty(t, s.pairs)
}

func TestLoadDuplicatePairs(t *testing.T) {
	t.Parallel()
	s := NewState(Meta{ID: "c"})
	s.Load(Change{Kind: ChangeNode, ID: "a", Node: Node{ID: "a"}})
	s.Load(Change{Kind: ChangeNode, ID: "b", Node: Node{ID: "b"}})
	s.Load(Change{Kind: ChangeEdge, ID: "e1", Edge: Edge{ID: "e1", From: "a", To: "b"}})
	s.Load(Change{Kind: ChangeEdge, ID: "e2", Edge: Edge{ID: "e2", From: "a", To: "b"}})
	s.Load(Change{Kind: ChangeEdge, ID: "e1", Deleted: true})
	_, err := apply(s, DefaultLimits(), "createEdge", edgeArgsJSON("e3", "a", "b"))
	requireRule(t, err, "already exists")
}

// TestByteBudget: a canvas cannot grow past its byte budget by creating
// nodes or edges or by growing a node's text; every refusal is a rule
// error (permanent), shrinking is always allowed, deletions give bytes
// back, and the count matches the content.
func TestByteBudget(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	lim.MaxBytes = 2000
	s := NewState(Meta{ID: "c"})
	body := strings.Repeat("b", 500)
	var err error
	n := 0
	for ; n < 10; n++ {
		_, err = s.Apply(CreateNode{Node{ID: fmt.Sprintf("n%d", n), Kind: "k", W: 1, H: 1, Body: body}}, lim, nil)
		if err != nil {
			break
		}
	}
	require.Error(t, err)
	require.True(t, IsRuleError(err))
	require.Contains(t, err.Error(), "byte budget")
	require.Equal(t, 3, n, "three nodes of ~600 bytes fit in 2000")
	require.LessOrEqual(t, s.Bytes(), lim.MaxBytes)
	full := s.Bytes()

	big := strings.Repeat("x", 1000)
	_, err = s.Apply(UpdateNode{ID: "n0", Body: &big}, lim, nil)
	require.True(t, IsRuleError(err), "growing a node's text past the budget")
	require.Equal(t, full, s.Bytes())
	_, err = s.Apply(CreateEdge{Edge{ID: "e", From: "n0", To: "n1"}}, lim, nil)
	require.NoError(t, err, "a small edge still fits")
	_, err = s.Apply(CreateEdge{Edge{ID: strings.Repeat("e", 64), From: "n1", To: "n2"}}, lim, nil)
	require.True(t, IsRuleError(err), "an edge past the budget")
	small := "s"
	_, err = s.Apply(UpdateNode{ID: "n0", Body: &small}, lim, nil)
	require.NoError(t, err, "shrinking is allowed")
	require.Less(t, s.Bytes(), full)
	_, err = s.Apply(DeleteNode{ID: "n1"}, lim, nil)
	require.NoError(t, err)
	var want int64
	for _, id := range []string{"n0", "n2"} {
		nd, ok := s.Node(id)
		require.True(t, ok)
		want += NodeBytes(nd)
	}
	require.Equal(t, want, s.Bytes(), "deletions (the node and its edge) give their bytes back")

	// Loaded rows count too, even past the budget; only growth is refused.
	s2 := NewState(Meta{ID: "c"})
	for i := range 5 {
		s2.Load(Change{Kind: ChangeNode, ID: fmt.Sprintf("n%d", i), Node: Node{ID: fmt.Sprintf("n%d", i), Kind: "k", Body: body}})
	}
	require.Greater(t, s2.Bytes(), lim.MaxBytes)
	_, err = s2.Apply(MoveNode{ID: "n0", X: 1, Y: 1}, lim, nil)
	require.NoError(t, err, "moving does not grow")
	_, err = s2.Apply(CreateNode{Node{ID: "z", Kind: "k", W: 1, H: 1}}, lim, nil)
	require.True(t, IsRuleError(err))
}
