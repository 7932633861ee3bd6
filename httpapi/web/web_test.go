package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
)

func TestMountServesTheApp(t *testing.T) {
	t.Parallel()
	e := echo.New()
	Mount(e)
	get := func(path, etag string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	for _, p := range []string{"/", "/c/some-canvas_1"} {
		rec := get(p, "")
		require.Equal(t, http.StatusOK, rec.Code, p)
		require.Contains(t, rec.Header().Get(echo.HeaderContentType), "text/html")
		require.Contains(t, rec.Body.String(), `src="/assets/app.js"`)
		require.Equal(t, "no-cache", rec.Header().Get("Cache-Control"))
		require.NotEmpty(t, rec.Header().Get("Content-Security-Policy"))
	}
	js := get("/assets/app.js", "")
	require.Equal(t, http.StatusOK, js.Code)
	require.True(t, strings.HasPrefix(js.Header().Get(echo.HeaderContentType), "text/javascript"), js.Header().Get(echo.HeaderContentType))
	require.Equal(t, http.StatusNotModified, get("/assets/app.js", js.Header().Get("ETag")).Code)
	require.Contains(t, get("/assets/app.css", "").Header().Get(echo.HeaderContentType), "text/css")
	for _, p := range []string{"/assets/nope.js", "/assets/index.html", "/c/bad%20id/x", "/assets/../web.go"} {
		require.Equal(t, http.StatusNotFound, get(p, "").Code, p)
	}
}
