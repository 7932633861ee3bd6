package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// findModuleRoot walks up from dir to the go.mod of canvasd.
func findModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/canvasd/canvasd") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("canvasd module root not found upward from the working directory (use --src or --canvasd-bin)")
		}
		dir = parent
	}
}

// buildCanvasd builds ./cmd/canvasd of the module at src into dir.
func buildCanvasd(ctx context.Context, src, dir string) (string, error) {
	if src == "" {
		wd, _ := os.Getwd()
		var err error
		if src, err = findModuleRoot(wd); err != nil {
			return "", err
		}
	}
	bin := filepath.Join(dir, "canvasd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/canvasd")
	cmd.Dir = src
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/canvasd: %w\n%s", err, out)
	}
	return bin, nil
}

// freshDB is a database created for one run.
type freshDB struct {
	admin string // admin URL
	name  string
	url   string // URL of the new database
}

// createDB creates canvasbench_<label>_<random> next to the admin database.
func createDB(ctx context.Context, adminURL, label string) (*freshDB, error) {
	name := "canvasbench_" + strings.NewReplacer("-", "_").Replace(label) + "_" + randID(8)
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("connect admin database: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return nil, err
	}
	u.Path = "/" + name
	return &freshDB{admin: adminURL, name: name, url: u.String()}, nil
}

// drop removes the database (only ever one this program created).
func (d *freshDB) drop() error {
	if d == nil || !strings.HasPrefix(d.name, "canvasbench_") {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.name}.Sanitize()+" WITH (FORCE)")
	return err
}

// serverProc is a canvasd started by canvasbench.
type serverProc struct {
	cmd  *exec.Cmd
	url  string
	log  string
	done chan error
}

func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startServer runs bin on a free loopback port against dbURL with the mode's
// flags, and waits until GET /readyz answers 200.
func startServer(ctx context.Context, bin, dbURL string, mode Mode, logDir string) (*serverProc, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(logDir, fmt.Sprintf("canvasd-%s-%d.log", mode.Name, port))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--addr", addr, "--database-url", dbURL}, mode.Args...)
	cmd := exec.Command(bin, args...)
	// The flags win over these, but keep the environment from changing the mode.
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "CANVASD_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &serverProc{cmd: cmd, url: "http://" + addr, log: logPath, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); logf.Close() }()

	a := newAPI(s.url, 2*time.Second, 1)
	defer a.close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := a.get(ctx, "/readyz"); err == nil {
			return s, nil
		}
		select {
		case err := <-s.done:
			s.done <- err
			return nil, fmt.Errorf("canvasd exited before ready (%v); log %s:\n%s", err, logPath, tail(logPath, 20))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("canvasd not ready within 30s; log %s:\n%s", logPath, tail(logPath, 20))
		}
	}
}

func (s *serverProc) pid() int { return s.cmd.Process.Pid }

// stop sends SIGTERM and waits up to 15s, then kills. It returns the exit
// error if the server did not exit cleanly.
func (s *serverProc) stop() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		err := <-s.done
		s.done <- err
		return fmt.Errorf("canvasd did not exit within 15s of SIGTERM (killed)")
	}
}

// readRSS returns VmRSS and VmHWM (peak) of pid in bytes.
func readRSS(pid int) (rss, peak int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) < 1 {
			continue
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			rss = n * 1024
		} else {
			peak = n * 1024
		}
	}
	return rss, peak, sc.Err()
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
