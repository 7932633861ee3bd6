package httpapi

import (
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// guardRequest runs first on every request, on every route (unknown ones
// too), before authentication:
//
//   - the client has BodyReadTimeout from now to send its body (the
//     headers are bounded by the server's ReadHeaderTimeout); once the
//     body has been read to its end the bound is lifted, so a handler that
//     waits (a push waiting for its commit) is not cut off by it;
//   - a request whose declared body was not read to its end by the time
//     it is answered (a GET with a Content-Length, a refused request) has
//     its connection closed after the answer, instead of net/http waiting
//     to drain the rest of a body that may never come;
//   - a request with a Transfer-Encoding has its connection closed after
//     the answer: net/http lets it override a Content-Length sent with it
//     and hides that header, and such a pair is how requests are smuggled
//     past proxies (RFC 9112 §6.3 asks the server to close).
func (s *Server) guardRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		chunked := len(r.TransferEncoding) > 0
		if r.ContentLength == 0 && !chunked {
			return next(c) // nothing for the client to send
		}
		rc := http.NewResponseController(c.Response().Writer)
		if s.cfg.BodyReadTimeout > 0 {
			_ = rc.SetReadDeadline(time.Now().Add(s.cfg.BodyReadTimeout))
		}
		body := &watchedBody{ReadCloser: r.Body, onEOF: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		r.Body = body
		c.Response().Before(func() {
			if chunked || !body.eof {
				c.Response().Header().Set(echo.HeaderConnection, "close")
			}
		})
		err := next(c)
		if !body.eof {
			// net/http would still read up to 256 KiB of the rest, until the
			// deadline: end that read at once, the connection closes anyway.
			_ = rc.SetReadDeadline(time.Now())
		}
		return err
	}
}

// watchedBody notes when a request body has been read to its end.
type watchedBody struct {
	io.ReadCloser
	eof   bool
	onEOF func()
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.eof {
		b.eof = true
		b.onEOF()
	}
	return n, err
}
