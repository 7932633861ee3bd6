package httpapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/MicahParks/jwkset"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
)

// TestJWKSWithoutUsableKeysStopsStart: a JWKS file or URL that yields no
// key able to verify tokens at start is an error, not a server that
// starts and refuses (or, worse, accepts) everything.
func TestJWKSWithoutUsableKeysStopsStart(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	set := func(use jwkset.USE) []byte {
		st := jwkset.NewMemoryStorage()
		j, err := jwkset.NewJWKFromKey(key.Public(), jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "k", ALG: jwkset.AlgES256, USE: use}})
		require.NoError(t, err)
		require.NoError(t, st.KeyWrite(context.Background(), j))
		raw, err := st.JSONPublic(context.Background())
		require.NoError(t, err)
		return raw
	}
	good, encOnly := set(jwkset.UseSig), set(jwkset.UseEnc)
	emptySet, _ := json.Marshal(map[string]any{"keys": []any{}})

	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	serve := func(data []byte, status int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write(data)
		}))
		t.Cleanup(srv.Close)
		return srv.URL + "/jwks.json"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedURL := "http://" + ln.Addr().String() + "/jwks.json"
	require.NoError(t, ln.Close())

	start := func(a func(*AuthConfig)) error {
		cfg := DefaultConfig()
		a(&cfg.Auth)
		s, err := New(cfg, nil, nil, zap.NewNop(), func() (string, bool) { return "ready", true })
		if err == nil {
			s.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name string
		auth func(*AuthConfig)
		ok   bool
	}{
		{"file with a key", func(a *AuthConfig) { a.JWKSFile = file("good.json", good) }, true},
		{"file with an empty set", func(a *AuthConfig) { a.JWKSFile = file("empty.json", emptySet) }, false},
		{"file with encryption keys only", func(a *AuthConfig) { a.JWKSFile = file("enc.json", encOnly) }, false},
		{"empty file", func(a *AuthConfig) { a.JWKSFile = file("zero.json", nil) }, false},
		{"URL with a key", func(a *AuthConfig) { a.JWKSURL = serve(good, 200) }, true},
		{"URL with an empty set", func(a *AuthConfig) { a.JWKSURL = serve(emptySet, 200) }, false},
		{"URL answering 500", func(a *AuthConfig) { a.JWKSURL = serve(good, 500) }, false},
		{"URL nobody answers", func(a *AuthConfig) { a.JWKSURL = closedURL }, false},
		{"blank HS256 secret", func(a *AuthConfig) { a.HS256Secret = []byte("                                        ") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := start(tc.auth)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}
