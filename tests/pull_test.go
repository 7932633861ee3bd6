package tests

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/harness"
)

func TestPullCookiesOutsideTheCanvasHistory(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	s.CreateCanvas(t, "other")
	mustPush(t, s, "c", "g", M{1, "a", "createNode", node("n", 0, 0)})
	good := s.Pull(t, "c", "g", nil)
	var ck struct {
		Order  int64  `json:"order"`
		Canvas string `json:"canvas"`
		Epoch  string `json:"epoch"`
	}
	require.NoError(t, json.Unmarshal(good.Cookie, &ck))
	require.Equal(t, "c", ck.Canvas)
	require.NotEmpty(t, ck.Epoch)

	for name, cookie := range map[string]any{
		"other canvas":   map[string]any{"order": 1, "canvas": "other", "epoch": ck.Epoch},
		"other epoch":    map[string]any{"order": 1, "canvas": "c", "epoch": "x" + ck.Epoch},
		"order ahead":    map[string]any{"order": ck.Order + 1, "canvas": "c", "epoch": ck.Epoch},
		"negative order": map[string]any{"order": -1, "canvas": "c", "epoch": ck.Epoch},
		"string order":   map[string]any{"order": "1", "canvas": "c", "epoch": ck.Epoch},
		"fraction":       map[string]any{"order": 0.5, "canvas": "c", "epoch": ck.Epoch},
		"number cookie":  42,
		"string cookie":  "hello",
		"no order":       map[string]any{"canvas": "c", "epoch": ck.Epoch},
	} {
		t.Run(name, func(t *testing.T) {
			p := s.Pull(t, "c", "g", cookie)
			require.Equal(t, "ClientStateNotFound", p.Error, p.Raw)
		})
	}
	// The good cookie still works, with nothing new.
	p := s.Pull(t, "c", "g", json.RawMessage(good.Cookie))
	require.Empty(t, p.Error)
	require.Empty(t, p.Patch)
}

func TestPullErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	for _, tc := range []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"malformed", "c", `[1,2`, 400, ""},
		{"pull version", "c", `{"clientGroupID":"g","pullVersion":2,"cookie":null}`, 200, `{"error":"VersionNotSupported","versionType":"pull"}`},
		{"bad group", "c", `{"clientGroupID":"","pullVersion":1,"cookie":null}`, 400, ""},
		{"unknown canvas", "nope", `{"clientGroupID":"g","pullVersion":1,"cookie":null}`, 404, ""},
		{"trailing data", "c", `{"clientGroupID":"g","pullVersion":1,"cookie":null} {}`, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := s.Do(t, http.MethodPost, "/api/canvases/"+tc.path+"/replicache/pull", tc.body)
			require.Equal(t, tc.status, status, string(body))
			if tc.want != "" {
				require.JSONEq(t, tc.want, string(body))
			} else {
				require.Contains(t, string(body), `"error":`)
			}
		})
	}
}

func TestIncrementalPullCarriesOnlyNewRows(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	var ms []M
	for i := range 20 {
		ms = append(ms, M{int64(i + 1), "a", "createNode", node(fmt.Sprintf("n%d", i), 0, 0)})
	}
	mustPush(t, s, "c", "g", ms...)
	full := s.Pull(t, "c", "g", nil)
	require.Len(t, full.Patch, 22, "clear, canvas, 20 nodes")

	mustPush(t, s, "c", "g", M{21, "a", "moveNode", move("n3", 1, 2)})
	// Another group's pull sees the row but not a's lastMutationID.
	other := s.Pull(t, "c", "g2", json.RawMessage(full.Cookie))
	require.Len(t, other.Patch, 1)
	require.Empty(t, other.LastMutationIDChanges)
	mine := s.Pull(t, "c", "g", json.RawMessage(full.Cookie))
	require.Equal(t, map[string]int64{"a": 21}, mine.LastMutationIDChanges)
	require.Greater(t, mine.Order(t), full.Order(t))
}

func TestCanvasRoutes(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	status, body := s.Do(t, http.MethodPost, "/api/canvases", map[string]string{"id": "c", "title": "Hello"})
	require.Equal(t, http.StatusCreated, status, string(body))
	status, body = s.Do(t, http.MethodPost, "/api/canvases", map[string]string{"id": "c", "title": "ignored"})
	require.Equal(t, http.StatusOK, status)
	var cv struct{ ID, Title string }
	require.NoError(t, json.Unmarshal(body, &cv))
	require.Equal(t, "Hello", cv.Title, "an existing canvas is returned as it is")

	status, body = s.Do(t, http.MethodPost, "/api/canvases", nil)
	require.Equal(t, http.StatusCreated, status, "an id is generated when none is given")
	require.NoError(t, json.Unmarshal(body, &cv))
	require.Regexp(t, `^[A-Za-z0-9_-]{1,64}$`, cv.ID)

	status, _ = s.Do(t, http.MethodGet, "/api/canvases/c", nil)
	require.Equal(t, http.StatusOK, status)
	status, body = s.Do(t, http.MethodGet, "/api/canvases/missing", nil)
	require.Equal(t, http.StatusNotFound, status)
	require.JSONEq(t, `{"error":"canvas not found"}`, string(body))

	for _, bad := range []string{`{"id":"a b"}`, `{"id":""}`, `{"id":5}`, `{"title":"` + strings.Repeat("t", 201) + `"}`, `{"title":"a\u0000b"}`, `nope`} {
		status, body = s.Do(t, http.MethodPost, "/api/canvases", bad)
		if bad == `{"id":""}` {
			require.Equal(t, http.StatusCreated, status, "empty id means generate one")
			continue
		}
		require.Equal(t, http.StatusBadRequest, status, bad+": "+string(body))
	}
	status, _ = s.Do(t, http.MethodGet, "/healthz", nil)
	require.Equal(t, http.StatusOK, status)
	status, _ = s.Do(t, http.MethodGet, "/readyz", nil)
	require.Equal(t, http.StatusOK, status)
	status, body = s.Do(t, http.MethodGet, "/metrics", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), "canvasd_pushes_total")
}

func TestLargePullsAreGzipped(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	var ms []M
	for i := range 200 {
		ms = append(ms, M{int64(i + 1), "a", "createNode", map[string]any{"id": fmt.Sprintf("n%d", i), "kind": "box", "x": i, "y": 0, "body": strings.Repeat("text ", 20)}})
	}
	mustPush(t, s, "c", "g", ms...)

	body := `{"profileID":"p","clientGroupID":"g","cookie":null,"pullVersion":1,"schemaVersion":"1"}`
	req, err := http.NewRequest(http.MethodPost, s.URL+"/api/canvases/c/replicache/pull", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req) // no transparent decompression
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "gzip", resp.Header.Get("Content-Encoding"))
	zr, err := gzip.NewReader(resp.Body)
	require.NoError(t, err)
	var p harness.PullResponse
	require.NoError(t, json.NewDecoder(zr).Decode(&p))
	require.Len(t, p.Patch, 202, "clear, canvas and 200 nodes")

	// A small incremental pull is sent as it is.
	mustPush(t, s, "c", "g", M{201, "a", "moveNode", move("n1", 5, 5)})
	req, err = http.NewRequest(http.MethodPost, s.URL+"/api/canvases/c/replicache/pull",
		strings.NewReader(`{"profileID":"p","clientGroupID":"g","cookie":`+string(p.Cookie)+`,"pullVersion":1,"schemaVersion":"1"}`))
	require.NoError(t, err)
	req.Header.Set("Accept-Encoding", "gzip")
	resp2, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(t, err)
	defer resp2.Body.Close()
	require.Empty(t, resp2.Header.Get("Content-Encoding"))
}
