// Package harness runs a complete canvasd — store, actor system and HTTP
// API — inside a test, on a pool the test provides.
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/canvas/store"
	"github.com/canvasd/canvasd/httpapi"
)

// Server is one canvasd instance.
type Server struct {
	URL   string
	Store *store.Store
	Sys   *actors.System
	// Header is sent with every request of Do (and so Push, Pull...).
	Header http.Header
	http   *httptest.Server
	api    *httpapi.Server
}

// As returns a client of the same instance sending token as its bearer
// token; the instance still stops with the test.
func (s *Server) As(token string) *Server {
	c := *s
	c.Header = http.Header{"Authorization": {"Bearer " + token}}
	return &c
}

// Option adjusts the configuration of a Server.
type Option func(*actors.Config, *httpapi.Config)

// Start runs a canvasd on pool until the test ends. Instances sharing a
// test share a notify channel, as instances sharing a database would.
func Start(t testing.TB, pool *pgxpool.Pool, opts ...Option) *Server {
	t.Helper()
	acfg, hcfg := actors.DefaultConfig(), httpapi.DefaultConfig()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	acfg.Registry, hcfg.Registry = reg, reg
	// Each test's schema gets its own channel, so parallel tests never
	// poke each other.
	acfg.NotifyChannel = "canvasd_" + pool.Config().ConnConfig.RuntimeParams["search_path"]
	for _, o := range opts {
		o(&acfg, &hcfg)
	}
	log := zaptest.NewLogger(t)
	st := store.New(pool)
	sys, err := actors.New(acfg, st, log)
	require.NoError(t, err)
	require.NoError(t, sys.Start(context.Background()))
	api, err := httpapi.New(hcfg, st, sys, log.Named("http"), func() (string, bool) { return "ready", true })
	require.NoError(t, err)
	hs := httptest.NewServer(api)
	s := &Server{URL: hs.URL, Store: st, Sys: sys, http: hs, api: api}
	t.Cleanup(s.Stop)
	require.Eventually(t, sys.Ready, 10*time.Second, 10*time.Millisecond, "LISTEN connection")
	return s
}

// API is the instance's HTTP API (for handlers served apart, like metrics).
func (s *Server) API() *httpapi.Server { return s.api }

// Stop shuts the instance down in canvasd's order. Safe to call twice.
func (s *Server) Stop() {
	s.Sys.Drain()
	s.http.CloseClientConnections()
	s.http.Close()
	s.Sys.Stop()
	s.api.Close()
}

// Do sends a request with a JSON body (nil for none) and returns the status
// and body.
func (s *Server) Do(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = bytes.NewReader([]byte(b))
	default:
		data, err := json.Marshal(b)
		require.NoError(t, err)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.URL+path, r)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range s.Header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, data
}

// CreateCanvas creates canvas id and fails the test otherwise.
func (s *Server) CreateCanvas(t testing.TB, id string) {
	t.Helper()
	status, body := s.Do(t, http.MethodPost, "/api/canvases", map[string]string{"id": id})
	require.Equal(t, http.StatusCreated, status, string(body))
}

// Mutation is one mutation to push.
type Mutation struct {
	ID       int64  `json:"id"`
	ClientID string `json:"clientID"`
	Name     string `json:"name"`
	Args     any    `json:"args"`
}

// Push pushes mutations for group and returns the status and body.
func (s *Server) Push(t testing.TB, canvasID, group string, muts ...Mutation) (int, string) {
	t.Helper()
	type m struct {
		Mutation
		Timestamp float64 `json:"timestamp"`
	}
	ms := make([]m, len(muts))
	for i, x := range muts {
		ms[i] = m{x, float64(time.Now().UnixMilli())}
	}
	status, body := s.Do(t, http.MethodPost, fmt.Sprintf("/api/canvases/%s/replicache/push", canvasID), map[string]any{
		"profileID": "p", "clientGroupID": group, "pushVersion": 1, "schemaVersion": "1", "mutations": ms,
	})
	return status, string(body)
}

// MustPush pushes and requires a committed answer.
func (s *Server) MustPush(t testing.TB, canvasID, group string, muts ...Mutation) {
	t.Helper()
	status, body := s.Push(t, canvasID, group, muts...)
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{}`, body)
}

// PullResponse is a decoded pull answer (or protocol error).
type PullResponse struct {
	Error                 string           `json:"error"`
	Cookie                json.RawMessage  `json:"cookie"`
	LastMutationIDChanges map[string]int64 `json:"lastMutationIDChanges"`
	Patch                 []PatchOp        `json:"patch"`
	Raw                   string           `json:"-"`
}

// PatchOp is one patch operation.
type PatchOp struct {
	Op    string          `json:"op"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// Order returns the cookie's order.
func (p *PullResponse) Order(t testing.TB) int64 {
	t.Helper()
	var c struct {
		Order int64 `json:"order"`
	}
	require.NoError(t, json.Unmarshal(p.Cookie, &c), string(p.Cookie))
	return c.Order
}

// Pull pulls for group with cookie (nil for a first pull).
func (s *Server) Pull(t testing.TB, canvasID, group string, cookie any) *PullResponse {
	t.Helper()
	status, body := s.Do(t, http.MethodPost, fmt.Sprintf("/api/canvases/%s/replicache/pull", canvasID), map[string]any{
		"profileID": "p", "clientGroupID": group, "cookie": cookie, "pullVersion": 1, "schemaVersion": "1",
	})
	require.Equal(t, http.StatusOK, status, string(body))
	var resp PullResponse
	require.NoError(t, json.Unmarshal(body, &resp), string(body))
	resp.Raw = string(body)
	return &resp
}
