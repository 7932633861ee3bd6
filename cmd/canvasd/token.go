package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/canvasd/canvasd/httpapi"
)

// grantList collects repeated --grant flags (each may hold a comma list).
type grantList []string

func (g *grantList) String() string { return strings.Join(*g, ",") }

func (g *grantList) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*g = append(*g, s)
		}
	}
	return nil
}

// runToken mints an HS256 development token, signed with the secret the
// server verifies (same flags and variables), and prints it.
func runToken(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("canvasd token", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: canvasd token --sub USER [--grant GRANT]... [--ttl 24h]")
		fmt.Fprintln(fs.Output(), "grants: read:<canvas>, write:<canvas>, read:*, write:*, create, metrics, * (everything)")
		fs.PrintDefaults()
	}
	var (
		sub, secretFile, issuer, audience string
		secret                            secretFlag
		ttl                               time.Duration
		grants                            grantList
	)
	fs.StringVar(&sub, "sub", "", "the user (token subject)")
	fs.Var(&grants, "grant", "a grant; repeat or separate with commas")
	fs.DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid")
	secretVar(fs, &secret, "jwt-secret", "CANVASD_JWT_SECRET", "", "HS256 secret", showSet)
	fs.StringVar(&secretFile, "jwt-secret-file", envOr("CANVASD_JWT_SECRET_FILE", ""), "file holding the HS256 secret (env CANVASD_JWT_SECRET_FILE)")
	fs.StringVar(&issuer, "jwt-issuer", envOr("CANVASD_JWT_ISSUER", ""), "iss claim (env CANVASD_JWT_ISSUER)")
	fs.StringVar(&audience, "jwt-audience", envOr("CANVASD_JWT_AUDIENCE", ""), "aud claim (env CANVASD_JWT_AUDIENCE)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	key := []byte(secret.value)
	if strings.TrimSpace(secret.value) == "" {
		key = nil // blank is no secret
	}
	if secretFile != "" {
		b, err := os.ReadFile(secretFile)
		if err != nil {
			return fmt.Errorf("jwt-secret-file: %w", err)
		}
		key = bytes.TrimSpace(b)
	}
	switch {
	case len(key) == 0:
		return errors.New("no secret: set CANVASD_JWT_SECRET (the server's too), e.g. export CANVASD_JWT_SECRET=$(openssl rand -hex 32)")
	case len(key) < 32:
		return errors.New("the secret must be at least 32 bytes")
	case sub == "":
		return errors.New("--sub is required")
	case ttl <= 0:
		return errors.New("--ttl must be positive")
	}
	now := time.Now()
	claims := httpapi.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			Issuer:    issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Grants: grants,
	}
	if audience != "" {
		claims.Audience = jwt.ClaimStrings{audience}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, tok)
	return err
}
