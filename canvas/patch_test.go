package canvas

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

func sortedSnapshot(s *State) []Change {
	snap := s.Snapshot(nil)
	slices.SortFunc(snap, func(a, b Change) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
	})
	return snap
}

func TestPatchOp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    Change
		want string
	}{
		{"node put", Change{Kind: ChangeNode, ID: "n1", Node: Node{ID: "n1", Kind: "note", X: 1.5, Y: -2, W: 200, H: 120, Title: "t\"<", Body: "b"}},
			`{"op":"put","key":"node/n1","value":{"id":"n1","kind":"note","x":1.5,"y":-2,"w":200,"h":120,"title":"t\"\u003c","body":"b"}}`},
		{"node del", Change{Kind: ChangeNode, ID: "n1", Deleted: true}, `{"op":"del","key":"node/n1"}`},
		{"edge put", Change{Kind: ChangeEdge, ID: "e1", Edge: Edge{ID: "e1", From: "a", To: "b"}},
			`{"op":"put","key":"edge/e1","value":{"id":"e1","from":"a","to":"b"}}`},
		{"edge del", Change{Kind: ChangeEdge, ID: "e1", Deleted: true}, `{"op":"del","key":"edge/e1"}`},
		{"canvas", Change{Kind: ChangeCanvas, ID: "c1", Title: "My canvas"},
			`{"op":"put","key":"canvas","value":{"id":"c1","title":"My canvas"}}`},
		{"id only in value", Change{Kind: ChangeEdge, Edge: Edge{ID: "e2", From: "a", To: "b"}},
			`{"op":"put","key":"edge/e2","value":{"id":"e2","from":"a","to":"b"}}`},
		{"non-finite zeroed", Change{Kind: ChangeNode, ID: "n", Node: Node{ID: "n", X: math.NaN(), Y: math.Inf(1), W: 1, H: 1}},
			`{"op":"put","key":"node/n","value":{"id":"n","kind":"","x":0,"y":0,"w":1,"h":1,"title":"","body":""}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tc.c.PatchOp())
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(b))
		})
	}
	b, err := json.Marshal(ClearOp())
	require.NoError(t, err)
	require.JSONEq(t, `{"op":"clear"}`, string(b))
}

// A client value built from the mutation args must equal the server's
// value, or the client would flicker: check the round trip through Decode,
// Apply and PatchOp.
func TestPatchOpMatchesArgs(t *testing.T) {
	t.Parallel()
	s := NewState(Meta{ID: "c"})
	args := `{"id":"n","kind":"note","x":0.1,"y":1e-7,"w":200,"h":120,"title":"é","body":"x\ny"}`
	out := mustApply(t, s, DefaultLimits(), "createNode", args)
	require.JSONEq(t, args, string(out[0].PatchOp().Value))
}

func TestSnapshot(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	s := NewState(Meta{ID: "c", Title: "T"})
	addNodes(t, s, lim, "b", "a", "gone")
	addEdge(t, s, lim, "e", "a", "b")
	addEdge(t, s, lim, "f", "a", "gone")
	mustApply(t, s, lim, "deleteNode", `{"id":"gone"}`)

	prefix := []Change{{Kind: ChangeCanvas, ID: "x"}}
	snap := s.Snapshot(prefix)
	require.Len(t, snap, 1+1+2+1)
	require.Equal(t, prefix[0], snap[0])

	require.Equal(t, []Change{
		{Kind: ChangeNode, ID: "a", Node: Node{ID: "a", Kind: "k", W: 200, H: 120}},
		{Kind: ChangeNode, ID: "b", Node: Node{ID: "b", Kind: "k", W: 200, H: 120}},
		{Kind: ChangeEdge, ID: "e", Edge: Edge{ID: "e", From: "a", To: "b"}},
		{Kind: ChangeCanvas, ID: "c", Title: "T"},
	}, sortedSnapshot(s))

	// Loading a snapshot rebuilds an equal state.
	s2 := NewState(Meta{ID: "c"})
	for _, c := range s.Snapshot(nil) {
		s2.Load(c)
	}
	require.Equal(t, sortedSnapshot(s), sortedSnapshot(s2))
}
