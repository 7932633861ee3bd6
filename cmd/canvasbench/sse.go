package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// poke is one SSE poke event.
type poke struct {
	Canvas  string `json:"canvas"`
	Version int64  `json:"version"`
	ID      string `json:"-"` // the SSE id: field
}

// sseEvent is one dispatched server-sent event.
type sseEvent struct {
	Event, ID, Data string
}

// readSSE parses an event stream (the subset canvasd sends: event, id, data,
// comments) and calls fn for every dispatched event until r ends.
func readSSE(r io.Reader, fn func(sseEvent)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(data) > 0 || ev.Event != "" {
				ev.Data = strings.Join(data, "\n")
				fn(ev)
			}
			ev, data = sseEvent{}, data[:0]
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // comment (": ping")
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Event = value
		case "id":
			ev.ID = value
		case "data":
			data = append(data, value)
		}
	}
	return sc.Err()
}

// pokeBox is where an SSE listener leaves pokes for its observer: pokes that
// arrive while the observer pulls are coalesced (like canvasd's subscriber
// actor and a real client's pull-on-poke).
type pokeBox struct {
	mu      sync.Mutex
	pending bool
	last    time.Time // arrival of the latest pending poke
	count   int64
	wake    chan struct{}
}

func newPokeBox() *pokeBox { return &pokeBox{wake: make(chan struct{}, 1)} }

func (b *pokeBox) put(at time.Time) {
	b.mu.Lock()
	b.pending, b.last = true, at
	b.count++
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// take returns the arrival time of the latest pending poke and clears it.
func (b *pokeBox) take() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	at, ok := b.last, b.pending
	b.pending = false
	return at, ok
}

// listenSSE keeps an SSE connection to canvas open until ctx ends,
// reconnecting (with Last-Event-ID) after failures, and puts every poke into
// box. connected is closed after the first successful connect.
func listenSSE(ctx context.Context, a *api, canvas string, box *pokeBox, errs func(string), connected chan<- struct{}) {
	lastID := ""
	first := true
	for ctx.Err() == nil {
		err := sseOnce(ctx, a, canvas, &lastID, box, errs, func() {
			if first {
				first = false
				close(connected)
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			errs("sse_" + errKind(err))
		} else {
			errs("sse_closed")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func sseOnce(ctx context.Context, a *api, canvas string, lastID *string, box *pokeBox, errs func(string), onOpen func()) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+canvasPath(canvas)+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return classifyTransport(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &callError{Kind: "http_" + strconv.Itoa(resp.StatusCode), Err: fmt.Errorf("GET events: %s", resp.Status)}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return &callError{Kind: "content_type", Err: fmt.Errorf("GET events: Content-Type %q", ct)}
	}
	onOpen()
	err = readSSE(resp.Body, func(ev sseEvent) {
		if ev.Event != "poke" {
			return
		}
		at := time.Now()
		var p poke
		if json.Unmarshal([]byte(ev.Data), &p) != nil || p.Canvas != canvas {
			errs("sse_bad_poke")
		}
		if ev.ID != "" {
			*lastID = ev.ID
		}
		box.put(at)
	})
	if err != nil {
		return classifyTransport(ctx, err)
	}
	return nil
}
