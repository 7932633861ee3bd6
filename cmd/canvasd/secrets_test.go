package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// captureStderr runs f with os.Stderr going to a file and returns what
// was written: flag usage goes there.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	file, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	old := os.Stderr
	os.Stderr = file
	defer func() { os.Stderr = old }()
	f()
	require.NoError(t, file.Close())
	out, err := os.ReadFile(file.Name())
	require.NoError(t, err)
	return string(out)
}

// TestSecretsNeverPrinted: --help, a mistyped flag and the token
// command's --help print usage to stderr (kept in service logs); none of
// them shows the HS256 secret or the database password, set by flag or
// environment. Usage still says whether the secret is set.
func TestSecretsNeverPrinted(t *testing.T) {
	const jwtSecret = "SECRET-0123456789abcdef0123456789abcdef"
	const dbPassword = "DBPASSWORD-s3cr3t"
	t.Setenv("CANVASD_JWT_SECRET", jwtSecret)
	t.Setenv("DATABASE_URL", "postgres://app:"+dbPassword+"@db.example:5432/canvas?sslmode=require")
	t.Setenv("CANVASD_JWKS_URL", "https://keys.example/jwks.json?token=JWKSTOKEN")

	for _, args := range [][]string{
		{"--help"},
		{"-h"},
		{"--jwt-secert", "x"}, // mistyped
		{"--addr"},            // missing value
		{"--jwt-secret", jwtSecret + "2", "--nope"},
	} {
		var err error
		out := captureStderr(t, func() { _, err = parseConfig(args) })
		require.Error(t, err, args)
		all := out + err.Error()
		require.NotContains(t, all, "SECRET-", args)
		require.NotContains(t, all, dbPassword, args)
		require.NotContains(t, all, "JWKSTOKEN", args)
		if args[0] == "--help" {
			require.Contains(t, out, "jwt-secret")
			require.Contains(t, out, "(set, not shown)", "usage says the secret is set")
			require.Contains(t, out, "postgres://app:xxxxx@db.example:5432/canvas", "the database URL is shown redacted")
		}
	}
	for _, args := range [][]string{{"--help"}, {"--sub", "a", "--bogus"}} {
		var err error
		out := captureStderr(t, func() { err = runToken(args, io.Discard) })
		require.Error(t, err)
		require.NotContains(t, out+err.Error(), "SECRET-", args)
		require.Contains(t, out, "jwt-secret")
	}
	// Unset, usage shows nothing for the secret.
	t.Setenv("CANVASD_JWT_SECRET", "")
	require.NoError(t, os.Unsetenv("CANVASD_JWT_SECRET"))
	out := captureStderr(t, func() { _, _ = parseConfig([]string{"--help"}) })
	require.NotContains(t, out, "(set, not shown)\n\t", "no secret set")
}

func TestShowRedactedURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable": "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"postgres://u:pw@h/db":                  "postgres://u:xxxxx@h/db",
		"postgres://u@h/db?password=pw&x=1":     "postgres://u@h/db?password=xxxxx&x=1",
		"host=h user=u password=pw dbname=d":    "(set, not shown: it holds a password)",
		"https://keys.example/jwks.json":        "https://keys.example/jwks.json",
		"https://keys.example/j?access_token=t": "https://keys.example/j?access_token=xxxxx",
		"":                                      "",
	} {
		require.Equal(t, want, showRedactedURL(in), in)
	}
}

// TestKeySourceGivenButEmptyStopsStart: a secret, secret file, JWKS file
// or URL that was given but yields no key refuses to start, instead of
// serving every request with every grant.
func TestKeySourceGivenButEmptyStopsStart(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	blank := filepath.Join(dir, "blank")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	require.NoError(t, os.WriteFile(blank, []byte(" \n\t\n"), 0o600))

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"empty flag secret", nil, []string{"--jwt-secret", ""}},
		{"blank flag secret", nil, []string{"--jwt-secret", "   "}},
		{"long blank flag secret", nil, []string{"--jwt-secret", strings.Repeat(" ", 40)}},
		{"empty env secret", map[string]string{"CANVASD_JWT_SECRET": ""}, nil},
		{"blank env secret", map[string]string{"CANVASD_JWT_SECRET": " \t "}, nil},
		{"empty secret file", nil, []string{"--jwt-secret-file", empty}},
		{"blank secret file", nil, []string{"--jwt-secret-file", blank}},
		{"blank secret file from env", map[string]string{"CANVASD_JWT_SECRET_FILE": blank}, nil},
		{"empty secret file name", nil, []string{"--jwt-secret-file", ""}},
		{"empty secret file env", map[string]string{"CANVASD_JWT_SECRET_FILE": ""}, nil},
		{"empty jwks file flag", nil, []string{"--jwks-file", ""}},
		{"empty jwks url env", map[string]string{"CANVASD_JWKS_URL": " "}, nil},
		{"empty jwks url flag", nil, []string{"--jwks-url", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, err := parseConfig(tc.args)
			require.Error(t, err, "started with %+v", cfg)
			require.NotContains(t, err.Error(), "insecure-no-auth contradicts")
		})
	}
	// Unset entirely, authentication is off (on loopback), as before.
	cfg, err := parseConfig(nil)
	require.NoError(t, err)
	require.False(t, cfg.HTTP.Auth.Enabled())
}

// TestJWKSWithoutAudienceWarns: a key set is usually an identity
// provider's, signing tokens for other services too; without an audience
// those are accepted, and the server says so at start.
func TestJWKSWithoutAudienceWarns(t *testing.T) {
	for _, tc := range []struct {
		aud  string
		warn bool
	}{{"", true}, {"canvasd", false}} {
		core, logs := observer.New(zapcore.WarnLevel)
		cfg, err := parseConfig([]string{"--jwks-url", "https://issuer.example/jwks.json", "--jwt-audience", tc.aud})
		if tc.aud == "" {
			cfg, err = parseConfig([]string{"--jwks-url", "https://issuer.example/jwks.json"})
		}
		require.NoError(t, err)
		logAuth(zap.New(core), cfg)
		require.Equal(t, tc.warn, logs.FilterMessageSnippet("audience").Len() > 0, tc.aud)
	}
}
