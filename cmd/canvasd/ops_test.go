package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/pgtest"
)

func TestHelpListsTheSubcommandsAndExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"--addr", "127.0.0.1:0", "--help"}} {
		var out, errOut bytes.Buffer
		code := -1
		usage := captureStderr(t, func() { code = dispatch(context.Background(), args, &out, &errOut) })
		require.Equal(t, 0, code, args)
		require.Empty(t, errOut.String(), args)
		for _, want := range []string{"canvasd migrate up|status", "canvasd token", "canvasd version", "-addr", "-migrate", "CANVASD_MIGRATE", "-database-url"} {
			require.Contains(t, usage, want, args)
		}
	}
	var out, errOut bytes.Buffer
	code := -1
	captureStderr(t, func() { code = dispatch(context.Background(), []string{"token", "--help"}, &out, &errOut) })
	require.Equal(t, 0, code)
	require.Equal(t, 0, dispatch(context.Background(), []string{"migrate", "--help"}, &out, &errOut))
	require.Contains(t, out.String(), "canvasd migrate status")

	errOut.Reset()
	captureStderr(t, func() { code = dispatch(context.Background(), []string{"--no-such-flag"}, &out, &errOut) })
	require.Equal(t, 1, code)
	require.Contains(t, errOut.String(), "no-such-flag")
	require.Equal(t, 1, dispatch(context.Background(), []string{"migrate"}, &out, &errOut))
	require.Equal(t, 1, dispatch(context.Background(), []string{"migrate", "sideways"}, &out, &errOut))
	require.Contains(t, errOut.String(), "want up or status")
}

// migrationFiles lists this build's migrations, in order.
func migrationFiles(t *testing.T) []string {
	names, err := filepath.Glob(filepath.Join("..", "..", "sql", "*.up.sql"))
	require.NoError(t, err)
	require.NotEmpty(t, names)
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	sort.Strings(names)
	return names
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var out, errOut bytes.Buffer
		require.Equal(t, 0, dispatch(context.Background(), args, &out, &errOut), args)
		require.Regexp(t, `^canvasd \S+ .*`+regexpQuote(runtime.Version())+` `+runtime.GOOS+`/`+runtime.GOARCH+"\n$", out.String())
	}
}

func regexpQuote(s string) string { return strings.ReplaceAll(s, ".", `\.`) }

func TestMigrateEnvTwin(t *testing.T) {
	cfg, err := parseConfig(nil)
	require.NoError(t, err)
	require.True(t, cfg.Migrate, "migrating at start-up is the default")
	t.Setenv("CANVASD_MIGRATE", "false")
	cfg, err = parseConfig(nil)
	require.NoError(t, err)
	require.False(t, cfg.Migrate)
	cfg, err = parseConfig([]string{"--migrate=true"})
	require.NoError(t, err)
	require.True(t, cfg.Migrate, "the flag wins")
	t.Setenv("CANVASD_MIGRATE", "maybe")
	_, err = parseConfig(nil)
	require.ErrorContains(t, err, "CANVASD_MIGRATE")
}

// A deployment that migrates separately: the server started with
// --migrate=false on an unmigrated schema stays unready and says why, and
// turns ready once canvasd migrate up has run.
func TestMigrateFalseWaitsForMigrateUp(t *testing.T) {
	dbURL := pgtest.SchemaURL(t)
	var out, errOut bytes.Buffer
	require.Equal(t, 0, dispatch(context.Background(), []string{"migrate", "status", "--database-url", dbURL}, &out, &errOut), errOut.String())
	files := migrationFiles(t)
	n := len(files)
	require.Equal(t, fmt.Sprintf("schema version 0, this build needs %d (%d pending: %s)\n", n, n, strings.Join(files, ", ")), out.String())

	srv := startServer(t, "--database-url", dbURL, "--migrate=false")
	require.Eventually(t, func() bool {
		code, status := srv.readyz(t)
		return code == http.StatusServiceUnavailable && strings.Contains(status, "schema not migrated") &&
			strings.Contains(status, "run canvasd migrate up")
	}, 20*time.Second, 50*time.Millisecond)

	out.Reset()
	require.Equal(t, 0, dispatch(context.Background(), []string{"migrate", "up", "--database-url", dbURL}, &out, &errOut), errOut.String())
	require.Equal(t, fmt.Sprintf("schema version %d, up to date (applied %d)\n", n, n), out.String())
	srv.awaitReady(t)

	out.Reset()
	require.Equal(t, 0, dispatch(context.Background(), []string{"migrate", "up", "--database-url", dbURL}, &out, &errOut), errOut.String())
	require.Equal(t, fmt.Sprintf("schema version %d, up to date (applied 0)\n", n), out.String())
	out.Reset()
	require.Equal(t, 0, dispatch(context.Background(), []string{"migrate", "status", "--database-url", dbURL}, &out, &errOut), errOut.String())
	require.Equal(t, fmt.Sprintf("schema version %d, up to date\n", n), out.String())
}

// During a database outage /readyz says the database is unreachable, and
// it answers from memory: a database that hangs does not hang /readyz.
func TestReadyzDuringDatabaseOutage(t *testing.T) {
	dbURL := pgtest.SchemaURL(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	p := newProxy(t, u.Host)
	u.Host = p.addr()
	srv := startServer(t, "--database-url", u.String())
	srv.awaitReady(t)

	unreachable := func() bool {
		code, status := srv.readyz(t)
		return code == http.StatusServiceUnavailable && status == "database unreachable"
	}

	// The database goes away: connections reset, new ones refused.
	p.set(proxyRefuse)
	require.Eventually(t, unreachable, 15*time.Second, 50*time.Millisecond)
	p.set(proxyUp)
	srv.awaitReady(t)

	// The database hangs: nothing it is sent is answered.
	p.set(proxyHang)
	require.Eventually(t, unreachable, 15*time.Second, 50*time.Millisecond)
	for range 20 {
		start := time.Now()
		require.True(t, unreachable())
		require.Less(t, time.Since(start), time.Second, "/readyz waited on the database")
	}
	p.set(proxyUp)
	srv.awaitReady(t)
}

type testServer struct {
	base   string
	cancel context.CancelFunc
	done   chan int
}

// startServer runs canvasd in this process on a free loopback port and
// stops it when the test ends, requiring a clean exit.
func startServer(t *testing.T, args ...string) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{base: "http://" + addr, cancel: cancel, done: make(chan int, 1)}
	args = append([]string{"--addr", addr, "--log-level", "error", "--shutdown-timeout", "5s"}, args...)
	var errOut bytes.Buffer
	go func() { s.done <- dispatch(ctx, args, io.Discard, &errOut) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-s.done:
			require.Equal(t, 0, code, errOut.String())
		case <-time.After(30 * time.Second):
			t.Error("canvasd did not stop within 30s")
		}
	})
	return s
}

func (s *testServer) readyz(t *testing.T) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(s.base + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var body struct{ Status string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, err.Error()
	}
	return resp.StatusCode, body.Status
}

func (s *testServer) awaitReady(t *testing.T) {
	t.Helper()
	var last string
	require.Eventually(t, func() bool {
		code, status := s.readyz(t)
		last = fmt.Sprint(code, " ", status)
		return code == http.StatusOK && status == "ready"
	}, 30*time.Second, 50*time.Millisecond, "not ready; last /readyz: %s", func() string { return last })
}

type proxyMode int

const (
	proxyUp     proxyMode = iota
	proxyRefuse           // connections reset, new ones closed at once
	proxyHang             // connections held, nothing forwarded
)

// proxy stands between canvasd and PostgreSQL so a test can take the
// database away without touching the server every test shares.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	cond   *sync.Cond
	mode   proxyMode
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	closed bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) set(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	if m == proxyRefuse {
		for c := range p.conns {
			_ = c.Close()
		}
	}
	p.cond.Broadcast()
}

func (p *proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.mode == proxyRefuse {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			// A connection opened while the database hangs waits for it.
			if !p.await() {
				_ = c.Close()
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil || !p.track(up) {
				_ = c.Close()
				return
			}
			p.wg.Add(2)
			go p.pipe(up, c)
			go p.pipe(c, up)
		}()
	}
}

// await blocks while the proxy hangs; false once it refuses or closes.
func (p *proxy) await() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.mode == proxyHang && !p.closed {
		p.cond.Wait()
	}
	return p.mode == proxyUp && !p.closed
}

func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.await() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/healthz", r.URL.Path)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	require.Equal(t, 0, dispatch(context.Background(), []string{"healthcheck", "--url", srv.URL + "/healthz"}, &out, &errOut), errOut.String())
	t.Setenv("CANVASD_ADDR", strings.TrimPrefix(srv.URL, "http://"))
	require.Equal(t, 0, dispatch(context.Background(), []string{"healthcheck"}, &out, &errOut), "the address comes from CANVASD_ADDR")
	status = http.StatusServiceUnavailable
	require.Equal(t, 1, dispatch(context.Background(), []string{"healthcheck"}, &out, &errOut))
	require.Contains(t, errOut.String(), "503")
	srv.Close()
	require.Equal(t, 1, dispatch(context.Background(), []string{"healthcheck"}, &out, &errOut))

	for addr, want := range map[string]string{
		"0.0.0.0:8080":   "http://127.0.0.1:8080/healthz",
		":8080":          "http://127.0.0.1:8080/healthz",
		"[::]:8080":      "http://[::1]:8080/healthz",
		"10.0.0.5:9000":  "http://10.0.0.5:9000/healthz",
		"localhost:8080": "http://localhost:8080/healthz",
	} {
		require.Equal(t, want, healthURL(addr), addr)
	}
}
