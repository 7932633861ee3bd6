package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// api speaks canvasd's HTTP contract: canvas creation and the Replicache
// push/pull endpoints (DESIGN.md, REPLICACHE.md).
type api struct {
	base    string // http://host:port, no trailing slash
	hc      *http.Client
	timeout time.Duration
}

func newAPI(base string, timeout time.Duration, conns int) *api {
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy: the target is loopback
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &api{base: trimSlash(base), hc: &http.Client{Transport: tr}, timeout: timeout}
}

func (a *api) close() { a.hc.CloseIdleConnections() }

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// mutation is one Replicache mutation of a push. tag is the bench's unique
// (per canvas) sequence number, embedded in the values it writes so the
// observer can tell which push it sees; 0 = untagged.
type mutation struct {
	ID        int64   `json:"id"`
	ClientID  string  `json:"clientID"`
	Name      string  `json:"name"`
	Args      any     `json:"args"`
	Timestamp float64 `json:"timestamp"`
	tag       int64
}

type pushRequest struct {
	ProfileID     string     `json:"profileID"`
	ClientGroupID string     `json:"clientGroupID"`
	PushVersion   int        `json:"pushVersion"`
	SchemaVersion string     `json:"schemaVersion"`
	Mutations     []mutation `json:"mutations"`
}

type pullRequest struct {
	ProfileID     string          `json:"profileID"`
	ClientGroupID string          `json:"clientGroupID"`
	Cookie        json.RawMessage `json:"cookie"`
	PullVersion   int             `json:"pullVersion"`
	SchemaVersion string          `json:"schemaVersion"`
}

type patchOp struct {
	Op    string          `json:"op"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

type pullResponse struct {
	Cookie                json.RawMessage   `json:"cookie"`
	LastMutationIDChanges *map[string]int64 `json:"lastMutationIDChanges"`
	Patch                 *[]patchOp        `json:"patch"`
	Error                 string            `json:"error"`
}

// callError is a failed request, classified for the error table.
type callError struct {
	Kind       string        // e.g. http_503, timeout, conn, protocol_ClientStateNotFound
	RetryAfter time.Duration // from a 429/503 Retry-After header
	Err        error
}

func (e *callError) Error() string { return e.Kind + ": " + e.Err.Error() }

// canceled reports whether err comes from the caller giving up (the run
// ending), which is not an error of the server.
func canceled(err error) bool {
	var ce *callError
	return errors.As(err, &ce) && ce.Kind == "canceled"
}

func errKind(err error) string {
	var ce *callError
	if errors.As(err, &ce) {
		return ce.Kind
	}
	return "other"
}

// post sends a JSON body and returns the 200 response body.
func (a *api) post(ctx context.Context, path string, body any, accept ...int) ([]byte, error) {
	buf, err := json.Marshal(body)
	if err != nil {
		return nil, &callError{Kind: "encode", Err: err}
	}
	rctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, a.base+path, bytes.NewReader(buf))
	if err != nil {
		return nil, &callError{Kind: "encode", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, classifyTransport(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, classifyTransport(ctx, err)
	}
	ok := resp.StatusCode == http.StatusOK
	for _, s := range accept {
		ok = ok || resp.StatusCode == s
	}
	if !ok {
		ce := &callError{Kind: "http_" + strconv.Itoa(resp.StatusCode), Err: fmt.Errorf("%s %s: %s: %.200s", req.Method, path, resp.Status, data)}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			ce.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
		}
		return nil, ce
	}
	return data, nil
}

func classifyTransport(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return &callError{Kind: "canceled", Err: err}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &callError{Kind: "timeout", Err: err}
	}
	return &callError{Kind: "conn", Err: err}
}

func parseRetryAfter(s string) time.Duration {
	if s == "" {
		return 0
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(s); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func canvasPath(canvas string) string { return "/api/canvases/" + url.PathEscape(canvas) }

// createCanvas creates (or finds) a canvas.
func (a *api) createCanvas(ctx context.Context, id string) error {
	_, err := a.post(ctx, "/api/canvases", map[string]string{"id": id, "title": id}, http.StatusCreated)
	return err
}

// push sends one push. A 200 with an empty or {} body is success; a 200 with
// {"error":...} is a protocol error.
func (a *api) push(ctx context.Context, canvas string, req *pushRequest) error {
	data, err := a.post(ctx, canvasPath(canvas)+"/replicache/push", req)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var body struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		return &callError{Kind: "push_bad_body", Err: fmt.Errorf("%w: %.200s", err, data)}
	}
	if body.Error != "" {
		return &callError{Kind: "protocol_" + body.Error, Err: fmt.Errorf("push: %.200s", data)}
	}
	return nil
}

// pull sends one pull and checks the response shape Replicache insists on.
func (a *api) pull(ctx context.Context, canvas string, req *pullRequest) (*pullResponse, error) {
	data, err := a.post(ctx, canvasPath(canvas)+"/replicache/pull", req)
	if err != nil {
		return nil, err
	}
	var resp pullResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, &callError{Kind: "pull_bad_body", Err: fmt.Errorf("%w: %.200s", err, data)}
	}
	switch {
	case resp.Error != "":
		return nil, &callError{Kind: "protocol_" + resp.Error, Err: fmt.Errorf("pull: %.200s", data)}
	case resp.Patch == nil:
		return nil, &callError{Kind: "pull_null_patch", Err: fmt.Errorf("pull: patch missing or null: %.200s", data)}
	case resp.LastMutationIDChanges == nil:
		return nil, &callError{Kind: "pull_null_lmid", Err: fmt.Errorf("pull: lastMutationIDChanges missing or null: %.200s", data)}
	case cookieOrder(resp.Cookie) < 0:
		return nil, &callError{Kind: "pull_bad_cookie", Err: fmt.Errorf("pull: cookie without order: %.200s", data)}
	}
	return &resp, nil
}

// cookieOrder returns the order of a canvasd cookie, or -1 if it has none.
func cookieOrder(raw json.RawMessage) float64 {
	var c struct {
		Order json.Number `json:"order"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.Order == "" {
		return -1
	}
	f, err := strconv.ParseFloat(string(c.Order), 64)
	if err != nil {
		return -1
	}
	return f
}

// get performs a GET and returns the 200 body (used for /readyz).
func (a *api) get(ctx context.Context, path string) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, classifyTransport(ctx, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, &callError{Kind: "http_" + strconv.Itoa(resp.StatusCode), Err: fmt.Errorf("GET %s: %s", path, resp.Status)}
	}
	return data, nil
}
