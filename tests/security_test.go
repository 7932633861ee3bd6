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
