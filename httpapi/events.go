package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/canvas"
)

// streamWriteTimeout bounds one write to an event stream: a client that
// stops reading is dropped instead of holding a goroutine forever.
const streamWriteTimeout = 10 * time.Second

// events streams pokes for one canvas as Server-Sent Events.
//
// The connection is taken over from net/http once the stream is accepted:
// the stream then costs two shallow goroutines (writer and hang-up reader)
// and a 512-byte buffer, instead of the request's goroutine with the deep
// stack of the middleware chain, net/http's background reader and its
// 4 KiB buffers — it matters when a server holds thousands of idle streams. Without the takeover (a writer
// that cannot be hijacked) it streams in place.
func (s *Server) events(c echo.Context) error {
	id, err := canvasID(c)
	if err != nil {
		return err
	}
	// A stream may name the Replicache client it belongs to: when its last
	// stream closes, the client's presence goes.
	clientID := c.QueryParam("clientID")
	if clientID != "" && !canvas.ValidID(clientID) {
		return badRequest("clientID must match ^[A-Za-z0-9_-]{1,64}$")
	}
	sub, err := s.sys.SubscribeClient(c.Request().Context(), id, clientID, userID(c))
	if err != nil {
		return err
	}
	// A client that saw an older version than the current one missed pokes
	// while it was away: it is poked at once.
	var catchUp int64
	if last, err := strconv.ParseInt(c.Request().Header.Get("Last-Event-ID"), 10, 64); err == nil && last < sub.Version {
		catchUp = sub.Version
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")

	end := detachStreamSlot(c)
	if conn, buffered, ok := s.hijack(c); ok {
		// A client that hangs up is noticed by a read, at once, rather than
		// at the next write. A client has nothing to send on an event
		// stream: any input at all ends the stream too, so junk written
		// into it costs one read, not a read per byte for ever.
		gone := make(chan struct{})
		go func() {
			defer close(gone)
			if buffered > 0 {
				return // sent after its request: already input
			}
			var b [512]byte
			_, _ = conn.Read(b[:])
		}()
		go func() {
			defer end()
			defer sub.Close()
			defer conn.Close() // also ends the reader
			w := &deadlineWriter{conn: conn, w: bufio.NewWriterSize(conn, 512)}
			s.pump(w, sub, id, catchUp, gone)
		}()
		return nil
	}
	defer end()
	defer sub.Close()
	h.Set("Connection", "keep-alive")
	c.Response().WriteHeader(http.StatusOK)
	s.pump(responseFlusher{c.Response()}, sub, id, catchUp, c.Request().Context().Done())
	return nil
}

// hijack takes the connection over and writes the response head; the
// body then runs until the connection closes. buffered is how many bytes
// the client sent after its request that net/http had already read.
func (s *Server) hijack(c echo.Context) (conn net.Conn, buffered int, ok bool) {
	hj, ok := c.Response().Writer.(http.Hijacker)
	if !ok {
		return nil, 0, false
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, 0, false
	}
	buffered = rw.Reader.Buffered()
	h := c.Response().Header()
	h.Set("Connection", "close") // no length, no chunks: the body ends with the connection
	c.Response().Status = http.StatusOK
	_ = conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	_, err = io.WriteString(conn, "HTTP/1.1 200 OK\r\n")
	if err == nil {
		err = h.Write(conn)
	}
	if err == nil {
		_, err = io.WriteString(conn, "\r\n")
	}
	if err != nil {
		_ = conn.Close()
		return nil, 0, false
	}
	return conn, buffered, true
}

// streamWriter is an event stream's body.
type streamWriter interface {
	io.Writer
	Flush() error
}

// pump writes the stream: pokes, a ping every PingInterval, and at shutdown
// a jittered retry hint. It returns when the client goes (a write fails,
// or gone closes) or the server stops.
func (s *Server) pump(w streamWriter, sub *actors.Subscription, canvasID string, catchUp int64, gone <-chan struct{}) {
	if _, err := io.WriteString(w, ": connected\n\n"); err != nil {
		return
	}
	if catchUp > 0 && writePoke(w, canvasID, catchUp) != nil {
		return
	}
	// The canvas's current presence comes first.
	if writePresence(w, sub) != nil {
		return
	}
	if w.Flush() != nil {
		return
	}
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	// Presence is written at most every presenceBatch: many moving cursors
	// then cost a stream one write per batch, not one per event.
	var (
		presenceTimer *time.Timer
		presenceDue   <-chan time.Time
		lastPresence  time.Time
	)
	var (
		drained    = s.drained
		leave      <-chan time.Time
		leaveTimer *time.Timer
	)
	defer func() {
		if presenceTimer != nil {
			presenceTimer.Stop()
		}
		if leaveTimer != nil {
			leaveTimer.Stop()
		}
	}()
	for {
		var err error
		select {
		case v := <-sub.C:
			if err = writePoke(w, canvasID, v); err == nil {
				if err = w.Flush(); err == nil {
					sub.Written()
				}
			}
			if err != nil {
				return
			}
			continue
		case <-sub.Presence:
			if presenceDue != nil {
				continue // written when the batch is due
			}
			if wait := presenceBatch - time.Since(lastPresence); wait > 0 {
				if presenceTimer == nil {
					presenceTimer = time.NewTimer(wait)
				} else {
					presenceTimer.Reset(wait)
				}
				presenceDue = presenceTimer.C
				continue
			}
			err = writePresence(w, sub)
			lastPresence = time.Now()
		case <-presenceDue:
			presenceDue = nil
			err = writePresence(w, sub)
			lastPresence = time.Now()
		case <-sub.Ended:
			// The canvas was deleted: reconnecting gets 404.
			_ = w.Flush()
			return
		case <-ping.C:
			_, err = io.WriteString(w, ": ping\n\n")
		case <-drained:
			drained = nil
			leave, leaveTimer = s.drainLeave()
			continue
		case <-leave:
			// Draining: reconnect soon, through the load balancer, to an
			// instance that stays.
			_, _ = fmt.Fprintf(w, "retry: %d\n\n", 250+rand.IntN(750))
			_ = w.Flush()
			return
		case <-s.sys.Stopping():
			// Spread the reconnects of every client over a few seconds.
			_, _ = fmt.Fprintf(w, "retry: %d\n\n", 1000+rand.IntN(4000))
			_ = w.Flush()
			return
		case <-gone:
			return
		}
		if err != nil || w.Flush() != nil {
			return
		}
	}
}

func writePoke(w io.Writer, canvasID string, version int64) error {
	_, err := fmt.Fprintf(w, "event: poke\nid: %d\ndata: {\"canvas\":%q,\"version\":%d}\n\n", version, canvasID, version)
	return err
}

// presenceBatch is the shortest time between two presence writes of a
// stream; the first presence after a quiet spell is written at once.
const presenceBatch = 10 * time.Millisecond

// writePresence writes the presence events waiting for the stream, in one
// write.
func writePresence(w io.Writer, sub *actors.Subscription) error {
	events := sub.TakePresence()
	if len(events) == 0 {
		return nil
	}
	const head, tail = "event: presence\ndata: ", "\n\n"
	n := 0
	for _, data := range events {
		n += len(head) + len(data) + len(tail)
	}
	buf := make([]byte, 0, n)
	for _, data := range events {
		buf = append(append(append(buf, head...), data...), tail...)
	}
	_, err := w.Write(buf)
	return err
}

// deadlineWriter flushes a hijacked connection with a write deadline.
type deadlineWriter struct {
	conn net.Conn
	w    *bufio.Writer
}

func (d *deadlineWriter) Write(p []byte) (int, error) { return d.w.Write(p) }

func (d *deadlineWriter) Flush() error {
	_ = d.conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	return d.w.Flush()
}

// responseFlusher streams in place through echo's response.
type responseFlusher struct{ r *echo.Response }

func (f responseFlusher) Write(p []byte) (int, error) { return f.r.Write(p) }

func (f responseFlusher) Flush() error {
	f.r.Flush()
	return nil
}
