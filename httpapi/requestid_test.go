package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Every request gets an id, the caller's when it is sane, echoed in the
// response and carried by every log line about the request.
func TestRequestIDOnResponseAndLogLines(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	// Without a store: the canvas route panics, which is logged like any
	// failure of a request.
	s, err := New(DefaultConfig(), nil, nil, zap.New(core), func() (string, bool) { return "ready", true })
	require.NoError(t, err)
	defer s.Close()

	do := func(path, id string) (*httptest.ResponseRecorder, []observer.LoggedEntry) {
		logs.TakeAll()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if id != "" {
			req.Header.Set(RequestIDHeader, id)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec, logs.TakeAll()
	}
	idOf := func(e observer.LoggedEntry) string {
		v, _ := e.ContextMap()["request_id"].(string)
		return v
	}

	rec, entries := do("/healthz", "lb-7f3a.42")
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "lb-7f3a.42", rec.Header().Get(RequestIDHeader))
	require.Len(t, entries, 1)
	require.Equal(t, "request", entries[0].Message)
	require.Equal(t, "lb-7f3a.42", idOf(entries[0]))

	generated := map[string]bool{}
	for _, bad := range []string{"", "two words", "line\nbreak", strings.Repeat("x", 129), "quote\"", "<script>"} {
		rec, entries := do("/healthz", bad)
		id := rec.Header().Get(RequestIDHeader)
		require.Regexp(t, `^[0-9a-f]{32}$`, id, "generated for %q", bad)
		require.False(t, generated[id], "ids are unique")
		generated[id] = true
		require.Equal(t, id, idOf(entries[0]))
	}

	rec, entries = do("/api/canvases/c", "req-panic")
	require.GreaterOrEqual(t, rec.Code, 500)
	require.Equal(t, "req-panic", rec.Header().Get(RequestIDHeader))
	require.GreaterOrEqual(t, len(entries), 2)
	for _, e := range entries {
		require.Equal(t, "req-panic", idOf(e), "line %q", e.Message)
	}
	require.Equal(t, "panic serving request", entries[0].Message)
	require.Equal(t, "request", entries[len(entries)-1].Message)
}
