package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A bug (here: a handler without a store or actor system panics) is
// answered 500 "internal error", not 503 with Retry-After, which would
// have the client retry it forever; it is logged once, with the request's
// id, and its stack never reaches the client.
func TestUnexpectedErrorIs500NotRetryLater(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	s, err := New(DefaultConfig(), nil, nil, zap.New(core), func() (string, bool) { return "ready", true })
	require.NoError(t, err)
	defer s.Close()

	push := `{"profileID":"p","clientGroupID":"g","pushVersion":1,"schemaVersion":"1","mutations":[` +
		`{"id":1,"clientID":"x","name":"createNode","args":{},"timestamp":1}]}`
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/canvases/c", ""},
		{http.MethodPost, "/api/canvases/c/replicache/push", push},
	} {
		logs.TakeAll()
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(RequestIDHeader, "req-bug")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)

		require.Equal(t, http.StatusInternalServerError, rec.Code, tc.path)
		require.Empty(t, rec.Header().Get("Retry-After"), tc.path)
		require.JSONEq(t, `{"error":"internal error"}`, rec.Body.String(), tc.path)
		errorLines := logs.FilterLevelExact(zapcore.ErrorLevel).All()
		require.Len(t, errorLines, 1, tc.path)
		require.Equal(t, "req-bug", errorLines[0].ContextMap()["request_id"], tc.path)
	}
	require.Equal(t, 1.0, testutil.ToFloat64(s.meters.pushOutcomes[outcomeError]))
	require.Equal(t, 0.0, testutil.ToFloat64(s.meters.pushOutcomes[outcomeUnavailable]))
}
