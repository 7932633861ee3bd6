package fault

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/nodeenv"
)

// nodeDriver is one Node process running real Replicache 15.3 clients
// (tests/client/fault-driver.js), commanded over stdin/stdout.
type nodeDriver struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    io.WriteCloser
	mu    sync.Mutex
	seq   int
	out   chan map[string]any
	done  chan struct{}
	names []string
}

// rcClient is one Replicache client's report.
type rcClient struct {
	Name       string         `json:"name"`
	Canvas     string         `json:"canvas"`
	ClientID   string         `json:"clientID"`
	Pending    int            `json:"pending"`
	Acked      int64          `json:"acked"`
	Snapshot   map[string]any `json:"snapshot"`
	StreamOpen bool           `json:"streamOpen"`
	ChangedAt  int64          `json:"changedAt"` // Unix ms
	PendingAt  int64          `json:"pendingAt"` // Unix ms
	Errors     struct {
		Push   int `json:"push"`
		Pull   int `json:"pull"`
		Stream int `json:"stream"`
		Resets int `json:"resets"`
	} `json:"errors"`
}

func clientDir(t *testing.T) string {
	dir, err := filepath.Abs(filepath.Join("..", "client"))
	require.NoError(t, err)
	return dir
}

var npmOnce sync.Once
var npmErr error

// startNodeDriver starts the driver, or skips (fails under CI=true) when
// node is missing; it runs `npm ci` once when node_modules is missing.
func startNodeDriver(t *testing.T) *nodeDriver {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		unavailable(t, "node not on PATH: %v", err)
	}
	dir := clientDir(t)
	npmOnce.Do(func() { npmErr = nodeenv.Install(dir) })
	if npmErr != nil {
		unavailable(t, "%v", npmErr)
	}
	logPath := filepath.Join(t.TempDir(), "node.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	cmd := exec.Command(nodeBin, "fault-driver.js")
	cmd.Dir = dir
	cmd.Stderr = logf
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	outPipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	d := &nodeDriver{t: t, cmd: cmd, in: in, out: make(chan map[string]any, 16), done: make(chan struct{})}
	go func() {
		defer close(d.out)
		sc := bufio.NewScanner(outPipe)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				d.out <- m
			}
		}
	}()
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(d.done) }()
	t.Cleanup(func() {
		_ = in.Close()
		select {
		case <-d.done:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-d.done
		}
		for range d.out {
		}
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil && len(b) > 0 {
				if len(b) > 4000 {
					b = b[len(b)-4000:]
				}
				t.Logf("--- node driver stderr (tail) ---\n%s", b)
			}
		}
	})
	return d
}

// call sends one command and waits for its answer.
func (d *nodeDriver) call(op string, args map[string]any, timeout time.Duration) map[string]any {
	d.t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	msg := map[string]any{"seq": d.seq, "op": op}
	for k, v := range args {
		msg[k] = v
	}
	b, _ := json.Marshal(msg)
	_, err := d.in.Write(append(b, '\n'))
	require.NoError(d.t, err, "driver %s", op)
	deadline := time.After(timeout)
	start := time.Now()
	defer func() {
		if took := time.Since(start); took > 500*time.Millisecond {
			d.t.Logf("node driver took %s to answer %s", took.Round(time.Millisecond), op)
		}
	}()
	for {
		select {
		case m, ok := <-d.out:
			require.True(d.t, ok, "driver exited during %s", op)
			if fmt.Sprint(m["re"]) != fmt.Sprint(d.seq) {
				continue
			}
			if e, ok := m["error"]; ok {
				require.Failf(d.t, "driver error", "%s: %v", op, e)
			}
			return m
		case <-deadline:
			require.Failf(d.t, "driver timeout", "%s after %s", op, timeout)
		}
	}
}

func (d *nodeDriver) open(name, canvas string, p *proxy, idx int) {
	d.call("open", map[string]any{"name": name, "canvas": canvas, "base": p.base, "idx": idx}, 10*time.Second)
	d.names = append(d.names, name)
}

func (d *nodeDriver) state() []rcClient {
	m := d.call("state", nil, 20*time.Second)
	b, _ := json.Marshal(m["clients"])
	var out []rcClient
	require.NoError(d.t, json.Unmarshal(b, &out))
	return out
}
