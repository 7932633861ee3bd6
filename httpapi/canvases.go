package httpapi

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/canvasd/canvasd/canvas"
)

type createCanvasRequest struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

func (s *Server) createCanvas(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	// Decoded once, strictly; the grant is checked on this same value.
	var req createCanvasRequest
	if len(body) > 0 {
		if err := canvas.DecodeJSON(body, &req); err != nil {
			return badRequest("canvas body: " + err.Error())
		}
	}
	// Creating an existing id answers with that canvas: a caller who may
	// not read it must not learn it exists, let alone what it holds.
	if p := principalOf(c); req.ID != "" && !p.canRead(req.ID) {
		return forbidden("token does not grant read on this canvas id")
	}
	if req.ID == "" {
		req.ID = newCanvasID()
	} else if !canvas.ValidID(req.ID) {
		return badRequest("id must match ^[A-Za-z0-9_-]{1,64}$")
	}
	if !utf8.ValidString(req.Title) || strings.IndexByte(req.Title, 0) >= 0 ||
		utf8.RuneCountInString(req.Title) > s.cfg.Limits.MaxTitle {
		return badRequest(fmt.Sprintf("title must be text of at most %d characters, without NUL", s.cfg.Limits.MaxTitle))
	}
	cv, created, err := s.store.CreateCanvas(c.Request().Context(), req.ID, req.Title)
	if err != nil {
		return err
	}
	if created {
		return c.JSON(http.StatusCreated, cv)
	}
	return c.JSON(http.StatusOK, cv)
}

func (s *Server) getCanvas(c echo.Context) error {
	id, err := canvasID(c)
	if err != nil {
		return err
	}
	cv, err := s.store.GetCanvas(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cv)
}

// canvasID returns the validated canvas id of the route.
func canvasID(c echo.Context) (string, error) {
	id := c.Param("canvasID")
	if !canvas.ValidID(id) {
		// An id that cannot exist names no canvas.
		return "", canvas.ErrNotFound
	}
	return id, nil
}

// readBody reads the request body up to the configured limit.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	r := http.MaxBytesReader(c.Response(), c.Request().Body, s.cfg.MaxBodyBytes)
	body, err := io.ReadAll(r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, badRequest("reading body: " + err.Error())
	}
	return body, nil
}

func newCanvasID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Listing bounds: limit defaults to defaultListLimit, at most maxListLimit.
const (
	defaultListLimit = 50
	maxListLimit     = 500
)

// listedCanvas is one canvas of a listing.
type listedCanvas struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
}

type canvasList struct {
	Canvases []listedCanvas `json:"canvases"`
	Next     *string        `json:"next"`
}

// listCanvases lists the canvases the caller may read, in id order, a
// page at a time: next is the cursor to pass as after for the next page,
// null on the last one.
func (s *Server) listCanvases(c echo.Context) error {
	limit := defaultListLimit
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return badRequest(fmt.Sprintf("limit must be an integer from 1 to %d", maxListLimit))
		}
		limit = n
	}
	after := c.QueryParam("after")
	if after != "" && !canvas.ValidID(after) {
		return badRequest("after must be the next cursor of a previous page")
	}
	p := principalOf(c)
	all := p.all || p.readAll
	var ids []string
	if !all {
		ids = slices.Sorted(maps.Keys(p.read))
	}
	page, err := s.store.ListCanvases(c.Request().Context(), after, limit, all, ids)
	if err != nil {
		return err
	}
	out := canvasList{Canvases: make([]listedCanvas, len(page.Canvases))}
	for i, cv := range page.Canvases {
		out.Canvases[i] = listedCanvas{ID: cv.ID, Title: cv.Title, Version: cv.Version, CreatedAt: cv.CreatedAt}
	}
	if page.Next != "" {
		out.Next = &page.Next
	}
	return c.JSON(http.StatusOK, out)
}

// deleteCanvas deletes a canvas (write grant): 204, then 404 for
// everything about it until it is created again, as a new incarnation.
func (s *Server) deleteCanvas(c echo.Context) error {
	id, err := canvasID(c)
	if err != nil {
		return err
	}
	if err := s.sys.DeleteCanvas(c.Request().Context(), id); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
