package canvas

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func sp(s string) *string   { return &s }
func fp(f float64) *float64 { return &f }

func TestDecode(t *testing.T) {
	t.Parallel()
	lim := DefaultLimits()
	long := strings.Repeat("é", 200) // 200 runes, 400 bytes: within the limit
	tests := []struct {
		name   string
		mut    string
		args   string
		want   Op
		reason string // substring of the RuleError reason; "" means success
	}{
		// createNode
		{"create defaults", "createNode", `{"id":"n1","kind":"note","x":1.5,"y":-2}`,
			CreateNode{Node{ID: "n1", Kind: "note", X: 1.5, Y: -2, W: 200, H: 120}}, ""},
		{"create full", "createNode", `{"id":"n1","kind":"a_b-9","x":0,"y":0,"w":10,"h":1e5,"title":"T","body":"B\n\u00e9"}`,
			CreateNode{Node{ID: "n1", Kind: "a_b-9", W: 10, H: 1e5, Title: "T", Body: "B\né"}}, ""},
		{"create unknown field ignored", "createNode", `{"id":"n1","kind":"k","x":0,"y":0,"color":[1,2],"from":7}`,
			CreateNode{Node{ID: "n1", Kind: "k", W: 200, H: 120}}, ""},
		{"create title at rune limit", "createNode", `{"id":"n1","kind":"k","x":0,"y":0,"title":"` + long + `"}`,
			CreateNode{Node{ID: "n1", Kind: "k", W: 200, H: 120, Title: long}}, ""},
		{"create coord at limit", "createNode", `{"id":"n1","kind":"k","x":1e7,"y":-1e7}`,
			CreateNode{Node{ID: "n1", Kind: "k", X: 1e7, Y: -1e7, W: 200, H: 120}}, ""},
		{"create missing id", "createNode", `{"kind":"k","x":0,"y":0}`, nil, "id is required"},
		{"create missing kind", "createNode", `{"id":"n","x":0,"y":0}`, nil, "kind is required"},
		{"create missing x", "createNode", `{"id":"n","kind":"k","y":0}`, nil, "x is required"},
		{"create missing y", "createNode", `{"id":"n","kind":"k","x":0}`, nil, "y is required"},
		{"create bad id", "createNode", `{"id":"a/b","kind":"k","x":0,"y":0}`, nil, "id must match"},
		{"create empty id", "createNode", `{"id":"","kind":"k","x":0,"y":0}`, nil, "id must match"},
		{"create long id", "createNode", `{"id":"` + strings.Repeat("a", 65) + `","kind":"k","x":0,"y":0}`, nil, "id must match"},
		{"create upper kind", "createNode", `{"id":"n","kind":"Note","x":0,"y":0}`, nil, "kind must match"},
		{"create empty kind", "createNode", `{"id":"n","kind":"","x":0,"y":0}`, nil, "kind must match"},
		{"create long kind", "createNode", `{"id":"n","kind":"` + strings.Repeat("k", 33) + `","x":0,"y":0}`, nil, "kind must match"},
		{"create x too big", "createNode", `{"id":"n","kind":"k","x":10000000.5,"y":0}`, nil, "x must be within"},
		{"create y too small", "createNode", `{"id":"n","kind":"k","x":0,"y":-1e8}`, nil, "y must be within"},
		{"create x overflow", "createNode", `{"id":"n","kind":"k","x":1e400,"y":0}`, nil, "x is out of range"},
		{"create y neg overflow", "createNode", `{"id":"n","kind":"k","x":0,"y":-1e400}`, nil, "y is out of range"},
		{"create w zero", "createNode", `{"id":"n","kind":"k","x":0,"y":0,"w":0}`, nil, "w must be > 0"},
		{"create h negative", "createNode", `{"id":"n","kind":"k","x":0,"y":0,"h":-1}`, nil, "h must be > 0"},
		{"create w too big", "createNode", `{"id":"n","kind":"k","x":0,"y":0,"w":100001}`, nil, "w must be > 0"},
		{"create title too long", "createNode", `{"id":"n","kind":"k","x":0,"y":0,"title":"` + long + `x"}`, nil, "title is longer than 200"},
		{"create body too long", "createNode", `{"id":"n","kind":"k","x":0,"y":0,"body":"` + strings.Repeat("b", 64<<10+1) + `"}`, nil, "body is longer than"},
		{"create x string", "createNode", `{"id":"n","kind":"k","x":"1","y":0}`, nil, "x must be a number"},
		{"create x bool", "createNode", `{"id":"n","kind":"k","x":true,"y":0}`, nil, "x must be a number"},
		{"create id number", "createNode", `{"id":5,"kind":"k","x":0,"y":0}`, nil, "id must be a string"},
		{"create title object", "createNode", `{"id":"n","kind":"k","x":0,"y":0,"title":{}}`, nil, "title must be a string"},
		{"create title null", "createNode", `{"id":"n","kind":"k","x":0,"y":0,"title":null}`, nil, "title must not be null"},
		{"create bad utf8", "createNode", "{\"id\":\"n\",\"kind\":\"k\",\"x\":0,\"y\":0,\"title\":\"a\xffb\"}", nil, "title is not valid UTF-8"},
		{"create args array", "createNode", `[1,2]`, nil, "args must be a JSON object"},
		{"create args null", "createNode", `null`, nil, "args must be a JSON object"},
		{"create args empty", "createNode", ``, nil, "args must be a JSON object"},
		{"create args string", "createNode", `"x"`, nil, "args must be a JSON object"},
		{"create args broken", "createNode", `{"id":"n",`, nil, "args are not valid JSON"},
		{"create trailing garbage", "createNode", `{"id":"n","kind":"k","x":0,"y":0} x`, nil, "args are not valid JSON"},

		// updateNode
		{"update id only", "updateNode", `{"id":"n"}`, UpdateNode{ID: "n"}, ""},
		{"update all", "updateNode", `{"id":"n","kind":"k","x":1,"y":2,"w":3,"h":4,"title":"t","body":"b"}`,
			UpdateNode{ID: "n", Kind: sp("k"), X: fp(1), Y: fp(2), W: fp(3), H: fp(4), Title: sp("t"), Body: sp("b")}, ""},
		{"update empty title", "updateNode", `{"id":"n","title":""}`, UpdateNode{ID: "n", Title: sp("")}, ""},
		{"update missing id", "updateNode", `{"x":1}`, nil, "id is required"},
		{"update null x", "updateNode", `{"id":"n","x":null}`, nil, "x must not be null"},
		{"update null kind", "updateNode", `{"id":"n","kind":null}`, nil, "kind must not be null"},
		{"update bad kind", "updateNode", `{"id":"n","kind":"a b"}`, nil, "kind must match"},
		{"update w zero", "updateNode", `{"id":"n","w":0}`, nil, "w must be > 0"},
		{"update h string", "updateNode", `{"id":"n","h":"1"}`, nil, "h must be a number"},
		{"update title long", "updateNode", `{"id":"n","title":"` + strings.Repeat("t", 201) + `"}`, nil, "title is longer"},
		{"nul in body", "createNode", `{"id":"n","kind":"k","x":1,"y":2,"body":"a\u0000b"}`, nil, "NUL"},
		{"nul in title", "updateCanvas", `{"title":"\u0000"}`, nil, "NUL"},

		// moveNode
		{"move", "moveNode", `{"id":"n","x":3,"y":4}`, MoveNode{ID: "n", X: 3, Y: 4}, ""},
		{"move whitespace", "moveNode", " \n{ \"id\" : \"n\" , \"x\" : -0.5e1 , \"y\" : 4 } \n", MoveNode{ID: "n", X: -5, Y: 4}, ""},
		{"move missing y", "moveNode", `{"id":"n","x":3}`, nil, "y is required"},
		{"move x overflow", "moveNode", `{"id":"n","x":1e400,"y":0}`, nil, "x is out of range"},
		{"move x array", "moveNode", `{"id":"n","x":[1],"y":0}`, nil, "x must be a number"},
		{"move x out of limit", "moveNode", `{"id":"n","x":2e7,"y":0}`, nil, "x must be within"},

		// deleteNode, deleteEdge
		{"delete node", "deleteNode", `{"id":"n"}`, DeleteNode{ID: "n"}, ""},
		{"delete node bad id", "deleteNode", `{"id":"n n"}`, nil, "id must match"},
		{"delete node no id", "deleteNode", `{}`, nil, "id is required"},
		{"delete edge", "deleteEdge", `{"id":"e"}`, DeleteEdge{ID: "e"}, ""},
		{"delete edge null id", "deleteEdge", `{"id":null}`, nil, "id must not be null"},

		// createEdge
		{"create edge", "createEdge", `{"id":"e","from":"a","to":"b"}`, CreateEdge{Edge{ID: "e", From: "a", To: "b"}}, ""},
		{"create edge missing to", "createEdge", `{"id":"e","from":"a"}`, nil, "to is required"},
		{"create edge bad from", "createEdge", `{"id":"e","from":"ä","to":"b"}`, nil, "from must match"},
		{"create edge from number", "createEdge", `{"id":"e","from":1,"to":"b"}`, nil, "from must be a string"},

		// updateCanvas
		{"update canvas", "updateCanvas", `{"title":"Hello \"world\""}`, UpdateCanvas{Title: `Hello "world"`}, ""},
		{"update canvas empty", "updateCanvas", `{"title":""}`, UpdateCanvas{}, ""},
		{"update canvas missing", "updateCanvas", `{}`, nil, "title is required"},
		{"update canvas long", "updateCanvas", `{"title":"` + long + `!"}`, nil, "title is longer than 200"},

		// unknown
		{"unknown mutator", "dropTable", `{}`, nil, "unknown mutator"},
		{"unknown mutator empty", "", `{}`, nil, "unknown mutator"},
		{"mutator names are case sensitive", "MoveNode", `{"id":"n","x":1,"y":1}`, nil, "unknown mutator"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			op, err := Decode(tc.mut, json.RawMessage(tc.args), lim)
			if tc.reason == "" {
				require.NoError(t, err)
				require.Equal(t, tc.want, op)
				require.Equal(t, tc.mut, MutatorName(op))
				return
			}
			require.Nil(t, op)
			var re *RuleError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tc.mut, re.Mutator)
			require.Contains(t, re.Reason, tc.reason)
		})
	}
}

func TestDecodeCustomLimits(t *testing.T) {
	t.Parallel()
	lim := Limits{MaxTitle: 3, MaxBody: 4, MaxCoord: 10, MaxSize: 100, MaxNodes: 1, MaxEdges: 1}

	_, err := Decode("createNode", json.RawMessage(`{"id":"n","kind":"k","x":0,"y":0}`), lim)
	require.ErrorContains(t, err, "w must be > 0 and <= 100", "the default w of 200 must respect MaxSize too")

	op, err := Decode("updateNode", json.RawMessage(`{"id":"n","title":"äöü","body":"ab\u00e9"}`), lim)
	require.NoError(t, err)
	require.Equal(t, UpdateNode{ID: "n", Title: sp("äöü"), Body: sp("abé")}, op)

	_, err = Decode("updateNode", json.RawMessage(`{"id":"n","body":"abc\u00e9"}`), lim)
	require.ErrorContains(t, err, "body is longer than 4 bytes", "body counts bytes after unescaping")

	_, err = Decode("moveNode", json.RawMessage(`{"id":"n","x":10.000001,"y":0}`), lim)
	require.ErrorContains(t, err, "x must be within")
}

// TestDecodeArgsStrictly: args with a duplicate name are refused (the
// client and the server would disagree on which one counts), and names
// match exactly: "ID" is not "id".
func TestDecodeArgsStrictly(t *testing.T) {
	t.Parallel()
	for _, args := range []string{
		`{"id":"n","x":"bad","x":1,"y":2}`,
		`{"id":"n","id":"m","x":1,"y":2}`,
		`{"id":"n","x":1,"y":2,"extra":{"a":1,"a":2}}`,
		`{"id":"n","x":1,"y":2} {}`,
		`{"Id":"n","x":1,"y":2}`,
		`{"ID":"n","X":1,"Y":2}`,
	} {
		_, err := Decode("moveNode", json.RawMessage(args), DefaultLimits())
		require.Error(t, err, args)
		require.True(t, IsRuleError(err), args)
	}
	op, err := Decode("moveNode", json.RawMessage(`{"id":"n","ID":"m","x":1,"y":2,"z":3}`), DefaultLimits())
	require.NoError(t, err, "members the mutator does not know are ignored, as the client ignores them")
	require.Equal(t, MoveNode{ID: "n", X: 1, Y: 2}, op)
}

func TestRuleErrorMessage(t *testing.T) {
	t.Parallel()
	_, err := Decode("moveNode", json.RawMessage(`{"id":"n","x":1}`), DefaultLimits())
	require.EqualError(t, err, "moveNode: y is required")
	require.True(t, IsRuleError(err))
}

func TestLongMutatorNameIsNotEchoed(t *testing.T) {
	t.Parallel()
	_, err := Decode(strings.Repeat("x", 100_000), json.RawMessage(`{}`), DefaultLimits())
	require.True(t, IsRuleError(err))
	require.Less(t, len(err.Error()), 100)
}
