// Package web serves the demo canvas app embedded in canvasd: / lists the
// canvases, /c/{canvasID} opens one. Its sources are the client package's
// demo (canvas/client/demo); the built files under static/ are committed,
// and a test fails when they are stale.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/canvasd/canvasd/canvas"
)

//go:embed static
var files embed.FS

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets are read once: a handful of small files.
var assets = func() map[string]asset {
	m := map[string]asset{}
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		m[strings.TrimPrefix(p, "static/")] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("web: embedded assets: " + err.Error())
	}
	return m
}()

// Mount adds the app's routes: the page at / and /c/:canvasID, its files
// under /assets/.
func Mount(e *echo.Echo) {
	e.GET("/", func(c echo.Context) error { return serve(c, "index.html") })
	e.GET("/c/:canvasID", func(c echo.Context) error {
		if !canvas.ValidID(c.Param("canvasID")) {
			return echo.NewHTTPError(http.StatusNotFound, "not found")
		}
		return serve(c, "index.html")
	})
	e.GET("/assets/:file", func(c echo.Context) error { return serve(c, c.Param("file")) })
}

func serve(c echo.Context, name string) error {
	a, ok := assets[name]
	if !ok || name == "index.html" && c.Path() == "/assets/:file" {
		return echo.NewHTTPError(http.StatusNotFound, "not found")
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, a.contentType)
	// Always revalidated: the files change with canvasd, not with their names.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if name == "index.html" {
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
	}
	if match := c.Request().Header.Get("If-None-Match"); match != "" && match == a.etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, a.contentType, a.body)
}
