package main

import (
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// CGO_ENABLED=0 go build, as in the container image's build
// (cmd/canvasd/deploy/Dockerfile), makes a static binary that runs with no
// libc: the image has none. (The image also strips paths and symbols,
// -trimpath -ldflags="-s -w", which changes nothing about linking and is
// left out here: -trimpath would recompile every package.)
func TestStaticBuild(t *testing.T) {
	dockerfile, err := os.ReadFile(filepath.Join("deploy", "Dockerfile"))
	require.NoError(t, err)
	require.Regexp(t, `(?m)^RUN CGO_ENABLED=0 go build .* \./cmd/canvasd$`, string(dockerfile))

	bin := filepath.Join(t.TempDir(), "canvasd")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		require.NotEqual(t, elf.PT_INTERP, p.Type, "a dynamic loader is needed")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	require.Empty(t, libs, "shared libraries needed")

	out, err = exec.CommandContext(ctx, bin, "version").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.True(t, strings.HasPrefix(string(out), "canvasd "), "%s", out)
	out, err = exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	require.NoError(t, err, "--help exits 0: %s", out)
	require.Contains(t, string(out), "canvasd healthcheck")
}
