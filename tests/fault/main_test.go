// Package fault is canvasd's permanent fault suite: several canvasd
// processes (the real binary) on one database, real Replicache clients and
// exact-protocol clients on several canvases, seeded random faults, and a
// checker over an audit of every write.
package fault

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// serverBin is the canvasd binary built once for the whole package.
var serverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "canvasd-fault-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "canvasd")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", serverBin, "./cmd/canvasd")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.CombinedOutput()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/canvasd: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		// Every process, proxy, stream and pool must be gone by now.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
