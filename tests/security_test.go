package tests

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMetricsNeedAGrantWithAuthOn: with authentication on, /metrics on
// the API's listener answers only a token granting "metrics" (or "*");
// the handler served on a listener of its own needs no token.
func TestMetricsNeedAGrantWithAuthOn(t *testing.T) {
	t.Parallel()
	s, service := authServer(t, nil)
	for _, tc := range []struct {
		as     string
		status int
	}{
		{"", http.StatusUnauthorized},
		{hsToken(t, "reader", "read:*", "write:*", "create"), http.StatusForbidden},
		{hsToken(t, "scraper", "metrics"), http.StatusOK},
	} {
		c := s
		if tc.as != "" {
			c = s.As(tc.as)
		}
		status, body := c.Do(t, http.MethodGet, "/metrics", nil)
		require.Equal(t, tc.status, status, string(body))
	}
	status, body := service.Do(t, http.MethodGet, "/metrics", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), "canvasd_pushes_total")

	apart := httptest.NewServer(s.API().MetricsHandler())
	defer apart.Close()
	resp, err := http.Get(apart.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(data), "canvasd_pushes_total")
}

// TestCreateGrantCannotRevealOrClaimACanvas: a token with only "create"
// cannot read (or claim) an existing canvas through the create route,
// whatever the body's encoding: the body is decoded once, strictly, and
// the grant checked on that value.
func TestCreateGrantCannotRevealOrClaimACanvas(t *testing.T) {
	t.Parallel()
	s, service := authServer(t, nil)
	status, body := service.Do(t, http.MethodPost, "/api/canvases", `{"id":"secret","title":"TOP-SECRET-TITLE"}`)
	require.Equal(t, http.StatusCreated, status, string(body))
	creator := s.As(hsToken(t, "mallory", "create", "read:mine"))

	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"id":"secret"}`, http.StatusForbidden},
		{`{"id":"s\u0065cret"}`, http.StatusForbidden},
		{`{"title":"x","id":"secret"}`, http.StatusForbidden},
		{`{"id":"secret","id":null}`, http.StatusBadRequest},
		{`{"id":"secret","id":""}`, http.StatusBadRequest},
		{`{"id":"mine","id":"secret"}`, http.StatusBadRequest},
		{`{"id":"secret","id":"mine"}`, http.StatusBadRequest},
		{`{"id":"secret","ID":"mine"}`, http.StatusBadRequest},
		{`{"ID":"secret"}`, http.StatusBadRequest},
		{`{"Id":"secret"}`, http.StatusBadRequest},
		{`{"id":"secret"}]`, http.StatusBadRequest},
		{`{"id":"secret"}}`, http.StatusBadRequest},
		{`{"id":"secret"} {"id":"mine"}`, http.StatusBadRequest},
		{`{"id":"secret"}garbage`, http.StatusBadRequest},
		{`{"id":"mine","extra":{"id":"secret","id":"x"}}`, http.StatusBadRequest},
		{`{"id":["secret"]}`, http.StatusBadRequest},
	} {
		status, body := creator.Do(t, http.MethodPost, "/api/canvases", tc.body)
		require.Equal(t, tc.status, status, "%s: %s", tc.body, body)
		require.NotContains(t, string(body), "TOP-SECRET", tc.body)
	}
	// Its own canvases it may create, and the secret one is unchanged.
	status, body = creator.Do(t, http.MethodPost, "/api/canvases", `{"id":"mine"}`)
	require.Equal(t, http.StatusCreated, status, string(body))
	status, body = service.Do(t, http.MethodGet, "/api/canvases/secret", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), "TOP-SECRET-TITLE")
}
