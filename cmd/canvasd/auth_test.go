package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/httpapi"
)

const secret = "0123456789abcdef0123456789abcdef"

func TestNoAuthListensOnLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{nil, true}, // default 127.0.0.1:8080
		{[]string{"--addr", "localhost:9000"}, true},
		{[]string{"--addr", "[::1]:9000"}, true},
		{[]string{"--addr", "0.0.0.0:8080"}, false},
		{[]string{"--addr", ":8080"}, false},
		{[]string{"--addr", "10.1.2.3:8080"}, false},
		{[]string{"--addr", "0.0.0.0:8080", "--insecure-no-auth"}, true},
		{[]string{"--addr", "0.0.0.0:8080", "--jwt-secret", secret}, true},
		{[]string{"--addr", "0.0.0.0:8080", "--jwks-url", "https://issuer.example/jwks.json", "--jwks-refresh", "1m"}, true},
		{[]string{"--jwt-secret", secret, "--insecure-no-auth"}, false},
		{[]string{"--jwt-secret", "short"}, false},
		{[]string{"--jwks-url", "http://issuer.example/jwks.json"}, false},
		{[]string{"--jwks-url", "http://127.0.0.1:9/jwks.json"}, true},
		{[]string{"--jwks-file", "a.json", "--jwks-url", "https://x.example/j"}, false},
		{[]string{"--rate-push", "-1"}, false},
		{[]string{"--read-header-timeout", "0s"}, false},
		{[]string{"--debug-addr", "127.0.0.1:6060"}, true},
		{[]string{"--debug-addr", ":6060"}, false},
		{[]string{"--versioning", "sharded"}, false},
		{[]string{"--batching", "maybe"}, false},
		{[]string{"--versioning", "global", "--notify", "coalesced", "--batching", "on"}, true},
	} {
		cfg, err := parseConfig(tc.args)
		if tc.ok {
			require.NoError(t, err, tc.args)
			require.NotNil(t, cfg)
		} else {
			require.Error(t, err, tc.args)
		}
	}
	_, err := parseConfig([]string{"--addr", "0.0.0.0:8080"})
	require.ErrorContains(t, err, "--insecure-no-auth")
}

func TestAuthFlagsAndEnvTwins(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(file, []byte(secret+"\n"), 0o600))
	t.Setenv("CANVASD_JWT_SECRET_FILE", file)
	t.Setenv("CANVASD_CORS_ORIGINS", "https://a.example, https://b.example")
	t.Setenv("CANVASD_RATE_PULL", "7.5")
	t.Setenv("CANVASD_MAX_SSE_PER_USER", "3")
	t.Setenv("CANVASD_JWT_ISSUER", "iss")
	cfg, err := parseConfig([]string{"--addr", "0.0.0.0:1", "--jwt-audience", "aud", "--rate-pull-burst", "9"})
	require.NoError(t, err)
	require.Equal(t, []byte(secret), cfg.HTTP.Auth.HS256Secret, "the file's trailing newline is not part of the secret")
	require.Equal(t, []string{"https://a.example", "https://b.example"}, cfg.HTTP.CORSOrigins)
	require.Equal(t, httpapi.RateLimit{PerSecond: 7.5, Burst: 9}, cfg.HTTP.PullRate)
	require.Equal(t, 3, cfg.HTTP.MaxStreamsPerUser)
	require.Equal(t, "iss", cfg.HTTP.Auth.Issuer)
	require.Equal(t, "aud", cfg.HTTP.Auth.Audience)

	t.Setenv("CANVASD_INSECURE_NO_AUTH", "maybe")
	_, err = parseConfig(nil)
	require.ErrorContains(t, err, "CANVASD_INSECURE_NO_AUTH")
}

func TestTokenCommandMintsWhatTheServerAccepts(t *testing.T) {
	t.Setenv("CANVASD_JWT_SECRET", secret)
	var out bytes.Buffer
	require.NoError(t, runToken([]string{"--sub", "alice", "--grant", "read:c1,write:c1", "--grant", "create", "--ttl", "1h", "--jwt-audience", "aud"}, &out))
	raw := strings.TrimSpace(out.String())

	var c httpapi.Claims
	_, err := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("aud"), jwt.WithExpirationRequired()).
		ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return []byte(secret), nil })
	require.NoError(t, err)
	require.Equal(t, "alice", c.Subject)
	require.Equal(t, []string{"read:c1", "write:c1", "create"}, c.Grants)
	require.WithinDuration(t, time.Now().Add(time.Hour), c.ExpiresAt.Time, 5*time.Second)

	require.ErrorContains(t, runToken(nil, io.Discard), "--sub")
	t.Setenv("CANVASD_JWT_SECRET", "")
	require.ErrorContains(t, runToken([]string{"--sub", "a"}, io.Discard), "CANVASD_JWT_SECRET")
	require.Error(t, runToken([]string{"--sub", "a", "--jwt-secret", "short"}, io.Discard))
}

// TestSlowHeadersAreCutOff runs the server binary's run and holds a
// connection open without finishing its headers. The database is never
// reached: the listener serves before migrations.
func TestSlowHeadersAreCutOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", addr, "--database-url", "postgres://nobody@127.0.0.1:1/none?connect_timeout=1",
			"--read-header-timeout", "300ms", "--log-level", "error"})
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(20 * time.Second):
			t.Error("run did not stop")
		}
	}()
	var conn net.Conn
	require.Eventually(t, func() bool {
		conn, err = net.Dial("tcp", addr)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	start := time.Now()
	_, err = bufio.NewReader(conn).ReadString('\n')
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server kept a half-sent request open: %v", err)
	require.Less(t, time.Since(start), 3*time.Second)
}
