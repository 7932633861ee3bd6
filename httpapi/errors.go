package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
)

// errorBody is every error outside the Replicache protocol.
type errorBody struct {
	Error string `json:"error"`
}

// apiError is an error with the status it maps to.
type apiError struct {
	status  int
	message string
}

func (e *apiError) Error() string { return e.message }

// loggedError is an unexpected error already logged where it happened (a
// recovered panic, with its stack): it is answered without a second line.
type loggedError struct{ err error }

func (e *loggedError) Error() string { return e.err.Error() }
func (e *loggedError) Unwrap() error { return e.err }

func badRequest(msg string) error { return &apiError{status: http.StatusBadRequest, message: msg} }

// handleError maps every error a handler returns to one response.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, "internal error"
	var (
		ae  *apiError
		he  *echo.HTTPError
		bre *canvas.BadRequestError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &ae):
		status, msg = ae.status, ae.message
	case errors.As(err, &bre):
		status, msg = http.StatusBadRequest, bre.Reason
	case errors.As(err, &mbe):
		status, msg = http.StatusRequestEntityTooLarge, "request body larger than "+strconv.FormatInt(mbe.Limit, 10)+" bytes"
	case errors.Is(err, canvas.ErrNotFound):
		status, msg = http.StatusNotFound, "canvas not found"
	case errors.Is(err, actors.ErrOverloaded):
		status, msg = http.StatusServiceUnavailable, "canvas overloaded, retry later"
	case errors.Is(err, store.ErrBusy):
		status, msg = http.StatusServiceUnavailable, "canvas busy, retry later"
	case errors.Is(err, actors.ErrStopped):
		status, msg = http.StatusServiceUnavailable, "server shutting down, retry later"
	case errors.As(err, &he):
		status = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(he.Code)
		}
	case errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil:
		return // the client went away: nobody to answer
	case errors.As(err, new(*loggedError)):
		// A bug, logged already: 500, never "retry later".
	case store.IsTemporary(err):
		status, msg = http.StatusServiceUnavailable, "temporarily unavailable, retry later"
		s.reqLog(c).Warn("temporary error", zap.String("path", c.Request().URL.Path), zap.Error(err))
	default:
		// Unknown means permanent: a bug, answered 500 without details
		// (the client backs off; operators see it in logs and metrics).
		s.reqLog(c).Error("request failed", zap.String("path", c.Request().URL.Path), zap.Error(err))
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter.Seconds())))
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	_ = c.JSON(status, errorBody{Error: msg})
}
