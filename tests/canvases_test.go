package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/harness"
	"github.com/canvasd/canvasd/tests/pgtest"
)

type listing struct {
	Canvases []struct {
		ID        string    `json:"id"`
		Title     string    `json:"title"`
		Version   int64     `json:"version"`
		CreatedAt time.Time `json:"createdAt"`
	} `json:"canvases"`
	Next *string `json:"next"`
}

// listAll follows the pages of GET /api/canvases and returns the ids.
func listAll(t *testing.T, s *harness.Server, limit int) (ids []string, pages int) {
	t.Helper()
	after := ""
	for {
		status, body := s.Do(t, http.MethodGet, fmt.Sprintf("/api/canvases?limit=%d&after=%s", limit, after), nil)
		require.Equal(t, http.StatusOK, status, string(body))
		var l listing
		require.NoError(t, json.Unmarshal(body, &l))
		require.NotNil(t, l.Canvases, "canvases is a list, never null: %s", body)
		require.LessOrEqual(t, len(l.Canvases), limit)
		pages++
		for _, c := range l.Canvases {
			ids = append(ids, c.ID)
			require.False(t, c.CreatedAt.IsZero())
		}
		if l.Next == nil {
			return ids, pages
		}
		after = *l.Next
	}
}

func TestListCanvases(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	for _, id := range []string{"e", "a", "d", "b", "c"} {
		s.CreateCanvas(t, id)
	}
	mustPush(t, s, "b", "g", M{1, "x", "updateCanvas", map[string]any{"title": "Bee"}})

	ids, pages := listAll(t, s, 2)
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, ids)
	require.Equal(t, 3, pages)
	ids, pages = listAll(t, s, 5)
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, ids)
	require.Equal(t, 1, pages, "a full last page has no next")

	status, body := s.Do(t, http.MethodGet, "/api/canvases?limit=1&after=a", nil)
	require.Equal(t, http.StatusOK, status)
	var l listing
	require.NoError(t, json.Unmarshal(body, &l))
	require.Equal(t, "b", l.Canvases[0].ID)
	require.Equal(t, "Bee", l.Canvases[0].Title)
	require.Equal(t, int64(1), l.Canvases[0].Version)
	require.JSONEq(t, `"b"`, mustJSON(t, l.Next))

	// Defaults; an empty page is an empty list.
	status, body = s.Do(t, http.MethodGet, "/api/canvases", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), `"next":null`)
	status, body = s.Do(t, http.MethodGet, "/api/canvases?after=z", nil)
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"canvases":[],"next":null}`, string(body))

	for _, q := range []string{"limit=0", "limit=-1", "limit=501", "limit=x", "limit=1.5", "after=bad%20id", "after=" + string(make([]byte, 0)) + "%2F"} {
		status, body := s.Do(t, http.MethodGet, "/api/canvases?"+q, nil)
		require.Equal(t, http.StatusBadRequest, status, q)
		require.Contains(t, string(body), `"error"`)
	}
}

// Only canvases the caller may read are listed.
func TestListCanvasesByGrant(t *testing.T) {
	t.Parallel()
	s, service := authServer(t, nil) // creates "c"
	for _, id := range []string{"a", "b", "d"} {
		service.CreateCanvas(t, id)
	}
	ids, _ := listAll(t, s.As(hsToken(t, "u", "read:b", "read:d", "write:a", "read:zz")), 1)
	require.Equal(t, []string{"b", "d"}, ids)
	ids, _ = listAll(t, s.As(hsToken(t, "u", "read:*")), 10)
	require.Equal(t, []string{"a", "b", "c", "d"}, ids)
	ids, _ = listAll(t, s.As(hsToken(t, "u", "create")), 10)
	require.Empty(t, ids)
	status, _ := s.Do(t, http.MethodGet, "/api/canvases", nil)
	require.Equal(t, http.StatusUnauthorized, status)
}

// pullOrder is the cookie of a pull answer, raw.
func pullRaw(t *testing.T, s *harness.Server, canvasID, group string, cookie any) (int, string) {
	t.Helper()
	status, body := s.Do(t, http.MethodPost, "/api/canvases/"+canvasID+"/replicache/pull", pullBody(group))
	if cookie != nil {
		b := pullBody(group)
		b["cookie"] = cookie
		status, body = s.Do(t, http.MethodPost, "/api/canvases/"+canvasID+"/replicache/pull", b)
	}
	return status, string(body)
}

// countRows counts what is left of canvasID in the database.
func countRows(t *testing.T, s *harness.Server, canvasID string) int {
	t.Helper()
	var n int
	err := s.Store.Pool().QueryRow(context.Background(), `SELECT
		(SELECT count(*) FROM nodes WHERE canvas_id = $1) + (SELECT count(*) FROM edges WHERE canvas_id = $1) +
		(SELECT count(*) FROM clients WHERE canvas_id = $1) + (SELECT count(*) FROM client_groups WHERE canvas_id = $1) +
		(SELECT count(*) FROM client_groups_deleted WHERE canvas_id = $1)`,
		canvasID).Scan(&n)
	require.NoError(t, err)
	return n
}

// A deleted canvas is gone on both instances at once: reads, writes and
// streams answer 404 or end, memory does not serve it, its rows go in
// small batches, and creating it again starts a new epoch.
func TestDeleteCanvasAcrossInstances(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	small := func(a *actorsConfig, _ *httpConfig) { a.PurgeBatch = 3 }
	a := harness.Start(t, pgtest.PoolFrom(t, cfg, true), small)
	b := harness.Start(t, pgtest.PoolFrom(t, cfg, false), small)
	a.CreateCanvas(t, "c")
	a.CreateCanvas(t, "keep")
	var ms []M
	for i := range 10 {
		ms = append(ms, M{int64(i + 1), "x", "createNode", node(fmt.Sprintf("n%d", i), 0, 0)})
	}
	ms = append(ms, M{11, "x", "createEdge", map[string]any{"id": "e", "from": "n0", "to": "n1"}})
	mustPush(t, b, "c", "g", ms...)
	mustPush(t, a, "keep", "g2", M{1, "y", "createNode", node("n", 0, 0)})
	old := b.Pull(t, "c", "g", nil) // b's memory holds the canvas
	require.Len(t, values(t, old), 12)
	onA, _ := openClientStream(t, a, "c", "k")
	onB, _ := openClientStream(t, b, "c", "")
	mustPresence(t, a, "c", "k", map[string]any{"x": 1})
	presenceOf(t, onB, "k")

	// A group deleted for idleness is remembered; that memory goes too.
	_, err := a.Store.Pool().Exec(context.Background(), `INSERT INTO client_groups_deleted (canvas_id, id) VALUES ('c', 'idle')`)
	require.NoError(t, err)

	status, body := b.Do(t, http.MethodDelete, "/api/canvases/c", nil)
	require.Equal(t, http.StatusNoContent, status, string(body))

	// The streams of both instances end.
	for _, events := range []<-chan sseEvent{onA, onB} {
		require.Eventually(t, func() bool {
			for {
				select {
				case _, ok := <-events:
					if !ok {
						return true
					}
				default:
					return false
				}
			}
		}, 10*time.Second, 10*time.Millisecond, "stream not ended")
	}
	for _, s := range []*harness.Server{a, b} {
		status, _ := s.Do(t, http.MethodGet, "/api/canvases/c", nil)
		require.Equal(t, http.StatusNotFound, status)
		status, _ = pullRaw(t, s, "c", "g", nil)
		require.Equal(t, http.StatusNotFound, status)
		status, _ = push(t, s, "c", "g", M{12, "x", "moveNode", move("n0", 1, 1)})
		require.Equal(t, http.StatusNotFound, status)
		status, _ = s.Do(t, http.MethodGet, "/api/canvases/c/events", nil)
		require.Equal(t, http.StatusNotFound, status)
		status, _ = postPresence(t, s, "c", "k", map[string]any{})
		require.Equal(t, http.StatusNotFound, status)
		status, _ = s.Do(t, http.MethodDelete, "/api/canvases/c", nil)
		require.Equal(t, http.StatusNotFound, status)
		ids, _ := listAll(t, s, 10)
		require.Equal(t, []string{"keep"}, ids)
	}

	// The rows go in the background, in batches of 3; the other canvas
	// keeps its own.
	require.Eventually(t, func() bool { return countRows(t, a, "c") == 0 }, 10*time.Second, 20*time.Millisecond)
	require.GreaterOrEqual(t, a.Sys.Metrics.PurgeBatches.Load()+b.Sys.Metrics.PurgeBatches.Load(), int64(4))
	require.Equal(t, 3, countRows(t, a, "keep"))

	// A new incarnation: old cookies reset, nothing of the old content,
	// on the instance that held it in memory too.
	a.CreateCanvas(t, "c")
	for _, s := range []*harness.Server{a, b} {
		status, body := pullRaw(t, s, "c", "g", json.RawMessage(old.Cookie))
		require.Equal(t, http.StatusOK, status)
		require.JSONEq(t, `{"error":"ClientStateNotFound"}`, body)
		fresh := s.Pull(t, "c", "fresh", nil)
		require.Equal(t, map[string]map[string]any{"canvas": {"id": "c", "title": ""}}, values(t, fresh))
	}
	mustPush(t, b, "c", "g3", M{1, "z", "createNode", node("m", 0, 0)})
	require.Len(t, values(t, a.Pull(t, "c", "g4", nil)), 2)
}

// Creating an id whose purge is not finished finishes it first.
func TestRecreateBeforePurgeFinishes(t *testing.T) {
	t.Parallel()
	// A purge batch of 1 and a stopped purger leave rows behind.
	s := newServer(t, func(a *actorsConfig, _ *httpConfig) { a.PurgeBatch = 1 })
	s.CreateCanvas(t, "c")
	mustPush(t, s, "c", "g", M{1, "x", "createNode", node("n1", 0, 0)}, M{2, "x", "createNode", node("n2", 0, 0)})
	require.NoError(t, s.Store.DeleteCanvas(context.Background(), "c")) // no purger kicked
	require.Positive(t, countRows(t, s, "c"))
	s.CreateCanvas(t, "c")
	require.Equal(t, 0, countRows(t, s, "c"))
	require.Equal(t, map[string]map[string]any{"canvas": {"id": "c", "title": ""}}, values(t, s.Pull(t, "c", "g2", nil)))
}

func TestDeleteNeedsTheWriteGrant(t *testing.T) {
	t.Parallel()
	s, service := authServer(t, nil)
	status, _ := s.As(hsToken(t, "u", "read:c")).Do(t, http.MethodDelete, "/api/canvases/c", nil)
	require.Equal(t, http.StatusForbidden, status)
	status, _ = s.As(hsToken(t, "u", "write:x")).Do(t, http.MethodDelete, "/api/canvases/x", nil)
	require.Equal(t, http.StatusNotFound, status)
	status, _ = s.As(hsToken(t, "u", "write:c")).Do(t, http.MethodDelete, "/api/canvases/c", nil)
	require.Equal(t, http.StatusNoContent, status)
	status, _ = service.Do(t, http.MethodGet, "/api/canvases/c", nil)
	require.Equal(t, http.StatusNotFound, status)
}

// An instance that never heard of a deletion (its notification lost)
// still ends the canvas's streams, at the next version check.
func TestDeletionUnheardEndsStreams(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	events, _ := openClientStream(t, s, "c", "")
	require.NoError(t, s.Store.DeleteCanvas(context.Background(), "c")) // nobody told
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("stream of a deleted canvas still open")
		}
	}
}
