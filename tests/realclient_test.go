package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/nodeenv"
	"github.com/canvasd/canvasd/tests/pgtest"
)

// TestRealClient runs the real Replicache 15.3 client (Node, tests/client)
// against a freshly built canvasd on a fresh PostgreSQL database.
//
// Without node on PATH or a reachable database it fails with a hint, or
// skips when CANVASD_TEST_SKIP_DB=1 opts in (never under CI=true).
func TestRealClient(t *testing.T) {
	nodeMissing := func(format string, args ...any) {
		t.Helper()
		pgtest.Missing(t, fmt.Sprintf(format, args...),
			"the real-client suite needs Node.js 20 or later (node and npm on PATH)")
	}

	nodeBin, err := exec.LookPath("node")
	if err != nil {
		nodeMissing("node not on PATH: %v", err)
	}

	wd, err := os.Getwd()
	require.NoError(t, err)
	root := filepath.Dir(wd) // module root: tests/ is its child
	clientDir := filepath.Join(wd, "client")
	require.FileExists(t, filepath.Join(root, "go.mod"))
	require.FileExists(t, filepath.Join(clientDir, "package-lock.json"))

	watchInputs(t, filepath.Join(root, "cmd", "canvasd"), clientDir, filepath.Join(root, "canvas", "client", "dist"))
	dbURL := freshDatabase(t)
	bin := buildServer(t, root)
	srv := startServer(t, bin, dbURL)
	ensureNodeModules(t, clientDir, nodeMissing)

	runNodeTests(t, nodeBin, clientDir, srv.base)

	srv.stop(t)

	// The data lifecycle, on a server of its own whose collector deletes
	// client groups idle for 2 s: run on the shared one, it would delete
	// the groups of the other tests.
	gc := startServer(t, bin, freshDatabase(t), "CANVASD_CLIENT_GROUP_TTL=2s", "CANVASD_TOMBSTONE_TTL=2s", "CANVASD_GC_INTERVAL=200ms")
	runNodeTests(t, nodeBin, clientDir, gc.base, "CANVASD_GC=1", "lifecycle.test.js")
	gc.stop(t)
}

// watchInputs opens every file under dirs (node_modules aside). The suite
// builds cmd/canvasd and runs the client's JavaScript, neither of which is
// linked into this test binary: opening them makes go test's result cache,
// which keys on the files a test opens, run the suite again when they change.
func watchInputs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() {
				f, err := os.Open(path)
				if err != nil {
					return err
				}
				return f.Close()
			}
			return nil
		})
		require.NoError(t, err)
	}
}

// freshDatabase creates canvasd_rc_<random> next to DATABASE_URL's database
// and drops it (WITH (FORCE)) at cleanup. It returns the new database's URL.
func freshDatabase(t *testing.T) string {
	t.Helper()
	adminURL := pgtest.URL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		pgtest.Unavailable(t, err)
	}
	defer conn.Close(context.Background())
	if err := conn.Ping(ctx); err != nil {
		pgtest.Unavailable(t, err)
	}

	name := "canvasd_rc_" + randomHex(t, 6)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err, "create database %s", name)
	t.Logf("database %s", name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Errorf("drop database %s: connect: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})

	u, err := url.Parse(adminURL)
	require.NoError(t, err, "DATABASE_URL must be a postgres:// URL")
	require.Contains(t, []string{"postgres", "postgresql"}, u.Scheme, "DATABASE_URL must be a postgres:// URL")
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

func buildServer(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "canvasd")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/canvasd")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/canvasd:\n%s", out)
	return bin
}

type server struct {
	base    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
	once    sync.Once
	stopErr error
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startServer(t *testing.T, bin, dbURL string, env ...string) *server {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	logPath := filepath.Join(t.TempDir(), "canvasd.log")
	logFile, err := os.Create(logPath)
	require.NoError(t, err)

	cmd := exec.Command(bin, "--addr", addr, "--database-url", dbURL)
	cmd.Env = append(append(os.Environ(), "CANVASD_ADDR="+addr, "DATABASE_URL="+dbURL), env...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	require.NoError(t, cmd.Start(), "start canvasd")
	s := &server{base: "http://" + addr, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		logFile.Close()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			s.dumpLog(t)
		}
	})

	// Wait for GET /readyz 200.
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		select {
		case <-s.done:
			s.dumpLog(t)
			t.Fatalf("canvasd exited before it was ready: %v", s.waitErr)
		default:
		}
		resp, err := client.Get(s.base + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			s.dumpLog(t)
			t.Fatalf("canvasd not ready at %s/readyz within 30s; last: %s", s.base, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("canvasd ready at %s (log %s)", s.base, logPath)
	return s
}

// stop sends SIGTERM and waits for the process to exit (SIGKILL after 15 s).
// The first call reports an unclean shutdown as a test error.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.once.Do(func() {
		select {
		case <-s.done:
			s.stopErr = fmt.Errorf("canvasd exited before SIGTERM: %v", s.waitErr)
			return
		default:
		}
		if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			s.stopErr = fmt.Errorf("SIGTERM: %w", err)
		}
		select {
		case <-s.done:
			if s.waitErr != nil {
				s.stopErr = fmt.Errorf("canvasd did not exit cleanly on SIGTERM: %v", s.waitErr)
			}
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
			s.stopErr = errors.New("canvasd did not exit within 15s of SIGTERM; killed")
		}
		if s.stopErr != nil {
			t.Error(s.stopErr)
		}
	})
}

func (s *server) dumpLog(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		t.Logf("canvasd log %s: %v", s.logPath, err)
		return
	}
	const max = 256 << 10
	if len(b) > max {
		b = append([]byte("…(truncated)…\n"), b[len(b)-max:]...)
	}
	t.Logf("---- canvasd log (%s) ----\n%s\n---- end of canvasd log ----", s.logPath, b)
}

// ensureNodeModules installs tests/client's pinned packages when they are
// missing or older than its lock file.
func ensureNodeModules(t *testing.T, clientDir string, unavailable func(string, ...any)) {
	t.Helper()
	if _, err := exec.LookPath("npm"); err != nil {
		unavailable("npm not on PATH: %v", err)
	}
	require.NoError(t, nodeenv.Install(clientDir))
}

// runNodeTests runs node --test in clientDir against base. With no files
// given, node finds every *.test.js; env entries that contain "=" are
// added to the environment, the others are test files.
func runNodeTests(t *testing.T, nodeBin, clientDir, base string, extra ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// No path arguments: node --test finds *.test.js under the cwd (and
	// skips node_modules) on every Node version from 20 on.
	args := []string{"--test", "--test-reporter=spec"}
	env := append(os.Environ(), "CANVASD_URL="+base, "NO_COLOR=1", "FORCE_COLOR=0")
	for _, x := range extra {
		if strings.Contains(x, "=") {
			env = append(env, x)
		} else {
			args = append(args, x)
		}
	}
	cmd := exec.CommandContext(ctx, nodeBin, args...)
	cmd.Dir = clientDir
	cmd.Env = env
	cmd.WaitDelay = 10 * time.Second

	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	var out bytes.Buffer
	scanned := make(chan struct{})
	verbose := testing.Verbose()
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line)
			out.WriteByte('\n')
			if verbose {
				t.Log(line)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()

	start := time.Now()
	err := cmd.Start()
	require.NoError(t, err, "start node --test")
	err = cmd.Wait()
	pw.Close()
	<-scanned

	if ctx.Err() != nil {
		err = fmt.Errorf("node --test did not finish within 5 minutes: %w", err)
	}
	if err != nil && !verbose {
		t.Logf("---- node --test output ----\n%s---- end ----", out.String())
	}
	require.NoError(t, err, "node --test (CANVASD_URL=%s) failed after %s; summary:\n%s",
		base, time.Since(start).Round(time.Millisecond), summary(out.String()))
}

// summary returns the spec reporter's closing lines (counts and failures).
func summary(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var keep []string
	for _, l := range lines {
		tl := strings.TrimSpace(l)
		if strings.HasPrefix(tl, "✖") || strings.HasPrefix(tl, "ℹ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}
