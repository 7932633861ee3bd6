package tests

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/httpapi"
)

// cpuTime is the CPU time (user + system) this process used so far.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// openRawStream opens canvas c's event stream on a raw connection and
// reads up to the first comment, so the stream is running.
func openRawStream(t *testing.T, url string) (net.Conn, *bufio.Reader) {
	t.Helper()
	return openRawStreamAs(t, url, "")
}

func openRawStreamAs(t *testing.T, url, token string) (net.Conn, *bufio.Reader) {
	t.Helper()
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = io.WriteString(conn, "GET /api/canvases/c/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"+auth+"\r\n")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if strings.HasPrefix(line, ": connected") {
			return conn, r
		}
	}
}

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

// TestCreateGrantCannotRevealOrClaimACanvas: a token with only "create"
// cannot read (or claim) an existing canvas through the create route,
// whatever the body's encoding: the body is decoded once, strictly, and
// the grant checked on that value.
func TestCreateGrantCannotRevealOrClaimACanvas(t *testing.T) {
	t.Parallel()
	s, service := authServer(t, nil)
	status, body := service.Do(t, http.MethodPost, "/api/canvases", `{"id":"secret","title":"TOP-SECRET-TITLE"}`)
	require.Equal(t, http.StatusCreated, status, string(body))
	creator := s.As(hsToken(t, "mallory", "create", "read:mine"))

	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"id":"secret"}`, http.StatusForbidden},
		{`{"id":"s\u0065cret"}`, http.StatusForbidden},
		{`{"title":"x","id":"secret"}`, http.StatusForbidden},
		{`{"id":"secret","id":null}`, http.StatusBadRequest},
		{`{"id":"secret","id":""}`, http.StatusBadRequest},
		{`{"id":"mine","id":"secret"}`, http.StatusBadRequest},
		{`{"id":"secret","id":"mine"}`, http.StatusBadRequest},
		{`{"id":"secret","ID":"mine"}`, http.StatusBadRequest},
		{`{"ID":"secret"}`, http.StatusBadRequest},
		{`{"Id":"secret"}`, http.StatusBadRequest},
		{`{"id":"secret"}]`, http.StatusBadRequest},
		{`{"id":"secret"}}`, http.StatusBadRequest},
		{`{"id":"secret"} {"id":"mine"}`, http.StatusBadRequest},
		{`{"id":"secret"}garbage`, http.StatusBadRequest},
		{`{"id":"mine","extra":{"id":"secret","id":"x"}}`, http.StatusBadRequest},
		{`{"id":["secret"]}`, http.StatusBadRequest},
	} {
		status, body := creator.Do(t, http.MethodPost, "/api/canvases", tc.body)
		require.Equal(t, tc.status, status, "%s: %s", tc.body, body)
		require.NotContains(t, string(body), "TOP-SECRET", tc.body)
	}
	// Its own canvases it may create, and the secret one is unchanged.
	status, body = creator.Do(t, http.MethodPost, "/api/canvases", `{"id":"mine"}`)
	require.Equal(t, http.StatusCreated, status, string(body))
	status, body = service.Do(t, http.MethodGet, "/api/canvases/secret", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(body), "TOP-SECRET-TITLE")
}

// TestJunkFedStreamIsClosed: a client has nothing to send on an event
// stream; junk written into one used to be read a byte per system call
// for as long as it came (a core per stream). Now any input ends the
// stream: the server closes the connection at once. The test logs the
// process CPU used while junk is written for at most 3 s.
func TestJunkFedStreamIsClosed(t *testing.T) {
	s := newServer(t)
	s.CreateCanvas(t, "c")

	conn, r := openRawStream(t, s.URL)
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = 'x'
	}
	cpu0, start := cpuTime(t), time.Now()
	written := 0
	for time.Since(start) < 3*time.Second {
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := conn.Write(junk)
		written += n
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			break // the server closed the stream
		}
	}
	took, cpu := time.Since(start), cpuTime(t)-cpu0
	t.Logf("junk written: %d bytes in %v; process CPU meanwhile: %v", written, took.Round(time.Millisecond), cpu.Round(time.Millisecond))
	// The server closed the stream: reading ends (EOF or reset), well
	// before the read deadline.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(3*time.Second)))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the stream stayed open under junk input")
	require.Less(t, took, 3*time.Second, "junk was accepted for the whole window")

	// Input sent together with the request (already buffered by net/http
	// when the stream starts) ends the stream too.
	conn2, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	require.NoError(t, err)
	defer conn2.Close()
	_, err = io.WriteString(conn2, "GET /api/canvases/c/events HTTP/1.1\r\nHost: x\r\n\r\njunk")
	require.NoError(t, err)
	require.NoError(t, conn2.SetReadDeadline(time.Now().Add(3*time.Second)))
	_, err = io.Copy(io.Discard, conn2)
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the stream stayed open after pipelined input")
}

// connLifetime sends raw on a new connection, reads the answer and waits
// for the server to close the connection; it returns the status line and
// how long the connection lived, or a lifetime past limit if still open.
func connLifetime(t *testing.T, url, raw string, limit time.Duration) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = io.WriteString(conn, raw)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(start.Add(limit)))
	r := bufio.NewReader(conn)
	status, _ := r.ReadString('\n')
	_, err = io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return strings.TrimSpace(status), limit + time.Millisecond
	}
	return strings.TrimSpace(status), time.Since(start)
}

// TestSlowBodiesAreCutOnEveryRoute: every request's body time is bounded
// on every route, before authentication. A request declaring a body it
// never sends is answered and its connection closed, whether or not its
// route reads bodies; a body trickled too slowly is cut at the body read
// timeout; a request with a Transfer-Encoding (which may hide a
// Content-Length) has its connection closed after the answer. Event
// streams, which have no body, are not cut by the body timeout.
func TestSlowBodiesAreCutOnEveryRoute(t *testing.T) {
	t.Parallel()
	const bodyTimeout = 500 * time.Millisecond
	s, service := authServer(t, func(h *httpapi.Config) {
		h.BodyReadTimeout = bodyTimeout
		h.PingInterval = 100 * time.Millisecond
	})
	const limit = 5 * time.Second
	for _, tc := range []struct {
		name, raw string
		within    time.Duration
	}{
		{"GET with a Content-Length and no body", "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 2 * bodyTimeout},
		{"GET of a canvas, no token", "GET /api/canvases/c HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 2 * bodyTimeout},
		{"unknown route", "POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 2 * bodyTimeout},
		{"events with a Content-Length", "GET /api/canvases/c/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 2 * bodyTimeout},
		{"metrics, no token", "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", 2 * bodyTimeout},
		{"create, no token, trickled body", "POST /api/canvases HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"id\"", 2 * bodyTimeout},
		{"Content-Length and Transfer-Encoding", "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 2 * bodyTimeout},
		{"chunked body never ended", "POST /api/canvases HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"id\"\r\n", 2 * bodyTimeout},
	} {
		status, lived := connLifetime(t, s.URL, tc.raw, limit)
		t.Logf("%s: %q, connection lived %v", tc.name, status, lived.Round(time.Millisecond))
		require.NotEmpty(t, status, tc.name)
		require.Less(t, lived, tc.within, "%s: connection held open", tc.name)
	}

	// A body trickled by a token holder is cut at the body timeout too.
	tok := hsToken(t, "alice", "create", "read:*")
	status, lived := connLifetime(t, s.URL, "POST /api/canvases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+tok+
		"\r\nContent-Length: 100\r\n\r\n{\"id\":", limit)
	t.Logf("trickled body with a token: %q, connection lived %v", status, lived.Round(time.Millisecond))
	require.Less(t, lived, 4*bodyTimeout)

	// An honest keep-alive client is not closed on: two requests on one
	// connection.
	for range 2 {
		status, body := service.Do(t, http.MethodPost, "/api/canvases", `{"title":"t"}`)
		require.Equal(t, http.StatusCreated, status, string(body))
	}
	// A stream outlives the body timeout.
	conn, r := openRawStreamAs(t, s.URL, hsToken(t, "reader", "read:c"))
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(4*bodyTimeout)))
	start := time.Now()
	for time.Since(start) < 3*bodyTimeout {
		_, err := r.ReadString('\n')
		require.NoError(t, err, "the stream was cut after %v", time.Since(start))
	}
}

// TestCreateIsRateLimitedBeforeItsBodyIsRead: a caller over its rate gets
// 429 at once, without the server reading (or waiting for) the body.
func TestCreateIsRateLimitedBeforeItsBodyIsRead(t *testing.T) {
	t.Parallel()
	s, _ := authServer(t, func(h *httpapi.Config) {
		h.PushRate = httpapi.RateLimit{PerSecond: 0.001, Burst: 1}
		h.BodyReadTimeout = 10 * time.Second
	})
	tok := hsToken(t, "carol", "create")
	status, body := s.As(tok).Do(t, http.MethodPost, "/api/canvases", `{"title":"first"}`)
	require.Equal(t, http.StatusCreated, status, string(body))

	status2, lived := connLifetime(t, s.URL, "POST /api/canvases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+tok+
		"\r\nContent-Length: 1000\r\n\r\n{\"title\":", 8*time.Second)
	require.Contains(t, status2, "429")
	require.Less(t, lived, 2*time.Second, "the body was waited for before the rate limit")
}
