package tests

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/harness"
)

// sseEvent is one event (or comment) of a stream.
type sseEvent struct {
	name, id, data, comment, retry string
}

// openSSE opens the events stream of canvasID and returns its events.
func openSSE(t *testing.T, s *harness.Server, canvasID, lastEventID string) (*http.Response, <-chan sseEvent) {
	t.Helper()
	resp, events, _ := openSSEURL(t, s.URL+"/api/canvases/"+canvasID+"/events", lastEventID)
	return resp, events
}

// openSSEURL opens the event stream at url; closing it with the returned
// func (also done when the test ends) ends the events.
func openSSEURL(t *testing.T, url, lastEventID string) (*http.Response, <-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	events := make(chan sseEvent, 64)
	done := make(chan struct{})
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			resp.Body.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				select {
				case events <- ev:
				case <-ctx.Done():
					return
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			case strings.HasPrefix(line, "retry: "):
				ev.retry = line[7:]
			}
		}
	}()
	return resp, events, stop
}

// nextPoke waits for the next poke event.
func nextPoke(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	return nextEvent(t, events, "poke")
}

// nextEvent waits for the next event called name, skipping others.
func nextEvent(t *testing.T, events <-chan sseEvent, name string) sseEvent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "stream ended")
			if ev.name == name {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event within 10s", name)
		}
	}
}

func TestEventsStreamPokes(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(_ *actorsConfig, h *httpConfig) { h.PingInterval = 50 * time.Millisecond })
	s.CreateCanvas(t, "c")
	resp, events := openSSE(t, s, "c", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	require.Equal(t, "no", resp.Header.Get("X-Accel-Buffering"))

	// Heartbeats flow while nothing happens.
	deadline := time.After(5 * time.Second)
	for pings := 0; pings < 2; {
		select {
		case ev := <-events:
			if ev.comment == "ping" {
				pings++
			}
		case <-deadline:
			t.Fatal("no heartbeat")
		}
	}

	mustPush(t, s, "c", "g", M{1, "a", "createNode", node("n", 0, 0)})
	ev := nextPoke(t, events)
	require.Equal(t, "1", ev.id)
	require.JSONEq(t, `{"canvas":"c","version":1}`, ev.data)
}

func TestEventsLastEventIDCatchUp(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	mustPush(t, s, "c", "g", M{1, "a", "createNode", node("n", 0, 0)})
	mustPush(t, s, "c", "g", M{2, "a", "moveNode", move("n", 1, 1)})

	// Behind: poked at once with the current version.
	_, events := openSSE(t, s, "c", "1")
	ev := nextPoke(t, events)
	require.Equal(t, "2", ev.id)

	// Up to date: no poke until something changes.
	_, events = openSSE(t, s, "c", "2")
	mustPush(t, s, "c", "g", M{3, "a", "moveNode", move("n", 2, 2)})
	require.Equal(t, "3", nextPoke(t, events).id)
}

func TestEventsUnknownCanvas(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	status, body := s.Do(t, http.MethodGet, "/api/canvases/nope/events", nil)
	require.Equal(t, http.StatusNotFound, status)
	require.JSONEq(t, `{"error":"canvas not found"}`, string(body))
}

func TestPokesAreCoalescedForSlowReaders(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	sub, err := s.Sys.Subscribe(context.Background(), "c")
	require.NoError(t, err)
	defer sub.Close()
	// Nobody reads while 20 commits land.
	for i := range 20 {
		mustPush(t, s, "c", "g", M{int64(i + 1), "a", "updateCanvas", map[string]any{"title": "t" + string(rune('a'+i))}})
	}
	// The reader then finds a poke or two pending, the newest version last:
	// not one per commit.
	var got, reads int64
	require.Eventually(t, func() bool {
		select {
		case got = <-sub.C:
			reads++
		default:
		}
		return got == 20
	}, 5*time.Second, 5*time.Millisecond)
	require.LessOrEqual(t, reads, int64(3))
}

func TestShutdownEndsStreamsWithRetryHint(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	s.CreateCanvas(t, "c")
	_, events := openSSE(t, s, "c", "")
	<-events // connected
	go s.Sys.Drain()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "stream ended without a retry hint")
			if ev.retry != "" {
				require.Regexp(t, `^\d+$`, ev.retry)
				return
			}
		case <-deadline:
			t.Fatal("stream not ended on shutdown")
		}
	}
}
