package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/httpapi"
	"github.com/canvasd/canvasd/tests/harness"
)

// TestHostileInputs sends bad input of every kind to a running server. Each
// request gets its defined answer; after each, no canvas changed and the
// server still serves; at the end the honest client goes on.
func TestHostileInputs(t *testing.T) {
	t.Parallel()
	// Snapshots pull twice per case: more than one user's default rate.
	s, service := authServer(t, func(h *httpapi.Config) { h.PullRate = httpapi.RateLimit{PerSecond: 1000, Burst: 1000} })
	service.CreateCanvas(t, "other")
	alice := s.As(hsToken(t, "alice", "read:c", "write:c"))
	bob := s.As(hsToken(t, "bob", "read:*", "write:*"))

	mustPush(t, alice, "c", "ga",
		M{1, "a", "createNode", node("n1", 1, 2)},
		M{2, "a", "createNode", node("n2", 3, 4)},
		M{3, "a", "createEdge", map[string]any{"id": "e1", "from": "n1", "to": "n2"}})
	mustPush(t, bob, "other", "gbo", M{1, "bo", "createNode", node("x", 0, 0)})
	cookieC := string(alice.Pull(t, "c", "ga", nil).Cookie)
	cookieOther := string(bob.Pull(t, "other", "gbo", nil).Cookie)

	snapshot := func() map[string]map[string]map[string]any {
		return map[string]map[string]map[string]any{
			"c":     values(t, service.Pull(t, "c", "snapshot", nil)),
			"other": values(t, service.Pull(t, "other", "snapshot", nil)),
		}
	}
	baseline := snapshot()
	require.Len(t, baseline["c"], 4)

	env := func(group, muts string) string {
		return `{"profileID":"p","clientGroupID":"` + group + `","pushVersion":1,"schemaVersion":"1","mutations":[` + muts + `]}`
	}
	clients := 0
	// mut is one mutation of a fresh client, so a permanent error is not
	// hidden behind an already-applied id.
	mut := func(name, args string) string {
		clients++
		return fmt.Sprintf(`{"id":1,"clientID":"h%d","name":%q,"args":%s,"timestamp":1}`, clients, name, args)
	}
	pullEnv := func(group, cookie string) string {
		return `{"profileID":"p","clientGroupID":"` + group + `","cookie":` + cookie + `,"pullVersion":1,"schemaVersion":"1"}`
	}
	nested := func(depth int) string {
		return `{"id":"n9","kind":"k","x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `,"y":0}`
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf(`{"id":%d,"clientID":"m","name":"moveNode","args":{"id":"n1","x":0,"y":0}}`, i+1)
	}
	withEpoch := strings.Replace(cookieC, `"epoch":"`, `"epoch":"x`, 1)
	const (
		push     = "/api/canvases/c/replicache/push"
		pull     = "/api/canvases/c/replicache/pull"
		ok       = `{}`
		csnf     = `{"error":"ClientStateNotFound"}`
		anyError = "" // any JSON {"error": "..."}
	)

	for _, tc := range []struct {
		name     string
		as       *harness.Server
		method   string
		path     string
		body     string
		status   int
		wantBody string
	}{
		{"malformed JSON", alice, "POST", push, `{"profileID":`, 400, anyError},
		{"not JSON", alice, "POST", push, `hello`, 400, anyError},
		{"empty body", alice, "POST", push, ``, 400, anyError},
		{"trailing garbage", alice, "POST", push, env("ga", "") + `{}`, 400, anyError},
		{"pushVersion as string", alice, "POST", push, `{"clientGroupID":"ga","pushVersion":"1","mutations":[]}`, 400, anyError},
		{"mutations as object", alice, "POST", push, `{"clientGroupID":"ga","pushVersion":1,"mutations":{}}`, 400, anyError},
		{"clientGroupID as number", alice, "POST", push, `{"clientGroupID":7,"pushVersion":1,"mutations":[]}`, 400, anyError},
		{"args as string", alice, "POST", push, env("ga", mut("createNode", `"n9"`)), 200, ok},
		{"NaN", alice, "POST", push, env("ga", mut("createNode", `{"id":"n9","kind":"k","x":NaN,"y":0}`)), 400, anyError},
		{"Infinity", alice, "POST", push, env("ga", mut("moveNode", `{"id":"n1","x":Infinity,"y":0}`)), 400, anyError},
		{"number past float64", alice, "POST", push, env("ga", mut("moveNode", `{"id":"n1","x":1e400,"y":0}`)), 200, ok},
		{"number past the limit", alice, "POST", push, env("ga", mut("moveNode", `{"id":"n1","x":1e300,"y":0}`)), 200, ok},
		{"negative width", alice, "POST", push, env("ga", mut("updateNode", `{"id":"n1","w":-5}`)), 200, ok},
		{"mutation id past int64", alice, "POST", push, env("ga", `{"id":9223372036854775808,"clientID":"a","name":"moveNode","args":{}}`), 400, anyError},
		{"mutation id 1e30", alice, "POST", push, env("ga", `{"id":1e30,"clientID":"a","name":"moveNode","args":{}}`), 400, anyError},
		{"args nested past the JSON depth limit", alice, "POST", push, env("ga", mut("createNode", nested(20000))), 400, anyError},
		{"deeply nested args", alice, "POST", push, env("ga", mut("createNode", nested(5000))), 200, ok},
		{"unknown mutator", alice, "POST", push, env("ga", mut("dropTables", `{}`)), 200, ok},
		{"huge mutator name", alice, "POST", push, env("ga", mut(strings.Repeat("x", 100000), `{}`)), 200, ok},
		{"10 MB body", alice, "POST", push, env("ga", mut("updateCanvas", `{"title":"`+strings.Repeat("t", 10<<20)+`"}`)), 413, anyError},
		{"too many mutations", alice, "POST", push, env("ga", strings.Join(many, ",")), 400, anyError},
		{"duplicate mutation ids", alice, "POST", push, env("ga", `{"id":4,"clientID":"a","name":"moveNode","args":{"id":"n1","x":9,"y":9}},{"id":4,"clientID":"a","name":"moveNode","args":{"id":"n1","x":8,"y":8}}`), 400, anyError},
		{"decreasing mutation ids", alice, "POST", push, env("ga", `{"id":5,"clientID":"a","name":"moveNode","args":{"id":"n1","x":9,"y":9}},{"id":4,"clientID":"a","name":"moveNode","args":{"id":"n1","x":8,"y":8}}`), 400, anyError},
		{"group id breaking the pattern", alice, "POST", push, env("../ga", ""), 400, anyError},
		{"group id too long", alice, "POST", push, env(strings.Repeat("g", 65), ""), 400, anyError},
		{"client id breaking the pattern", alice, "POST", push, env("ga", `{"id":1,"clientID":"a b","name":"moveNode","args":{}}`), 400, anyError},
		{"node id breaking the pattern", alice, "POST", push, env("ga", mut("createNode", `{"id":"n/9","kind":"k","x":0,"y":0}`)), 200, ok},
		{"edge to itself", alice, "POST", push, env("ga", mut("createEdge", `{"id":"e9","from":"n1","to":"n1"}`)), 200, ok},
		{"edge closing a cycle", alice, "POST", push, env("ga", mut("createEdge", `{"id":"e9","from":"n2","to":"n1"}`)), 200, ok},
		{"title with NUL", alice, "POST", push, env("ga", mut("updateCanvas", `{"title":"a\u0000b"}`)), 200, ok},
		{"title too long", alice, "POST", push, env("ga", mut("updateCanvas", `{"title":"`+strings.Repeat("é", 201)+`"}`)), 200, ok},
		{"canvas id breaking the pattern", alice, "POST", "/api/canvases/c.1/replicache/push", env("ga", ""), 403, anyError},
		{"canvas id breaking the pattern, granted", service, "POST", "/api/canvases/c.1/replicache/push", env("ga", ""), 404, anyError},
		{"no token", s, "POST", push, env("ga", mut("createNode", `{"id":"n9","kind":"k","x":0,"y":0}`)), 401, anyError},
		{"wrong method", alice, "GET", push, ``, 405, anyError},

		// One strict decode: the bytes mean one thing to every reader.
		{"trailing bracket", alice, "POST", push, env("ga", "") + `]`, 400, anyError},
		{"duplicate key in the envelope", alice, "POST", push, `{"profileID":"p","clientGroupID":"gbo","clientGroupID":"ga","pushVersion":1,"schemaVersion":"1","mutations":[]}`, 400, anyError},
		{"duplicate key in a mutation", alice, "POST", push, env("ga", `{"id":4,"id":1,"clientID":"a","name":"moveNode","args":{"id":"n1","x":9,"y":9}}`), 400, anyError},
		{"case-varied key only", alice, "POST", push, `{"profileID":"p","ClientGroupID":"ga","pushVersion":1,"schemaVersion":"1","mutations":[]}`, 400, anyError},
		{"duplicate key in args", alice, "POST", push, env("ga", mut("moveNode", `{"id":"n1","x":5,"x":6,"y":0}`)), 400, anyError},
		{"case-varied key in args", alice, "POST", push, env("ga", mut("moveNode", `{"ID":"n1","X":5,"Y":6}`)), 200, ok},
		{"pull trailing bracket", alice, "POST", pull, pullEnv("ga", `null`) + `]`, 400, anyError},
		{"pull duplicate group", alice, "POST", pull, `{"profileID":"p","clientGroupID":"gbo","clientGroupID":"ga","cookie":null,"pullVersion":1,"schemaVersion":"1"}`, 400, anyError},
		{"cookie with a duplicate canvas", bob, "POST", pull, pullEnv("gbo", strings.Replace(cookieOther, `"canvas":"other"`, `"canvas":"other","canvas":"c"`, 1)), 400, anyError},

		{"pull malformed JSON", alice, "POST", pull, `{"clientGroupID":`, 400, anyError},
		{"pull version as string", alice, "POST", pull, `{"clientGroupID":"ga","pullVersion":"1"}`, 400, anyError},
		{"pull version 2", alice, "POST", pull, `{"clientGroupID":"ga","pullVersion":2}`, 200, `{"error":"VersionNotSupported","versionType":"pull"}`},
		{"push version 0", alice, "POST", push, `{"clientGroupID":"ga","pushVersion":0,"mutations":[]}`, 200, `{"error":"VersionNotSupported","versionType":"push"}`},
		{"cookie order as string", alice, "POST", pull, pullEnv("ga", `{"order":"1","canvas":"c","epoch":"e"}`), 200, csnf},
		{"cookie order negative", alice, "POST", pull, pullEnv("ga", `{"order":-1,"canvas":"c","epoch":"e"}`), 200, csnf},
		{"cookie order fractional", alice, "POST", pull, pullEnv("ga", `{"order":0.5,"canvas":"c","epoch":"e"}`), 200, csnf},
		{"cookie order 1e400", alice, "POST", pull, pullEnv("ga", `{"order":1e400,"canvas":"c","epoch":"e"}`), 200, csnf},
		{"cookie order ahead", alice, "POST", pull, pullEnv("ga", strings.Replace(cookieC, `"order":`, `"order":99999`, 1)), 200, csnf},
		{"cookie of another canvas", bob, "POST", pull, pullEnv("gbo2", cookieOther), 200, csnf},
		{"cookie of another epoch", alice, "POST", pull, pullEnv("ga", withEpoch), 200, csnf},
		{"cookie not an object", alice, "POST", pull, pullEnv("ga", `[1,2]`), 200, csnf},
		{"group of another canvas: pull", bob, "POST", pull, pullEnv("gbo", `null`), 200, csnf},
		{"group of another canvas: push", bob, "POST", push, env("gbo", `{"id":2,"clientID":"bo","name":"createNode","args":{"id":"n9","kind":"k","x":0,"y":0}}`), 200, csnf},
		{"group of another user: pull", bob, "POST", pull, pullEnv("ga", cookieC), 200, csnf},
		{"group of another user: push", bob, "POST", push, env("ga", `{"id":4,"clientID":"a","name":"deleteNode","args":{"id":"n1"}}`), 200, csnf},
		{"canvas that does not exist: pull, no grant", alice, "POST", "/api/canvases/ghost/replicache/pull", pullEnv("ga", `null`), 403, anyError},
		{"canvas that does not exist: pull", bob, "POST", "/api/canvases/ghost/replicache/pull", pullEnv("gg", `null`), 404, anyError},
		{"canvas that does not exist: push", bob, "POST", "/api/canvases/ghost/replicache/push", env("gg", `{"id":1,"clientID":"g","name":"createNode","args":{"id":"n9","kind":"k","x":0,"y":0}}`), 404, anyError},
		{"canvas that does not exist: events", bob, "GET", "/api/canvases/ghost/events", ``, 404, anyError},
		{"canvas that does not exist: get", bob, "GET", "/api/canvases/ghost", ``, 404, anyError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := tc.as.Do(t, tc.method, tc.path, tc.body)
			require.Equal(t, tc.status, status, "%.300s", body)
			if tc.wantBody != anyError {
				require.JSONEq(t, tc.wantBody, string(body))
			} else {
				var e map[string]any
				require.NoError(t, json.Unmarshal(body, &e), "%.300s", body)
				require.NotEmpty(t, e["error"], "%.300s", body)
				require.Len(t, e, 1, "%.300s", body)
			}
			require.NotContains(t, string(body), "goroutine")
			require.Equal(t, baseline, snapshot(), "nothing stored")
			status, _ = s.Do(t, http.MethodGet, "/healthz", nil)
			require.Equal(t, http.StatusOK, status)
		})
	}

	// The honest client was not wedged by any of it.
	mustPush(t, alice, "c", "ga", M{4, "a", "moveNode", move("n1", 7, 7)})
	p := alice.Pull(t, "c", "ga", json.RawMessage(cookieC))
	require.Equal(t, int64(4), p.LastMutationIDChanges["a"])
	require.Equal(t, 7.0, values(t, service.Pull(t, "c", "snapshot", nil))["node/n1"]["x"])
}
