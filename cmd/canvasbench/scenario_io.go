package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// pullStat is one pull as the scenarios measure it.
type pullStat struct {
	Resp     *pullResponse
	Dur      time.Duration // request sent -> last byte of the body read (decoding excluded)
	Wire     int64         // body bytes as received
	Decoded  int64         // body bytes after Content-Encoding
	Encoding string        // Content-Encoding of the response
}

// pullRaw sends one pull, with Accept-Encoding: gzip when gz, and measures
// the bytes on the wire and decoded.
func (a *api) pullRaw(ctx context.Context, canvas string, req *pullRequest, gz bool) (*pullStat, error) {
	buf, err := json.Marshal(req)
	if err != nil {
		return nil, &callError{Kind: "encode", Err: err}
	}
	rctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(rctx, http.MethodPost, a.base+canvasPath(canvas)+"/replicache/pull", bytes.NewReader(buf))
	if err != nil {
		return nil, &callError{Kind: "encode", Err: err}
	}
	hr.Header.Set("Content-Type", "application/json")
	if gz {
		hr.Header.Set("Accept-Encoding", "gzip")
	}
	start := time.Now()
	resp, err := a.hc.Do(hr)
	if err != nil {
		return nil, classifyTransport(ctx, err)
	}
	defer resp.Body.Close()
	wire, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	dur := time.Since(start)
	if err != nil {
		return nil, classifyTransport(ctx, err)
	}
	st := &pullStat{Dur: dur, Wire: int64(len(wire)), Encoding: resp.Header.Get("Content-Encoding")}
	body := wire
	if st.Encoding == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(wire))
		if err != nil {
			return nil, &callError{Kind: "pull_bad_gzip", Err: err}
		}
		if body, err = io.ReadAll(zr); err != nil {
			return nil, &callError{Kind: "pull_bad_gzip", Err: err}
		}
	}
	st.Decoded = int64(len(body))
	if resp.StatusCode != http.StatusOK {
		return nil, &callError{Kind: "http_" + strconv.Itoa(resp.StatusCode), Err: fmt.Errorf("pull: %s: %.200s", resp.Status, body)}
	}
	var pr pullResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		return nil, &callError{Kind: "pull_bad_body", Err: fmt.Errorf("%w: %.200s", err, body)}
	}
	switch {
	case pr.Error != "":
		return nil, &callError{Kind: "protocol_" + pr.Error, Err: fmt.Errorf("pull: %.200s", body)}
	case pr.Patch == nil || pr.LastMutationIDChanges == nil:
		return nil, &callError{Kind: "pull_null_field", Err: fmt.Errorf("pull: patch or lastMutationIDChanges missing: %.200s", body)}
	case cookieOrder(pr.Cookie) < 0:
		return nil, &callError{Kind: "pull_bad_cookie", Err: fmt.Errorf("pull: cookie without order: %.200s", body)}
	}
	st.Resp = &pr
	return st, nil
}

// newSSEClient is an HTTP client for many long-lived event streams: small
// buffers per connection, no pooling limits.
func newSSEClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:              nil,
		DialContext:        (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		DisableCompression: true,
		DisableKeepAlives:  true, // every stream is its own connection, closed with it
		ReadBufferSize:     1024,
		WriteBufferSize:    1024,
	}}
}

// openSSE opens the event stream of canvas and returns the response once
// its headers arrived (the server has subscribed the stream by then).
func openSSE(ctx context.Context, hc *http.Client, base, canvas string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+canvasPath(canvas)+"/events", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, classifyTransport(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &callError{Kind: "http_" + strconv.Itoa(resp.StatusCode), Err: fmt.Errorf("GET events: %s", resp.Status)}
	}
	return resp, nil
}

// readPokes reads an event stream with a small buffer and calls fn with the
// version of every poke (its id: field, else data's "version") and its
// arrival time, until r ends. Lines longer than the buffer are skipped.
func readPokes(r io.Reader, fn func(version int64, at time.Time)) error {
	br := bufio.NewReaderSize(r, 512)
	var isPoke bool
	version := int64(-1)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil {
				return eofNil(err)
			}
			continue
		}
		if err != nil {
			return eofNil(err)
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if isPoke && version >= 0 {
				fn(version, time.Now())
			}
			isPoke, version = false, -1
		case line[0] == ':':
		case bytes.HasPrefix(line, []byte("event:")):
			isPoke = string(bytes.TrimSpace(line[6:])) == "poke"
		case bytes.HasPrefix(line, []byte("id:")):
			if v, err := strconv.ParseInt(string(bytes.TrimSpace(line[3:])), 10, 64); err == nil {
				version = v
			}
		case bytes.HasPrefix(line, []byte("data:")) && version < 0:
			var d struct {
				Version int64 `json:"version"`
			}
			if json.Unmarshal(bytes.TrimSpace(line[5:]), &d) == nil {
				version = d.Version
			}
		}
	}
}

func eofNil(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// scenClient is a Replicache client group with one client, used by the
// scenarios to write (sequentially).
type scenClient struct {
	group, id string
	next      int64
}

func newScenClient(name string) *scenClient {
	return &scenClient{group: name + "-g", id: name, next: 1}
}

func (c *scenClient) push(ctx context.Context, a *api, canvas string, names []string, args []any) error {
	muts := make([]mutation, len(names))
	now := float64(time.Now().UnixNano()) / 1e6
	for i := range names {
		muts[i] = mutation{ID: c.next, ClientID: c.id, Name: names[i], Args: args[i], Timestamp: now}
		c.next++
	}
	err := a.push(ctx, canvas, &pushRequest{ProfileID: "p", ClientGroupID: c.group, PushVersion: 1, SchemaVersion: "1", Mutations: muts})
	if err != nil && !errors.Is(err, context.Canceled) && !canceled(err) && errKind(err) != "protocol_ClientStateNotFound" {
		// Not acknowledged: the ids will be resent by a real client; the
		// scenarios give up instead, so rewind to keep the ids gapless.
		c.next -= int64(len(names))
	}
	return err
}

func (c *scenClient) pullReq(cookie json.RawMessage) *pullRequest {
	if cookie == nil {
		cookie = json.RawMessage("null")
	}
	return &pullRequest{ProfileID: "p", ClientGroupID: c.group, Cookie: cookie, PullVersion: 1, SchemaVersion: "1"}
}

// createNodes creates n nodes n0..n{n-1} on canvas in pushes of per.
func createNodes(ctx context.Context, a *api, c *scenClient, canvas string, n, per int) error {
	for j := 0; j < n; j += per {
		var names []string
		var args []any
		for k := j; k < min(j+per, n); k++ {
			names = append(names, "createNode")
			args = append(args, map[string]any{"id": "n" + strconv.Itoa(k), "kind": "box",
				"x": float64(k % 1000 * 10), "y": float64(k / 1000 * 10), "w": 200, "h": 120,
				"title": "node " + strconv.Itoa(k), "body": ""})
		}
		if err := c.push(ctx, a, canvas, names, args); err != nil {
			return fmt.Errorf("create nodes on %s: %w", canvas, err)
		}
	}
	return nil
}

func moveArgs(node int, x float64) map[string]any {
	return map[string]any{"id": "n" + strconv.Itoa(node), "x": x, "y": float64(node)}
}
