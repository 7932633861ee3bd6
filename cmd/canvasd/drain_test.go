package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/pgtest"
)

// On SIGTERM (the context ending) /readyz answers 503 for the drain
// period while requests are still served, event streams are told to
// reconnect (elsewhere) during its second half; then the listener closes.
func TestDrainPeriodBeforeListenerCloses(t *testing.T) {
	t.Parallel()
	schema := pgtest.Schema(t).ConnConfig.RuntimeParams["search_path"]
	u, err := url.Parse(pgtest.URL())
	require.NoError(t, err)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	const drain = 1500 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", addr, "--database-url", u.String(), "--drain-period", drain.String(),
			"--notify-channel", pgtest.Name("drain"), "--log-level", "warn"})
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) int {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Eventually(t, func() bool { return get("/readyz") == http.StatusOK }, 20*time.Second, 20*time.Millisecond)
	resp, err := client.Post("http://"+addr+"/api/canvases", "application/json", strings.NewReader(`{"id":"c"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	// An event stream, to see it move on during the drain.
	stream, err := client.Get("http://" + addr + "/api/canvases/c/events")
	require.NoError(t, err)
	defer stream.Body.Close()
	require.Equal(t, http.StatusOK, stream.StatusCode)
	type streamEnd struct {
		retry string
		at    time.Time
	}
	ended := make(chan streamEnd, 1)
	go func() {
		var e streamEnd
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "retry: "); ok {
				e.retry = v
			}
		}
		e.at = time.Now()
		ended <- e
	}()

	cancel() // what SIGTERM does
	stopped := time.Now()
	require.Eventually(t, func() bool { return get("/readyz") == http.StatusServiceUnavailable }, time.Second, 10*time.Millisecond)
	// Still serving: health, and a write.
	require.Equal(t, http.StatusOK, get("/healthz"))
	resp, err = client.Post("http://"+addr+"/api/canvases", "application/json", strings.NewReader(`{"id":"during-drain"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Less(t, time.Since(stopped), drain, "the checks ran inside the drain period")

	// The stream was told to reconnect soon, in the second half of the
	// drain period, while the server still served.
	select {
	case e := <-ended:
		require.NotEmpty(t, e.retry, "a retry hint")
		ms, err := strconv.Atoi(e.retry)
		require.NoError(t, err)
		require.Less(t, ms, 1000)
		require.GreaterOrEqual(t, e.at.Sub(stopped), drain/2-100*time.Millisecond)
		require.Less(t, e.at.Sub(stopped), drain)
	case <-time.After(drain + 10*time.Second):
		t.Fatal("the event stream did not end")
	}

	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(drain + 20*time.Second):
		t.Fatal("canvasd did not stop")
	}
	require.GreaterOrEqual(t, time.Since(stopped), drain, "the listener stayed open for the drain period")
	_, err = net.DialTimeout("tcp", addr, time.Second)
	require.Error(t, err, "the listener is closed")
}

func TestDrainPeriodConfig(t *testing.T) {
	cfg, err := parseConfig(nil)
	require.NoError(t, err)
	require.Equal(t, 5*time.Second, cfg.DrainPeriod)
	cfg, err = parseConfig([]string{"--drain-period", "0s"})
	require.NoError(t, err)
	require.Zero(t, cfg.DrainPeriod)
	t.Setenv("CANVASD_DRAIN_PERIOD", "250ms")
	cfg, err = parseConfig(nil)
	require.NoError(t, err)
	require.Equal(t, 250*time.Millisecond, cfg.DrainPeriod)
	_, err = parseConfig([]string{"--drain-period", "-1s"})
	require.Error(t, err)
}
