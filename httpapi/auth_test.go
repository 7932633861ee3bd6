package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const testSecret = "0123456789abcdef0123456789abcdef"

func TestTokensNeverReachTheLog(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := DefaultConfig()
	cfg.Auth.HS256Secret = []byte(testSecret)
	// The routes below answer before touching the store or the actors.
	s, err := New(cfg, nil, nil, zap.New(core), func() (string, bool) { return "ready", true })
	require.NoError(t, err)
	defer s.Close()
	good, err := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))},
		Grants:           []string{"read:other"},
	}).SignedString([]byte(testSecret))
	require.NoError(t, err)
	secrets := []string{good, "SECRETMARK"}

	for _, tc := range []struct {
		target string
		header string
		status int
	}{
		{"/api/canvases/c/events?access_token=" + good, "", http.StatusForbidden},
		{"/api/canvases/c/events?access_token=SECRETMARK", "", http.StatusUnauthorized},
		{"/api/canvases/c/events?x=1&access_token=SECRETMARK.SECRETMARK.SECRETMARK", "", http.StatusUnauthorized},
		{"/api/canvases/c/replicache/pull", "Bearer SECRETMARK", http.StatusUnauthorized},
		{"/api/canvases/c/replicache/pull", "Bearer " + good, http.StatusForbidden},
		{"/healthz?access_token=" + good, "", http.StatusOK},
	} {
		method := http.MethodGet
		if strings.Contains(tc.target, "replicache") {
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, tc.target, strings.NewReader(`{}`))
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		require.Equal(t, tc.status, rec.Code, tc.target)
		for _, sec := range secrets {
			require.NotContains(t, rec.Body.String(), sec)
		}
	}
	require.NotZero(t, logs.Len(), "requests are logged at debug level")
	for _, e := range logs.All() {
		line := e.Message + fmt.Sprint(e.ContextMap())
		for _, sec := range secrets {
			require.NotContains(t, line, sec)
		}
	}
}

func TestGrants(t *testing.T) {
	p := newPrincipal("u", []string{"read:a", "write:b", "read:bad id", "write:", "delete:a", "read", "", "READ:c"})
	require.True(t, p.canRead("a"))
	require.False(t, p.canWrite("a"))
	require.True(t, p.canWrite("b"))
	require.False(t, p.canRead("b"))
	require.False(t, p.canRead("bad id"))
	require.False(t, p.canRead("c"), "grants are case-sensitive")
	require.False(t, p.canCreate())
	require.False(t, p.canRead(""))

	p = newPrincipal("u", []string{"read:*", "create"})
	require.True(t, p.canRead("anything"))
	require.False(t, p.canWrite("anything"))
	require.True(t, p.canCreate())

	p = newPrincipal("u", []string{"*"})
	require.True(t, p.canRead("x") && p.canWrite("x") && p.canCreate())

	p = newPrincipal("u", nil)
	require.False(t, p.canRead("x") || p.canWrite("x") || p.canCreate())
}

func TestBearerTokenSources(t *testing.T) {
	cfg := DefaultAuthConfig()
	r := httptest.NewRequest(http.MethodGet, "/x?access_token=q", nil)
	r.AddCookie(&http.Cookie{Name: "canvasd_token", Value: "k"})
	require.Equal(t, "", bearerToken(r, cfg, false), "cookie and query only for streams")
	require.Equal(t, "k", bearerToken(r, cfg, true), "cookie before query")
	r.Header.Set("Authorization", "Bearer  h ")
	require.Equal(t, "h", bearerToken(r, cfg, true), "the header first")
	r.Header.Set("Authorization", "h2")
	require.Equal(t, "h2", bearerToken(r, cfg, false), "Replicache sends its auth verbatim")
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:80": true, "localhost:1": true, "[::1]:2": true, "127.1.2.3:4": true,
		":8080": false, "0.0.0.0:1": false, "[::]:1": false, "example.com:80": false, "10.0.0.1:1": false,
	} {
		require.Equal(t, want, IsLoopback(host), host)
	}
}
