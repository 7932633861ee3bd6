package httpapi

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// events streams pokes for one canvas as Server-Sent Events.
func (s *Server) events(c echo.Context) error {
	id, err := canvasID(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	sub, err := s.sys.Subscribe(ctx, id)
	if err != nil {
		return err
	}
	defer sub.Close()

	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Connection", "keep-alive")
	w := c.Response()
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, ": connected\n\n"); err != nil {
		return nil
	}
	// A client that saw an older version than the current one missed pokes
	// while it was away: poke it at once.
	if last, err := strconv.ParseInt(c.Request().Header.Get("Last-Event-ID"), 10, 64); err == nil && last < sub.Version {
		if writePoke(w, id, sub.Version) != nil {
			return nil
		}
	}
	w.Flush()

	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case v := <-sub.C:
			if writePoke(w, id, v) != nil {
				return nil
			}
		case <-ping.C:
			if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
				return nil
			}
		case <-s.sys.Stopping():
			// Spread the reconnects of every client over a few seconds.
			retry := 1000 + rand.IntN(4000)
			_, _ = fmt.Fprintf(w, "retry: %d\n\n", retry)
			w.Flush()
			return nil
		case <-ctx.Done():
			return nil
		}
		w.Flush()
	}
}

func writePoke(w http.ResponseWriter, canvasID string, version int64) error {
	_, err := fmt.Fprintf(w, "event: poke\nid: %d\ndata: {\"canvas\":%q,\"version\":%d}\n\n", version, canvasID, version)
	return err
}
