package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/harness"
	"github.com/canvasd/canvasd/tests/pgtest"
)

// presenceEvent is the data of an `event: presence`.
type presenceEvent struct {
	Canvas   string          `json:"canvas"`
	ClientID string          `json:"clientID"`
	User     string          `json:"user"`
	State    json.RawMessage `json:"state"`
}

func postPresence(t *testing.T, s *harness.Server, canvasID, clientID string, state any) (int, string) {
	t.Helper()
	status, body := s.Do(t, http.MethodPost, "/api/canvases/"+canvasID+"/presence", map[string]any{"clientID": clientID, "state": state})
	return status, string(body)
}

func mustPresence(t *testing.T, s *harness.Server, canvasID, clientID string, state any) {
	t.Helper()
	status, body := postPresence(t, s, canvasID, clientID, state)
	require.Equal(t, http.StatusNoContent, status, body)
}

// openClientStream opens canvasID's events on s as clientID ("" for none).
func openClientStream(t *testing.T, s *harness.Server, canvasID, clientID string) (<-chan sseEvent, func()) {
	t.Helper()
	url := s.URL + "/api/canvases/" + canvasID + "/events"
	if clientID != "" {
		url += "?clientID=" + clientID
	}
	resp, events, stop := openSSEURL(t, url, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return events, stop
}

// nextPresence waits for the next presence event.
func nextPresence(t *testing.T, events <-chan sseEvent) presenceEvent {
	t.Helper()
	ev := nextEvent(t, events, "presence")
	var p presenceEvent
	require.NoError(t, json.Unmarshal([]byte(ev.data), &p), ev.data)
	return p
}

// presenceOf waits for a presence event of clientID.
func presenceOf(t *testing.T, events <-chan sseEvent, clientID string) presenceEvent {
	t.Helper()
	for {
		if p := nextPresence(t, events); p.ClientID == clientID {
			return p
		}
	}
}

// Presence posted on one instance reaches the streams of both, a new
// stream starts with the current presence, null takes it away, and none
// of it consumes a version.
func TestPresenceReachesEveryInstance(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	a := harness.Start(t, pgtest.PoolFrom(t, cfg, true))
	b := harness.Start(t, pgtest.PoolFrom(t, cfg, false))
	a.CreateCanvas(t, "c")
	onA, _ := openClientStream(t, a, "c", "")
	onB, _ := openClientStream(t, b, "c", "")

	mustPresence(t, a, "c", "k1", map[string]any{"x": 1, "y": 2, "name": "Ann"})
	for _, events := range []<-chan sseEvent{onA, onB} {
		p := nextPresence(t, events)
		require.JSONEq(t, `{"x":1,"y":2,"name":"Ann"}`, string(p.State))
		p.State = nil
		require.Equal(t, presenceEvent{Canvas: "c", ClientID: "k1", User: ""}, p)
	}

	// Posted on b, heard on a.
	mustPresence(t, b, "c", "k2", map[string]any{"sel": []string{"n1"}})
	require.JSONEq(t, `{"sel":["n1"]}`, string(presenceOf(t, onA, "k2").State))

	// A new stream, on either instance, first gets who is there.
	late, _ := openClientStream(t, b, "c", "")
	got := map[string]string{}
	for range 2 {
		p := nextPresence(t, late)
		got[p.ClientID] = string(p.State)
	}
	require.Len(t, got, 2)
	require.JSONEq(t, `{"x":1,"y":2,"name":"Ann"}`, got["k1"])
	require.JSONEq(t, `{"sel":["n1"]}`, got["k2"])

	// null takes a client away everywhere.
	mustPresence(t, a, "c", "k1", nil)
	for _, events := range []<-chan sseEvent{onA, onB, late} {
		p := presenceOf(t, events, "k1")
		require.Equal(t, "null", string(p.State))
	}

	// Nothing of it was versioned.
	status, body := a.Do(t, http.MethodGet, "/api/canvases/c", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), `"version":0`)
}

// A client's presence goes when its last event stream closes, on every
// instance, whichever instance it posted to.
func TestPresenceLeavesWithItsStream(t *testing.T) {
	t.Parallel()
	cfg := pgtest.Schema(t)
	a := harness.Start(t, pgtest.PoolFrom(t, cfg, true))
	b := harness.Start(t, pgtest.PoolFrom(t, cfg, false))
	a.CreateCanvas(t, "c")
	observer, _ := openClientStream(t, b, "c", "obs")
	_, closeK1 := openClientStream(t, a, "c", "k1")

	mustPresence(t, b, "c", "k1", map[string]any{"x": 5})
	require.JSONEq(t, `{"x":5}`, string(presenceOf(t, observer, "k1").State))
	// Make sure a has heard it before the stream closes there.
	require.Eventually(t, func() bool {
		ch, stop := openClientStream(t, a, "c", "")
		defer stop()
		select {
		case ev := <-ch:
			for ev.name != "presence" {
				ev = <-ch
			}
			return strings.Contains(ev.data, `"k1"`)
		case <-time.After(time.Second):
			return false
		}
	}, 5*time.Second, 20*time.Millisecond)

	closeK1()
	p := presenceOf(t, observer, "k1")
	require.Equal(t, "null", string(p.State))
}

// Without a refresh, presence expires after the TTL.
func TestPresenceExpires(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(a *actorsConfig, _ *httpConfig) { a.PresenceTTL = 300 * time.Millisecond })
	s.CreateCanvas(t, "c")
	events, _ := openClientStream(t, s, "c", "")
	start := time.Now()
	mustPresence(t, s, "c", "k", map[string]any{"x": 1})
	require.JSONEq(t, `{"x":1}`, string(presenceOf(t, events, "k").State))
	p := presenceOf(t, events, "k")
	require.Equal(t, "null", string(p.State))
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
}

// Updates of one client are coalesced: at most one per 1/30 s reaches a
// stream, and the newest always does.
func TestPresenceIsCoalesced(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(_ *actorsConfig, h *httpConfig) { h.PresenceRate.PerSecond = 0 })
	s.CreateCanvas(t, "c")
	events, _ := openClientStream(t, s, "c", "")
	const posts = 100
	start := time.Now()
	for i := range posts {
		mustPresence(t, s, "c", "k", map[string]any{"i": i})
	}
	elapsed := time.Since(start)
	received := 0
	for {
		p := presenceOf(t, events, "k")
		received++
		if string(p.State) == fmt.Sprintf(`{"i":%d}`, posts-1) {
			break
		}
	}
	// One at once, then at most one per interval (and one more at the end).
	bound := 2 + int(elapsed/(time.Second/30))
	require.LessOrEqual(t, received, bound, "%d posts in %s", posts, elapsed)
	require.Less(t, received, posts)
}

func TestPresenceBadInput(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(_ *actorsConfig, h *httpConfig) { h.PresenceRate.Burst = 3; h.PresenceRate.PerSecond = 0.1 })
	s.CreateCanvas(t, "c")
	big := `{"s":"` + strings.Repeat("x", 2048) + `"}`
	for _, body := range []string{
		``,
		`nope`,
		`[]`,
		`{"clientID":"k","state":{}} {}`,
		`{"clientID":"k","state":{}}x`,
		`{"clientID":"k","clientID":"j","state":{}}`,
		`{"clientID":"k","state":{"x":1,"x":2}}`,
		`{"clientID":"k","state":{"a":{"x":1,"x":2}}}`,
		`{"clientID":"k"}`,
		`{"state":{}}`,
		`{"clientID":"k","state":[1]}`,
		`{"clientID":"k","state":"here"}`,
		`{"clientID":"k","state":1}`,
		`{"clientID":"bad id","state":{}}`,
		`{"clientID":"k","state":{},"extra":1}`,
		`{"clientID":"k","state":` + big + `}`,
	} {
		status, resp := s.Do(t, http.MethodPost, "/api/canvases/c/presence", body)
		require.Equal(t, http.StatusBadRequest, status, "body %.80q: %s", body, resp)
		require.Contains(t, string(resp), `"error":"presence body: `, body)
	}
	// Exactly 2 KiB is fine, compacted.
	ok := `{ "s" : "` + strings.Repeat("x", 2048-8) + `" }`
	status, resp := s.Do(t, http.MethodPost, "/api/canvases/c/presence", `{"clientID":"k","state":`+ok+`}`)
	require.Equal(t, http.StatusNoContent, status, string(resp))

	status, _ = postPresence(t, s, "missing", "k", map[string]any{})
	require.Equal(t, http.StatusNotFound, status)

	// Rate limited per client: k has used 1 of its 3, j has its own.
	for range 2 {
		mustPresence(t, s, "c", "k", map[string]any{})
	}
	status, resp = s.Do(t, http.MethodPost, "/api/canvases/c/presence", `{"clientID":"k","state":null}`)
	require.Equal(t, http.StatusTooManyRequests, status, string(resp))
	mustPresence(t, s, "c", "j", map[string]any{})
}

// With authentication, the event names the user, a read grant suffices,
// and another user cannot take over a client id that is present.
func TestPresenceWithAuth(t *testing.T) {
	t.Parallel()
	s, service := authServer(t, nil)
	_ = service
	viewer := s.As(hsToken(t, "vera", "read:c"))
	other := s.As(hsToken(t, "otto", "read:c"))
	stranger := s.As(hsToken(t, "sam", "read:d"))

	events, _ := openStreamAs(t, s, "c", hsToken(t, "vera", "read:c"))
	mustPresence(t, viewer, "c", "k", map[string]any{"x": 1})
	p := presenceOf(t, events, "k")
	require.Equal(t, "vera", p.User)

	status, body := postPresence(t, other, "c", "k", map[string]any{"x": 2})
	require.Equal(t, http.StatusConflict, status, body)
	status, _ = postPresence(t, stranger, "c", "k2", map[string]any{"x": 2})
	require.Equal(t, http.StatusForbidden, status)
	status, _ = postPresence(t, s, "c", "k2", map[string]any{"x": 2})
	require.Equal(t, http.StatusUnauthorized, status)
}

// openStreamAs opens canvasID's events with token in the query.
func openStreamAs(t *testing.T, s *harness.Server, canvasID, token string) (<-chan sseEvent, func()) {
	t.Helper()
	resp, events, stop := openSSEURL(t, s.URL+"/api/canvases/"+canvasID+"/events?access_token="+token, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return events, stop
}
