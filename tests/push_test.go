package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/harness"
	"github.com/canvasd/canvasd/tests/pgtest"
)

// M is a mutation to push; tests write them positionally.
type M struct {
	ID       int64
	ClientID string
	Name     string
	Args     any
}

func muts(ms []M) []harness.Mutation {
	out := make([]harness.Mutation, len(ms))
	for i, m := range ms {
		out[i] = harness.Mutation(m)
	}
	return out
}

func mustPush(t *testing.T, s *harness.Server, canvasID, group string, ms ...M) {
	t.Helper()
	s.MustPush(t, canvasID, group, muts(ms)...)
}

func push(t *testing.T, s *harness.Server, canvasID, group string, ms ...M) (int, string) {
	t.Helper()
	return s.Push(t, canvasID, group, muts(ms)...)
}

func node(id string, x, y float64) map[string]any {
	return map[string]any{"id": id, "kind": "box", "x": x, "y": y}
}

func move(id string, x, y float64) map[string]any { return map[string]any{"id": id, "x": x, "y": y} }

// values returns key -> value of a full pull.
func values(t *testing.T, p *harness.PullResponse) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, op := range p.Patch {
		switch op.Op {
		case "clear":
			clear(out)
		case "put":
			var v map[string]any
			require.NoError(t, json.Unmarshal(op.Value, &v))
			out[op.Key] = v
		case "del":
			delete(out, op.Key)
		}
	}
	return out
}

func newServer(t *testing.T, opts ...harness.Option) *harness.Server {
	t.Helper()
	return harness.Start(t, pgtest.Pool(t), opts...)
}

func TestPushAppliesAndPullReturnsState(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")

	mustPush(t, s, "c", "g1",
		M{1, "a", "createNode", node("n1", 10, 20)},
		M{2, "a", "createNode", map[string]any{"id": "n2", "kind": "note", "x": 0, "y": 0, "w": 50, "h": 60, "title": "t", "body": "b"}},
		M{3, "a", "createEdge", map[string]any{"id": "e1", "from": "n1", "to": "n2"}},
		M{4, "a", "moveNode", move("n1", 11, 21)},
		M{5, "a", "updateCanvas", map[string]any{"title": "Plan"}},
	)
	p := s.Pull(t, "c", "g1", nil)
	require.Equal(t, "clear", p.Patch[0].Op, "a first pull starts with clear")
	require.Equal(t, map[string]int64{"a": 5}, p.LastMutationIDChanges)
	require.Equal(t, map[string]map[string]any{
		"canvas":  {"id": "c", "title": "Plan"},
		"node/n1": {"id": "n1", "kind": "box", "x": 11.0, "y": 21.0, "w": 200.0, "h": 120.0, "title": "", "body": ""},
		"node/n2": {"id": "n2", "kind": "note", "x": 0.0, "y": 0.0, "w": 50.0, "h": 60.0, "title": "t", "body": "b"},
		"edge/e1": {"id": "e1", "from": "n1", "to": "n2"},
	}, values(t, p))
	require.Equal(t, int64(1), p.Order(t), "one push, one batch, one version")
}

func TestRepushedMutationsAreSkipped(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	mustPush(t, s, "c", "g", M{1, "a", "createNode", node("n", 0, 0)}, M{2, "a", "moveNode", move("n", 1, 1)})
	first := s.Pull(t, "c", "g", nil)

	// The response was lost: the client resends everything pending, plus
	// one new mutation. Only the new one applies.
	mustPush(t, s, "c", "g",
		M{1, "a", "createNode", node("n", 0, 0)},
		M{2, "a", "moveNode", move("n", 1, 1)},
		M{3, "a", "moveNode", move("n", 5, 5)},
	)
	p := s.Pull(t, "c", "g", json.RawMessage(first.Cookie))
	require.Equal(t, map[string]int64{"a": 3}, p.LastMutationIDChanges)
	require.Len(t, p.Patch, 1)
	require.Equal(t, "node/n", p.Patch[0].Key)
	require.JSONEq(t, `{"id":"n","kind":"box","x":5,"y":5,"w":200,"h":120,"title":"","body":""}`, string(p.Patch[0].Value))

	// A push of nothing but already-applied mutations writes nothing: the
	// cookie stays, the patch is empty (never null).
	mustPush(t, s, "c", "g", M{3, "a", "moveNode", move("n", 5, 5)})
	again := s.Pull(t, "c", "g", json.RawMessage(p.Cookie))
	require.JSONEq(t, string(p.Cookie), string(again.Cookie))
	require.Contains(t, again.Raw, `"patch":[]`)
	require.Contains(t, again.Raw, `"lastMutationIDChanges":{}`)
}

func TestGapStopsOnlyThatClient(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	mustPush(t, s, "c", "g", M{1, "a", "createNode", node("n", 0, 0)}, M{1, "b", "createNode", node("m", 0, 0)})
	// Client a skips id 2; client b goes on.
	mustPush(t, s, "c", "g", M{3, "a", "moveNode", move("n", 9, 9)}, M{2, "b", "moveNode", move("m", 7, 7)})
	p := s.Pull(t, "c", "g", nil)
	require.Equal(t, map[string]int64{"a": 1, "b": 2}, p.LastMutationIDChanges)
	v := values(t, p)
	require.Equal(t, 0.0, v["node/n"]["x"], "a's mutation after the gap must not apply")
	require.Equal(t, 7.0, v["node/m"]["x"])
}

func TestPermanentErrorsAdvanceTheClient(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	mustPush(t, s, "c", "g",
		M{1, "a", "createNode", node("n1", 0, 0)},
		M{2, "a", "createNode", node("n2", 0, 0)},
		M{3, "a", "createEdge", map[string]any{"id": "e1", "from": "n1", "to": "n2"}},
		M{4, "a", "createEdge", map[string]any{"id": "e2", "from": "n2", "to": "n1"}}, // closes a cycle
		M{5, "a", "noSuchMutator", map[string]any{}},
		M{6, "a", "moveNode", map[string]any{"id": "n1", "x": "far", "y": 0}}, // bad args
		M{7, "a", "createNode", map[string]any{"id": "bad id!", "kind": "box", "x": 0, "y": 0}},
		M{8, "a", "moveNode", move("ghost", 1, 1)}, // unknown node
		M{9, "a", "moveNode", move("n2", 3, 4)},
	)
	p := s.Pull(t, "c", "g", nil)
	require.Equal(t, map[string]int64{"a": 9}, p.LastMutationIDChanges, "rejected mutations still advance lastMutationID")
	v := values(t, p)
	require.NotContains(t, v, "edge/e2")
	require.Len(t, v, 4, "canvas, two nodes, one edge: %v", v)
	require.Equal(t, 3.0, v["node/n2"]["x"], "the client is not wedged")
}

func TestDeleteNodeCascadesAndTravelsAsDel(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	mustPush(t, s, "c", "g",
		M{1, "a", "createNode", node("n1", 0, 0)},
		M{2, "a", "createNode", node("n2", 0, 0)},
		M{3, "a", "createNode", node("n3", 0, 0)},
		M{4, "a", "createEdge", map[string]any{"id": "e1", "from": "n1", "to": "n2"}},
		M{5, "a", "createEdge", map[string]any{"id": "e2", "from": "n3", "to": "n1"}},
		M{6, "a", "createEdge", map[string]any{"id": "e3", "from": "n2", "to": "n3"}},
	)
	before := s.Pull(t, "c", "g", nil)
	mustPush(t, s, "c", "g", M{7, "a", "deleteNode", map[string]any{"id": "n1"}})
	p := s.Pull(t, "c", "g", json.RawMessage(before.Cookie))
	var dels []string
	for _, op := range p.Patch {
		require.Equal(t, "del", op.Op)
		dels = append(dels, op.Key)
	}
	require.ElementsMatch(t, []string{"node/n1", "edge/e1", "edge/e2"}, dels)

	// Re-creating a deleted id is allowed: the id is unused again.
	mustPush(t, s, "c", "g", M{8, "a", "createNode", node("n1", 3, 3)})
	require.Contains(t, values(t, s.Pull(t, "c", "g", nil)), "node/n1")
}

func TestClientGroupIsBoundToItsCanvas(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "a")
	s.CreateCanvas(t, "b")
	mustPush(t, s, "a", "g", M{1, "x", "createNode", node("n", 0, 0)})

	status, body := push(t, s, "b", "g", M{2, "x", "createNode", node("n", 0, 0)})
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"error":"ClientStateNotFound"}`, body)
	require.Equal(t, "ClientStateNotFound", s.Pull(t, "b", "g", nil).Error)
	require.Len(t, values(t, s.Pull(t, "b", "other", nil)), 1, "nothing reached canvas b")

	// A client of one group cannot appear in another.
	status, body = push(t, s, "a", "g2", M{2, "x", "moveNode", move("n", 1, 1)})
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"error":"ClientStateNotFound"}`, body)
}

func TestUnknownGroupPastFirstMutationIsClientStateNotFound(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	// The server never saw this group, yet its client is at mutation 7:
	// the server lost its state, so the client must reset.
	status, body := push(t, s, "c", "g", M{7, "a", "createNode", node("n", 0, 0)})
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"error":"ClientStateNotFound"}`, body)
}

func TestPushErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	mk := func(extra string) string {
		return `{"profileID":"p","clientGroupID":"g","pushVersion":1,"schemaVersion":"1","mutations":[` + extra + `]}`
	}
	for _, tc := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"malformed json", "c", `{"mutations":`, 400, ""},
		{"push version", "c", `{"profileID":"p","clientGroupID":"g","pushVersion":0,"mutations":[]}`, 200, `{"error":"VersionNotSupported","versionType":"push"}`},
		{"bad group id", "c", `{"profileID":"p","clientGroupID":"a/b","pushVersion":1,"mutations":[]}`, 400, ""},
		{"bad client id", "c", mk(`{"id":1,"clientID":"","name":"moveNode","args":{}}`), 400, ""},
		{"duplicate mutation id", "c", mk(`{"id":1,"clientID":"a","name":"moveNode","args":{}},{"id":1,"clientID":"a","name":"moveNode","args":{}}`), 400, ""},
		{"zero mutation id", "c", mk(`{"id":0,"clientID":"a","name":"moveNode","args":{}}`), 400, ""},
		{"string mutation id", "c", mk(`{"id":"1","clientID":"a","name":"moveNode","args":{}}`), 400, ""},
		{"unknown canvas", "nope", mk(`{"id":1,"clientID":"a","name":"moveNode","args":{}}`), 404, ""},
		{"bad canvas id", "no%20pe", mk(`{"id":1,"clientID":"a","name":"moveNode","args":{}}`), 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.Do(t, http.MethodPost, "/api/canvases/"+tc.path+"/replicache/push", tc.body)
			require.Equal(t, tc.status, status, string(body))
			if tc.want != "" {
				require.JSONEq(t, tc.want, string(body))
			} else {
				var e struct{ Error string }
				require.NoError(t, json.Unmarshal(body, &e))
				require.NotEmpty(t, e.Error)
			}
		})
	}
	// Nothing of the above reached the canvas.
	p := s.Pull(t, "c", "g", nil)
	require.Equal(t, int64(0), p.Order(t))
	require.Empty(t, p.LastMutationIDChanges)
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(_ *actorsConfig, h *httpConfig) { h.MaxBodyBytes = 4096 })
	s.CreateCanvas(t, "c")
	big := fmt.Sprintf(`{"profileID":"p","clientGroupID":"g","pushVersion":1,"mutations":[{"id":1,"clientID":"a","name":"updateCanvas","args":{"title":%q}}]}`, make([]byte, 8000))
	status, _ := s.Do(t, http.MethodPost, "/api/canvases/c/replicache/push", big)
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
}
