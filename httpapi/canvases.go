package httpapi

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
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
	var req createCanvasRequest
	if len(body) > 0 {
		if err := canvas.DecodeJSON(body, &req); err != nil {
			return badRequest("canvas body: " + err.Error())
		}
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
