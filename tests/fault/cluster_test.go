package fault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	migrations "github.com/canvasd/canvasd/sql"
	"github.com/canvasd/canvasd/tests/pgtest"
)

// cluster is one scenario's world: a database (a fresh schema on the shared
// server, or a private throwaway PostgreSQL), canvasd instances on it, and
// one load-balancing proxy per instance in front of them.
type cluster struct {
	t       *testing.T
	baseURL string // database URL without search_path
	schema  string
	db      *pgxpool.Pool // the checker's own pool (application_name fault_checker)
	channel string
	pg      *privatePG // nil on the shared server

	insts   []*instance
	proxies []*proxy
	tr      *http.Transport
	stopHC  chan struct{}
	hcDone  chan struct{}
}

// dbURL is the database URL for an application name, on this cluster's schema.
func (c *cluster) dbURL(app string) string {
	u, err := url.Parse(c.baseURL)
	require.NoError(c.t, err)
	q := u.Query()
	q.Set("search_path", c.schema)
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	return u.String()
}

type clusterOpts struct {
	instances  int
	privatePG  bool
	extraEnv   []string
	writeLimit time.Duration
}

// newCluster creates the database with the audit triggers, starts the
// instances and their proxies; everything goes when the test ends.
func newCluster(t *testing.T, o clusterOpts) *cluster {
	t.Helper()
	c := &cluster{t: t, baseURL: pgtest.URL(), schema: pgtest.Name("fault"), channel: pgtest.Name("poke")}
	if o.privatePG {
		c.pg = startPrivatePG(t)
		c.baseURL = c.pg.url
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, c.baseURL)
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	_, err = admin.Exec(ctx, "CREATE SCHEMA "+c.schema)
	_ = admin.Close(ctx)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, c.baseURL); err == nil {
			_, _ = conn.Exec(ctx, "DROP SCHEMA "+c.schema+" CASCADE")
			_ = conn.Close(ctx)
		}
	})
	cfg, err := pgxpool.ParseConfig(c.dbURL("fault_checker"))
	require.NoError(t, err)
	cfg.MaxConns = 6
	c.db, err = pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(c.db.Close)
	require.NoError(t, migrations.Apply(ctx, c.db))
	_, err = c.db.Exec(ctx, auditSQL)
	require.NoError(t, err, "audit triggers")

	c.tr = &http.Transport{
		DialContext:         (&net.Dialer{Timeout: time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     5 * time.Second,
	}
	t.Cleanup(c.tr.CloseIdleConnections)
	for i := range o.instances {
		in := &instance{
			// Unique per scenario: faults terminate connections by
			// application_name across the whole server, and scenarios run
			// in parallel.
			name: fmt.Sprintf("%s_i%d", c.schema, i),
			addr: freeAddr(t),
			log:  filepath.Join(t.TempDir(), fmt.Sprintf("i%d.log", i)),
		}
		in.env = append([]string{
			"DATABASE_URL=" + c.dbURL(in.name),
			"CANVASD_ADDR=" + in.addr,
			"CANVASD_NOTIFY_CHANNEL=" + c.channel,
			"CANVASD_LOG_LEVEL=warn",
			"CANVASD_DB_MAX_CONNS=6",
			"CANVASD_SHUTDOWN_TIMEOUT=5s",
			// The proxies poll /readyz every 100 ms: half a second of
			// drain is five polls.
			"CANVASD_DRAIN_PERIOD=500ms",
			"CANVASD_IDLE_TIMEOUT=3s",
			"PATH=" + os.Getenv("PATH"),
		}, o.extraEnv...)
		c.insts = append(c.insts, in)
		t.Cleanup(in.killForGood)
	}
	for _, in := range c.insts {
		in.start(t)
	}
	for _, in := range c.insts {
		c.waitReady(in, 30*time.Second)
	}
	for i := range c.insts {
		c.proxies = append(c.proxies, startProxy(t, c, i))
	}
	c.stopHC, c.hcDone = make(chan struct{}), make(chan struct{})
	go c.healthChecks()
	t.Cleanup(func() { close(c.stopHC); <-c.hcDone })
	t.Cleanup(func() {
		if t.Failed() {
			for _, in := range c.insts {
				in.dumpLog(t)
			}
		}
	})
	return c
}

// healthChecks is the load balancer's view: /readyz of every instance every
// 100 ms; proxies prefer instances that answered ready.
func (c *cluster) healthChecks() {
	defer close(c.hcDone)
	client := &http.Client{Transport: c.tr, Timeout: 500 * time.Millisecond}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, in := range c.insts {
			ok := false
			if in.running() {
				if resp, err := client.Get("http://" + in.addr + "/readyz"); err == nil {
					ok = resp.StatusCode == http.StatusOK
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			}
			in.healthy.Store(ok)
		}
		select {
		case <-c.stopHC:
			return
		case <-tick.C:
		}
	}
}

func (c *cluster) waitReady(in *instance, within time.Duration) {
	c.t.Helper()
	client := &http.Client{Transport: c.tr, Timeout: time.Second}
	require.Eventually(c.t, func() bool {
		resp, err := client.Get("http://" + in.addr + "/readyz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, within, 20*time.Millisecond, "%s ready", in.name)
	in.healthy.Store(true)
}

func (c *cluster) instanceBases() []string {
	var out []string
	for _, in := range c.insts {
		out = append(out, "http://"+in.addr)
	}
	return out
}

// createCanvas creates a canvas through instance 0.
func (c *cluster) createCanvas(id string) {
	c.t.Helper()
	client := &http.Client{Transport: c.tr, Timeout: 10 * time.Second}
	resp, err := client.Post("http://"+c.insts[0].addr+"/api/canvases", "application/json",
		strings.NewReader(fmt.Sprintf(`{"id":%q,"title":"fault %s"}`, id, id)))
	require.NoError(c.t, err)
	_ = resp.Body.Close()
	require.Equal(c.t, http.StatusCreated, resp.StatusCode)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// instance is one canvasd process; it keeps its address across restarts.
type instance struct {
	name, addr, log string
	env             []string
	healthy         atomic.Bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
}

func (in *instance) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(in.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	cmd := exec.Command(serverBin)
	cmd.Env = in.env
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = f.Close()
		close(done)
	}()
	in.mu.Lock()
	in.cmd, in.done = cmd, done
	in.mu.Unlock()
}

func (in *instance) running() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.done == nil {
		return false
	}
	select {
	case <-in.done:
		return false
	default:
		return true
	}
}

// signal sends sig and, if wait > 0, waits that long for the exit.
func (in *instance) signal(sig syscall.Signal, wait time.Duration) error {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	in.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	if wait <= 0 {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("%s did not exit within %s of %s", in.name, wait, sig)
	}
}

func (in *instance) killForGood() { _ = in.signal(syscall.SIGKILL, 10*time.Second) }

func (in *instance) dumpLog(t *testing.T) {
	b, err := os.ReadFile(in.log)
	if err != nil {
		return
	}
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	t.Logf("--- %s log (tail) ---\n%s", in.name, b)
}

// privatePG is a throwaway PostgreSQL cluster that this test may restart.
type privatePG struct {
	dir, url string
	port     int
}

const pgBin = "/usr/lib/postgresql/15/bin"

func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "a private PostgreSQL needs root to run it as the postgres user")
	}
	if _, err := os.Stat(filepath.Join(pgBin, "pg_ctl")); err != nil {
		unavailable(t, "no %s/pg_ctl: %v", pgBin, err)
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		unavailable(t, "no runuser: %v", err)
	}
	dir, err := os.MkdirTemp("", "canvasd-fault-pg")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput()
	require.NoError(t, err, "%s", out)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	p := &privatePG{dir: dir, port: port,
		url: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	p.run(t, "initdb", "-D", p.data(), "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8")
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", port, dir)
	p.run(t, "pg_ctl", "-D", p.data(), "-o", opts, "-l", filepath.Join(dir, "pg.log"), "-w", "-t", "30", "start")
	t.Cleanup(func() {
		_ = exec.Command("runuser", "-u", "postgres", "--", filepath.Join(pgBin, "pg_ctl"),
			"-D", p.data(), "-m", "immediate", "-w", "-t", "30", "stop").Run()
	})
	return p
}

func (p *privatePG) data() string { return filepath.Join(p.dir, "data") }

func (p *privatePG) run(t *testing.T, prog string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", filepath.Join(pgBin, prog)}, args...)...)
	cmd.Dir = p.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "%s %v:\n%s", prog, args, out.String())
}

// restart stops PostgreSQL (fast: every session ends), waits down, starts it.
func (p *privatePG) restart(t *testing.T, down time.Duration) {
	t.Helper()
	p.run(t, "pg_ctl", "-D", p.data(), "-m", "fast", "-w", "-t", "30", "stop")
	time.Sleep(down) // the outage itself is the fault
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", p.port, p.dir)
	p.run(t, "pg_ctl", "-D", p.data(), "-o", opts, "-l", filepath.Join(p.dir, "pg.log"), "-w", "-t", "30", "start")
}

// unavailable fails with a hint on what the suite needs, or skips when
// CANVASD_TEST_SKIP_DB=1 opts in (never under CI=true).
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	pgtest.Missing(t, fmt.Sprintf(format, args...),
		"the fault suite runs PostgreSQL 15 of its own (initdb and pg_ctl in "+pgBin+
			", run as the postgres user, so as root) and Node.js 20 or later")
}

// proxy is the in-test load balancer in front of one preferred instance: it
// fails over to a ready instance when that one is down or draining (unless
// failover is off: then its clients wait for the restart), and it can drop
// push responses after the server committed them.
type proxy struct {
	c        *cluster
	prefer   int
	base     string
	srv      *http.Server
	failover atomic.Bool
	drop     atomic.Int32 // push responses still to drop
	dropped  atomic.Int32
}

func startProxy(t *testing.T, c *cluster, prefer int) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{c: c, prefer: prefer, base: "http://" + ln.Addr().String()}
	p.failover.Store(true)
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { _ = p.srv.Serve(ln); close(done) }()
	t.Cleanup(func() { _ = p.srv.Close(); <-done })
	return p
}

// backends lists the instances to try, best first.
func (p *proxy) backends() []*instance {
	pref := p.c.insts[p.prefer]
	if !p.failover.Load() {
		return []*instance{pref}
	}
	var ready, rest []*instance
	for i := range p.c.insts {
		in := p.c.insts[(p.prefer+i)%len(p.c.insts)]
		switch {
		case in.healthy.Load():
			ready = append(ready, in)
		case in.running():
			rest = append(rest, in)
		}
	}
	return append(ready, rest...)
}

func (p *proxy) takeDrop() bool {
	for {
		n := p.drop.Load()
		if n <= 0 {
			return false
		}
		if p.drop.CompareAndSwap(n, n-1) {
			p.dropped.Add(1)
			return true
		}
	}
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	retried := false
	for _, in := range p.backends() {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+in.addr+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		// Push and pull are idempotent in the Replicache protocol: like a
		// browser, retry one that met a kept-alive connection the server
		// had just closed (the header itself is not sent).
		req.Header["Idempotency-Key"] = nil
		resp, err := p.c.tr.RoundTrip(req)
		if err != nil {
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				continue // never reached the instance: safe to try the next
			}
			if !retried && r.Context().Err() == nil && !strings.HasSuffix(r.URL.Path, "/events") {
				// The connection broke before any answer (an instance
				// closing it at the end of its drain, or dying): like
				// HAProxy's retry-on empty-response with redispatch, try
				// once more elsewhere. Push and pull are idempotent.
				retried = true
				continue
			}
			http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.HasSuffix(r.URL.Path, "/replicache/push") && p.takeDrop() {
			_, _ = io.Copy(io.Discard, resp.Body)
			panic(http.ErrAbortHandler) // committed, but the client never hears it
		}
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		fl, _ := w.(http.Flusher)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				if fl != nil {
					fl.Flush()
				}
			}
			if err != nil {
				return
			}
		}
	}
	http.Error(w, "no instance reachable", http.StatusBadGateway)
}
