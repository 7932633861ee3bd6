package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

// RequestIDHeader carries a request's id, taken from the caller (a proxy or
// load balancer that already named the request) or generated, and echoed in
// every response.
const RequestIDHeader = "X-Request-ID"

const requestIDKey = "canvasd.request_id"

// saneRequestID is what canvasd accepts from callers: short, and safe to
// write in a log line or a header.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:+/=-]{1,128}$`)

// requestID names every request and echoes the name in the response.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(RequestIDHeader)
		if !saneRequestID.MatchString(id) {
			id = newRequestID()
		}
		c.Set(requestIDKey, id)
		c.Response().Header().Set(RequestIDHeader, id)
		return next(c)
	}
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// reqLog is the logger for lines about the request c: they carry its id.
func (s *Server) reqLog(c echo.Context) *zap.Logger {
	id, _ := c.Get(requestIDKey).(string)
	return s.log.With(zap.String("request_id", id))
}
