package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/tests/pgtest"
)

// clientPackage returns the module root and canvas/client, with the
// package's pinned node_modules installed (npm ci, once, under a lock that
// other test processes share).
func clientPackage(t *testing.T) (root, dir string) {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	root = filepath.Dir(wd)
	dir = filepath.Join(root, "canvas", "client")
	require.FileExists(t, filepath.Join(dir, "package-lock.json"))
	if _, err := exec.LookPath("node"); err != nil {
		pgtest.Missing(t, fmt.Sprintf("node not on PATH: %v", err), "the front-end tests need Node.js 20 or later (node and npm on PATH)")
	}

	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "canvasd-client-npm.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	require.NoError(t, err)
	defer lock.Close()
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()

	// Installed and as locked: npm ci writes node_modules/.package-lock.json.
	want, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	require.NoError(t, err)
	if have, err := os.ReadFile(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil && sameLock(have, want) {
		return root, dir
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		pgtest.Missing(t, fmt.Sprintf("canvas/client/node_modules missing and npm not on PATH: %v", err), "install Node.js 20 or later with npm")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "npm ci in %s:\n%s", dir, out)
	return root, dir
}

// sameLock reports whether the hidden lock npm ci leaves in node_modules
// holds every package of the committed lock at its version (optional
// packages of other platforms aside).
func sameLock(have, want []byte) bool {
	type lock struct {
		Packages map[string]struct {
			Version  string `json:"version"`
			Optional bool   `json:"optional"`
		} `json:"packages"`
	}
	var h, w lock
	if json.Unmarshal(have, &h) != nil || json.Unmarshal(want, &w) != nil {
		return false
	}
	for name, p := range w.Packages {
		if name == "" || p.Optional {
			continue
		}
		if hp, ok := h.Packages[name]; !ok || hp.Version != p.Version {
			return false
		}
	}
	return true
}

// TestFrontEndAssetsFresh rebuilds the client package (canvas/client/dist)
// and the demo app canvasd embeds (httpapi/web/static) from their sources
// and fails when the committed files differ: run `npm run build` in
// canvas/client and commit the result.
func TestFrontEndAssetsFresh(t *testing.T) {
	t.Parallel()
	root, dir := clientPackage(t)
	watchInputs(t, filepath.Join(dir, "src"), filepath.Join(dir, "demo"), filepath.Join(dir, "scripts"))
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "scripts/build.mjs", "--out", out)
	cmd.Dir = dir
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "node scripts/build.mjs:\n%s", b)

	for _, pair := range [][2]string{
		{filepath.Join(out, "dist"), filepath.Join(dir, "dist")},
		{filepath.Join(out, "static"), filepath.Join(root, "httpapi", "web", "static")},
	} {
		built, committed := readTree(t, pair[0]), readTree(t, pair[1])
		for name, data := range built {
			have, ok := committed[name]
			if !ok {
				t.Errorf("%s/%s is built from the sources but not committed; run npm run build in canvas/client", pair[1], name)
			} else if !bytes.Equal(have, data) {
				t.Errorf("%s/%s is stale: the sources build something else; run npm run build in canvas/client", pair[1], name)
			}
		}
		for name := range committed {
			if _, ok := built[name]; !ok {
				t.Errorf("%s/%s is committed but no longer built; remove it", pair[1], name)
			}
		}
	}
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	require.NoError(t, err)
	return files
}

// chromiumPath finds Debian's chromium, installing it when missing and
// running as root (apt-get), as the browser tests need.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "chromium"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Geteuid() != 0 {
		pgtest.Missing(t, "chromium not found", "install it (apt-get install chromium) or set CHROMIUM to a Chromium binary")
	}
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "canvasd-chromium-install.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	require.NoError(t, err)
	defer lock.Close()
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if p, err := exec.LookPath("/usr/bin/chromium"); err == nil {
		return p // installed by another test process meanwhile
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "--no-install-recommends", "chromium"}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "apt-get %v:\n%s", args, out)
	}
	p, err := exec.LookPath("/usr/bin/chromium")
	require.NoError(t, err, "chromium installed but not found")
	return p
}

// TestBrowser drives the demo canvas in Chromium (playwright-core, pinned in
// canvas/client's lock file): two browser contexts on one canvas of a
// freshly built canvasd (canvas/client/test/browser.test.mjs). Beside it,
// the README's client example runs as written against the same server,
// from the package as npm pack makes it.
func TestBrowser(t *testing.T) {
	t.Parallel()
	root, dir := clientPackage(t)
	chromium := chromiumPath(t)
	watchInputs(t, filepath.Join(root, "cmd", "canvasd"), filepath.Join(root, "httpapi", "web"), filepath.Join(dir, "test"))
	dbURL := freshDatabase(t)
	bin := buildServer(t, root)
	srv := startServer(t, bin, dbURL)
	// A second instance on the same database, with authentication on.
	secret := "CANVASD_JWT_SECRET=" + randomHex(t, 32)
	authed := startServer(t, bin, dbURL, secret)
	mint := exec.Command(bin, "token", "--sub", "alice", "--grant", "*", "--ttl", "1h")
	mint.Env = append(os.Environ(), secret)
	tok, err := mint.Output()
	require.NoError(t, err, "canvasd token")

	nodeBin, err := exec.LookPath("node")
	require.NoError(t, err)
	// The two run side by side; the group returns when both are done.
	t.Run("group", func(t *testing.T) {
		t.Run("two people", func(t *testing.T) {
			t.Parallel()
			runNodeTestFiles(t, nodeBin, dir, []string{"CANVASD_URL=" + srv.base, "CHROMIUM=" + chromium,
				"CANVASD_AUTH_URL=" + authed.base, "CANVASD_TOKEN=" + string(bytes.TrimSpace(tok))}, "test/browser.test.mjs")
		})
		t.Run("README example", func(t *testing.T) {
			t.Parallel()
			readmeExample(t, root, dir, srv.base)
		})
	})
	authed.stop(t)
	srv.stop(t)
}

// readmeExample packs the client package as the README says, installs the
// tarball into a new app and runs the README's hello.mjs against srv.
func readmeExample(t *testing.T, root, dir, base string) {
	watchInputs(t, filepath.Join(root, "README.md"))
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	const marker = "<!-- example: hello.mjs -->\n```js\n"
	_, rest, ok := bytes.Cut(readme, []byte(marker))
	require.True(t, ok, "README has no %q block", marker)
	code, _, ok := bytes.Cut(rest, []byte("\n```"))
	require.True(t, ok)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	run := func(dir string, env []string, name string, args ...string) string {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s %v:\n%s", name, args, out)
		return string(out)
	}
	tmp := t.TempDir()
	// Scripts off: dist/ is committed (and checked fresh by
	// TestFrontEndAssetsFresh), and the build would rewrite the tree.
	run(dir, nil, "npm", "pack", "--ignore-scripts", "--pack-destination", tmp)
	tarballs, err := filepath.Glob(filepath.Join(tmp, "canvasd-client-*.tgz"))
	require.NoError(t, err)
	require.Len(t, tarballs, 1)
	app := filepath.Join(tmp, "app")
	require.NoError(t, os.MkdirAll(app, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(app, "package.json"), []byte(`{"name":"canvas-app","version":"1.0.0","private":true}`), 0o644))
	run(app, nil, "npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "replicache@15.3.0", tarballs[0])
	require.NoError(t, os.WriteFile(filepath.Join(app, "hello.mjs"), code, 0o644))
	out := run(app, []string{"CANVASD_URL=" + base}, "node", "hello.mjs")
	t.Logf("node hello.mjs:\n%s", out)
	require.Contains(t, out, "edge would close a cycle")
	require.Contains(t, out, "Idea at 40,80")
}

// runNodeTestFiles runs node --test on the given files with env added.
func runNodeTestFiles(t *testing.T, nodeBin, dir string, env []string, files ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := slices.Concat([]string{"--test", "--test-reporter=spec"}, files)
	cmd := exec.CommandContext(ctx, nodeBin, args...)
	cmd.Dir = dir
	cmd.Env = slices.Concat(os.Environ(), env, []string{"NO_COLOR=1", "FORCE_COLOR=0"})
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("node --test did not finish within 3 minutes: %w", err)
	}
	if err != nil || testing.Verbose() {
		t.Logf("---- node --test output ----\n%s---- end ----", out)
	}
	require.NoError(t, err, "node --test %v (%v) failed after %s; summary:\n%s",
		files, env, time.Since(start).Round(time.Millisecond), summary(string(out)))
}
