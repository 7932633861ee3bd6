package tests

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/canvasd/canvasd/httpapi"
	"github.com/canvasd/canvasd/tests/harness"
)

const testSecret = "canvasd-test-secret-0123456789abcdef"

// claims builds token claims for sub valid for an hour.
func claims(sub string, grants ...string) httpapi.Claims {
	now := time.Now()
	return httpapi.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		Grants: grants,
	}
}

// sign signs c with method and key, naming kid when not empty.
func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, c jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// hsToken is an HS256 token of the test secret for sub.
func hsToken(t *testing.T, sub string, grants ...string) string {
	t.Helper()
	return sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims(sub, grants...))
}

// withAuth turns on authentication with the test secret, then applies mod.
func withAuth(mod func(*httpapi.Config)) harness.Option {
	return func(_ *actorsConfig, h *httpConfig) {
		h.Auth.HS256Secret = []byte(testSecret)
		if mod != nil {
			mod(h)
		}
	}
}

// authServer is an instance with auth on and a service client (grant *)
// that has created canvas "c".
func authServer(t *testing.T, mod func(*httpapi.Config)) (s, service *harness.Server) {
	t.Helper()
	s = newServer(t, withAuth(mod))
	service = s.As(hsToken(t, "service", "*"))
	service.CreateCanvas(t, "c")
	return s, service
}

// pullBody is a first pull for group.
func pullBody(group string) map[string]any {
	return map[string]any{"profileID": "p", "clientGroupID": group, "cookie": nil, "pullVersion": 1, "schemaVersion": "1"}
}

func pushBody(group string, ms ...M) map[string]any {
	out := make([]map[string]any, len(ms))
	for i, m := range ms {
		out[i] = map[string]any{"id": m.ID, "clientID": m.ClientID, "name": m.Name, "args": m.Args, "timestamp": 1}
	}
	return map[string]any{"profileID": "p", "clientGroupID": group, "pushVersion": 1, "schemaVersion": "1", "mutations": out}
}

// request sends one request with the given headers and returns the response
// with its body read.
func request(t *testing.T, method, url string, body string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(data)
}

func TestAuthRejectsBadTokensWith401(t *testing.T) {
	t.Parallel()
	s := newServer(t, withAuth(func(h *httpapi.Config) {
		h.Auth.Issuer = "https://issuer.test"
		h.Auth.Audience = "canvasd"
		h.Auth.ClockSkew = 30 * time.Second
	}))
	good := func(mod func(*httpapi.Claims)) httpapi.Claims {
		c := claims("alice", "*")
		c.Issuer = "https://issuer.test"
		c.Audience = jwt.ClaimStrings{"canvasd"}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	hs := func(c httpapi.Claims) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", c) }
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	past := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(time.Now().Add(-d)) }
	future := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(time.Now().Add(d)) }
	unsigned, err := jwt.NewWithClaims(jwt.SigningMethodNone, good(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)
	tampered := hs(good(nil))
	parts := strings.Split(tampered, ".")
	body, _ := json.Marshal(good(func(c *httpapi.Claims) { c.Subject = "mallory" }))
	tampered = parts[0] + "." + base64.RawURLEncoding.EncodeToString(body) + "." + parts[2]

	okService := hs(good(nil))
	s.As(okService).CreateCanvas(t, "c")

	for _, tc := range []struct {
		name, header, want string
	}{
		{"missing", "", "missing bearer token"},
		{"garbage", "Bearer not-a-jwt", "malformed token"},
		{"empty bearer", "Bearer ", "malformed token"},
		{"wrong secret", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdefghij"), "", good(nil)), "invalid token"},
		{"alg none", "Bearer " + unsigned, "invalid token"},
		{"RS256 without JWKS", "Bearer " + sign(t, jwt.SigningMethodRS256, rsaKey, "k", good(nil)), "invalid token"},
		{"tampered payload", "Bearer " + tampered, "invalid token"},
		{"expired", "Bearer " + hs(good(func(c *httpapi.Claims) { c.ExpiresAt = past(time.Minute) })), "token expired"},
		{"no exp", "Bearer " + hs(good(func(c *httpapi.Claims) { c.ExpiresAt = nil })), "token lacks a required claim"},
		{"not before", "Bearer " + hs(good(func(c *httpapi.Claims) { c.NotBefore = future(time.Minute) })), "token not valid yet"},
		{"issued in the future", "Bearer " + hs(good(func(c *httpapi.Claims) { c.IssuedAt = future(time.Minute) })), "token not valid yet"},
		{"wrong issuer", "Bearer " + hs(good(func(c *httpapi.Claims) { c.Issuer = "https://evil.test" })), "token has the wrong issuer"},
		{"no issuer", "Bearer " + hs(good(func(c *httpapi.Claims) { c.Issuer = "" })), "token lacks a required claim"},
		{"wrong audience", "Bearer " + hs(good(func(c *httpapi.Claims) { c.Audience = jwt.ClaimStrings{"other"} })), "token has the wrong audience"},
		{"no sub", "Bearer " + hs(good(func(c *httpapi.Claims) { c.Subject = "" })), "invalid token"},
		{"control char in sub", "Bearer " + hs(good(func(c *httpapi.Claims) { c.Subject = "a\x00b" })), "invalid token"},
		{"grants not a list", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", jwt.MapClaims{
			"sub": "alice", "exp": time.Now().Add(time.Hour).Unix(), "iss": "https://issuer.test", "aud": "canvasd", "grants": "*"}), "malformed token"},
		{"huge", "Bearer " + strings.Repeat("a", 20000), "invalid token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Authorization", tc.header)
			}
			for _, route := range []string{"replicache/pull", "replicache/push"} {
				resp, body := request(t, http.MethodPost, s.URL+"/api/canvases/c/"+route, `{}`, h)
				require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
				require.JSONEq(t, `{"error":"`+tc.want+`"}`, body)
				require.Contains(t, resp.Header.Get("WWW-Authenticate"), `Bearer realm="canvasd"`)
				require.NotContains(t, body, "mallory")
			}
		})
	}

	// The same token is accepted with or without "Bearer " (Replicache
	// sends its auth string verbatim), and within the clock skew.
	for _, h := range []string{"Bearer " + okService, "bearer " + okService, okService,
		"Bearer " + hs(good(func(c *httpapi.Claims) { c.ExpiresAt = past(10 * time.Second) }))} {
		resp, body := request(t, http.MethodPost, s.URL+"/api/canvases/c/replicache/pull", mustJSON(t, pullBody("g")), http.Header{"Authorization": {h}})
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		require.Contains(t, body, `"patch":[{"op":"clear"}`)
	}
	// Health and metrics stay open.
	status, _ := s.Do(t, http.MethodGet, "/healthz", nil)
	require.Equal(t, http.StatusOK, status)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestGrantsAreCheckedBeforeExistence(t *testing.T) {
	t.Parallel()
	s, service := authServer(t, nil)
	mustPush(t, service, "c", "gs", M{1, "s", "createNode", node("n", 0, 0)})

	carol := s.As(hsToken(t, "carol", "read:elsewhere", "write:elsewhere"))
	// Without a grant, an existing canvas and a missing one answer alike.
	for _, path := range []string{"c", "missing", "bad%20id"} {
		var answers []string
		for _, r := range []struct{ method, route, body string }{
			{http.MethodGet, "", ""},
			{http.MethodPost, "/replicache/pull", mustJSON(t, pullBody("g"))},
			{http.MethodPost, "/replicache/push", mustJSON(t, pushBody("g", M{1, "x", "createNode", node("m", 0, 0)}))},
			{http.MethodGet, "/events", ""},
		} {
			status, body := carol.Do(t, r.method, "/api/canvases/"+path+r.route, r.body)
			require.Equal(t, http.StatusForbidden, status, path+r.route+": "+string(body))
			answers = append(answers, string(body))
		}
		require.Equal(t, []string{
			`{"error":"token does not grant read on this canvas"}` + "\n",
			`{"error":"token does not grant read on this canvas"}` + "\n",
			`{"error":"token does not grant write on this canvas"}` + "\n",
			`{"error":"token does not grant read on this canvas"}` + "\n",
		}, answers, path)
	}

	// Read without write: pulls but cannot push.
	bob := s.As(hsToken(t, "bob", "read:c"))
	require.Len(t, values(t, bob.Pull(t, "c", "gb", nil)), 2)
	status, body := bob.Push(t, "c", "gb", harness.Mutation{ID: 1, ClientID: "b", Name: "createNode", Args: node("m", 0, 0)})
	require.Equal(t, http.StatusForbidden, status, body)

	// Write without read: pushes but cannot pull.
	writer := s.As(hsToken(t, "wanda", "write:c"))
	mustPush(t, writer, "c", "gw", M{1, "w", "createNode", node("w", 0, 0)})
	status, _ = writer.Do(t, http.MethodPost, "/api/canvases/c/replicache/pull", pullBody("gw"))
	require.Equal(t, http.StatusForbidden, status)

	// With a wildcard grant a missing canvas is a plain 404.
	reader := s.As(hsToken(t, "dave", "read:*"))
	status, _ = reader.Do(t, http.MethodGet, "/api/canvases/missing", nil)
	require.Equal(t, http.StatusNotFound, status)
	status, _ = reader.Do(t, http.MethodGet, "/api/canvases/c", nil)
	require.Equal(t, http.StatusOK, status)

	// Only the granted canvas's state ever changed.
	require.Equal(t, []string{"canvas", "node/n", "node/w"}, keys(values(t, service.Pull(t, "c", "gs2", nil))))
}

func keys(m map[string]map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestCreateNeedsTheCreateGrant(t *testing.T) {
	t.Parallel()
	s, _ := authServer(t, nil)
	noCreate := s.As(hsToken(t, "alice", "read:*", "write:*"))
	status, body := noCreate.Do(t, http.MethodPost, "/api/canvases", map[string]string{"id": "x1"})
	require.Equal(t, http.StatusForbidden, status, string(body))

	creator := s.As(hsToken(t, "erin", "create"))
	status, body = creator.Do(t, http.MethodPost, "/api/canvases", map[string]string{"title": "mine"})
	require.Equal(t, http.StatusCreated, status, string(body))
	// A chosen id needs read on it, else creating "c" would reveal that it
	// exists (and its title): existing and new ids answer alike.
	for _, id := range []string{"c", "fresh"} {
		status, body = creator.Do(t, http.MethodPost, "/api/canvases", map[string]string{"id": id})
		require.Equal(t, http.StatusForbidden, status, id)
		require.JSONEq(t, `{"error":"token does not grant read on this canvas id"}`, string(body))
	}
	creatorOfX := s.As(hsToken(t, "erin", "create", "read:x2"))
	status, _ = creatorOfX.Do(t, http.MethodPost, "/api/canvases", map[string]string{"id": "x2", "title": "t"})
	require.Equal(t, http.StatusCreated, status)
	status, body = creatorOfX.Do(t, http.MethodPost, "/api/canvases", `{"id":`)
	require.Equal(t, http.StatusBadRequest, status, string(body))
	status, _ = s.As(hsToken(t, "service", "*")).Do(t, http.MethodGet, "/api/canvases/fresh", nil)
	require.Equal(t, http.StatusNotFound, status, "a refused create stores nothing")
}

func TestClientGroupBelongsToItsUser(t *testing.T) {
	t.Parallel()
	s, service := authServer(t, nil)
	alice := s.As(hsToken(t, "alice", "read:c", "write:c"))
	bob := s.As(hsToken(t, "bob", "read:c", "write:c"))
	mustPush(t, alice, "c", "ga", M{1, "a1", "createNode", node("n", 0, 0)})
	before := alice.Pull(t, "c", "ga", nil)

	// Bob presents Alice's group: no data, no change.
	p := bob.Pull(t, "c", "ga", nil)
	require.Equal(t, "ClientStateNotFound", p.Error)
	require.Empty(t, p.Patch)
	status, body := bob.Push(t, "c", "ga",
		harness.Mutation{ID: 2, ClientID: "a1", Name: "moveNode", Args: move("n", 9, 9)},
		harness.Mutation{ID: 1, ClientID: "b1", Name: "createNode", Args: node("evil", 0, 0)})
	require.Equal(t, http.StatusOK, status)
	require.JSONEq(t, `{"error":"ClientStateNotFound"}`, body)

	after := alice.Pull(t, "c", "ga", nil)
	require.Equal(t, values(t, before), values(t, after))
	require.Equal(t, map[string]int64{"a1": 1}, after.LastMutationIDChanges)
	require.Equal(t, before.Order(t), after.Order(t))

	// Bob's own group works, and Alice's client goes on.
	mustPush(t, bob, "c", "gb", M{1, "b1", "moveNode", move("n", 1, 1)})
	mustPush(t, alice, "c", "ga", M{2, "a1", "moveNode", move("n", 2, 2)})
	require.Equal(t, map[string]any{"id": "n", "kind": "box", "x": 2.0, "y": 2.0, "w": 200.0, "h": 120.0, "title": "", "body": ""},
		values(t, service.Pull(t, "c", "gs", nil))["node/n"])
}

// openStream opens an events stream and returns its status once the
// headers arrived; the stream is closed when the test ends or by close.
func openStream(t *testing.T, url string, header http.Header) (status int, closeFn func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var once sync.Once
	closeFn = func() {
		once.Do(func() {
			cancel()
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	t.Cleanup(closeFn)
	if resp.StatusCode == http.StatusOK {
		// Wait for the first comment so the server counts the stream.
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, ": connected\n", line)
	}
	return resp.StatusCode, closeFn
}

func TestEventsTokenFromHeaderCookieOrQuery(t *testing.T) {
	t.Parallel()
	s, _ := authServer(t, nil)
	tok := hsToken(t, "alice", "read:c")
	url := s.URL + "/api/canvases/c/events"
	for name, tc := range map[string]struct {
		url    string
		header http.Header
		status int
	}{
		"header":      {url, http.Header{"Authorization": {"Bearer " + tok}}, 200},
		"cookie":      {url, http.Header{"Cookie": {"canvasd_token=" + tok}}, 200},
		"query":       {url + "?access_token=" + tok, nil, 200},
		"none":        {url, nil, 401},
		"bad query":   {url + "?access_token=x" + tok, nil, 401},
		"bad cookie":  {url, http.Header{"Cookie": {"canvasd_token=nope"}}, 401},
		"other token": {url + "?access_token=" + hsToken(t, "bob", "read:d"), nil, 403},
	} {
		status, _ := openStream(t, tc.url, tc.header)
		require.Equal(t, tc.status, status, name)
	}
	// Cookies and query strings are for event streams only: a page on
	// another site cannot push or pull with a cookie it makes the browser send.
	for _, h := range []http.Header{{"Cookie": {"canvasd_token=" + tok}}, nil} {
		q := ""
		if h == nil {
			q = "?access_token=" + tok
		}
		resp, body := request(t, http.MethodPost, s.URL+"/api/canvases/c/replicache/pull"+q, mustJSON(t, pullBody("g")), h)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, body)
	}
}

func TestEventStreamsPerUserAreCapped(t *testing.T) {
	t.Parallel()
	s, _ := authServer(t, func(h *httpapi.Config) { h.MaxStreamsPerUser = 2 })
	url := s.URL + "/api/canvases/c/events"
	alice := http.Header{"Authorization": {hsToken(t, "alice", "read:c")}}
	_, close1 := openStream(t, url, alice)
	status, _ := openStream(t, url, alice)
	require.Equal(t, http.StatusOK, status)
	status, _ = openStream(t, url, alice)
	require.Equal(t, http.StatusTooManyRequests, status)
	status, _ = openStream(t, url, http.Header{"Authorization": {hsToken(t, "bob", "read:c")}})
	require.Equal(t, http.StatusOK, status, "another user has a cap of their own")

	close1()
	require.Eventually(t, func() bool {
		status, closeFn := openStream(t, url, alice)
		closeFn()
		return status == http.StatusOK
	}, 5*time.Second, 20*time.Millisecond, "a closed stream frees its place")
}

func TestRateLimitPerUser(t *testing.T) {
	t.Parallel()
	s, _ := authServer(t, func(h *httpapi.Config) {
		h.PushRate = httpapi.RateLimit{PerSecond: 0.5, Burst: 2}
		h.PullRate = httpapi.RateLimit{PerSecond: 0.5, Burst: 3}
	})
	alice := s.As(hsToken(t, "alice", "read:c", "write:c"))
	mustPush(t, alice, "c", "ga", M{1, "a", "createNode", node("n", 0, 0)})
	mustPush(t, alice, "c", "ga", M{2, "a", "moveNode", move("n", 1, 1)})
	resp, body := request(t, http.MethodPost, s.URL+"/api/canvases/c/replicache/push",
		mustJSON(t, pushBody("ga", M{3, "a", "moveNode", move("n", 2, 2)})), alice.Header)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	require.JSONEq(t, `{"error":"rate limit exceeded, retry later"}`, body)
	retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, retry, 1)
	require.LessOrEqual(t, retry, 2)

	// Pulls have their own bucket, other users their own buckets.
	p := alice.Pull(t, "c", "ga", nil)
	require.Equal(t, map[string]int64{"a": 2}, p.LastMutationIDChanges, "the refused push stored nothing")
	mustPush(t, s.As(hsToken(t, "bob", "write:c")), "c", "gb", M{1, "b", "moveNode", move("n", 5, 5)})
}

func TestRateLimitIsOffWithoutAuth(t *testing.T) {
	t.Parallel()
	s := newServer(t, func(_ *actorsConfig, h *httpConfig) { h.PushRate = httpapi.RateLimit{PerSecond: 0.5, Burst: 1} })
	s.CreateCanvas(t, "c")
	for i := range 5 {
		mustPush(t, s, "c", "g", M{int64(i + 1), "a", "updateCanvas", map[string]any{"title": "t"}})
	}
}

func TestCORSAllowList(t *testing.T) {
	t.Parallel()
	s, _ := authServer(t, func(h *httpapi.Config) { h.CORSOrigins = []string{"https://app.example"} })
	preflight := func(origin string) *http.Response {
		resp, _ := request(t, http.MethodOptions, s.URL+"/api/canvases/c/replicache/push", "", http.Header{
			"Origin":                         {origin},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"authorization,content-type"},
		})
		return resp
	}
	resp := preflight("https://app.example")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "https://app.example", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")

	resp = preflight("https://evil.example")
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

	// The real request carries the header for allowed origins only.
	tok := hsToken(t, "alice", "read:c")
	resp, _ = request(t, http.MethodGet, s.URL+"/api/canvases/c", "", http.Header{"Origin": {"https://app.example"}, "Authorization": {tok}})
	require.Equal(t, "https://app.example", resp.Header.Get("Access-Control-Allow-Origin"))
	resp, _ = request(t, http.MethodGet, s.URL+"/api/canvases/c", "", http.Header{"Origin": {"https://evil.example"}, "Authorization": {tok}})
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))

	// By default no origin is allowed.
	plain, _ := authServer(t, nil)
	resp, _ = request(t, http.MethodOptions, plain.URL+"/api/canvases/c/replicache/push", "", http.Header{
		"Origin": {"https://app.example"}, "Access-Control-Request-Method": {"POST"}})
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}

func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	s, _ := authServer(t, func(h *httpapi.Config) { h.BodyReadTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /api/canvases/c/replicache/pull HTTP/1.1\r\nHost: x\r\nAuthorization: "+
		hsToken(t, "alice", "read:c")+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"profileID\":")
	require.NoError(t, err)
	// The client stalls; the server gives up on the body and answers.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	start := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Less(t, time.Since(start), 5*time.Second)
}

// jwks returns the public JWK Set JSON of keys, by kid.
func jwks(t *testing.T, keys map[string]any) []byte {
	t.Helper()
	set := jwkset.NewMemoryStorage()
	for kid, k := range keys {
		alg := jwkset.AlgRS256
		if _, ok := k.(*ecdsa.PrivateKey); ok {
			alg = jwkset.AlgES256
		}
		j, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg}})
		require.NoError(t, err)
		require.NoError(t, set.KeyWrite(context.Background(), j))
	}
	raw, err := set.JSONPublic(context.Background())
	require.NoError(t, err)
	return raw
}

func TestJWKSFileRS256AndReload(t *testing.T) {
	t.Parallel()
	k1, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, os.WriteFile(path, jwks(t, map[string]any{"k1": k1}), 0o600))
	s := newServer(t, func(_ *actorsConfig, h *httpConfig) {
		h.Auth.JWKSFile = path
		h.Auth.JWKSRefresh = time.Second
	})
	service := s.As(sign(t, jwt.SigningMethodRS256, k1, "k1", claims("service", "*")))
	service.CreateCanvas(t, "c")

	// HS256 is not accepted when only keys are configured, not even with
	// the public key as the secret (algorithm confusion).
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&k1.PublicKey))})
	for _, tok := range []string{
		sign(t, jwt.SigningMethodHS256, pubPEM, "k1", claims("mallory", "*")),
		sign(t, jwt.SigningMethodRS256, k2, "k1", claims("mallory", "*")),
		sign(t, jwt.SigningMethodRS256, k2, "k2", claims("mallory", "*")),
		sign(t, jwt.SigningMethodRS256, k2, "", claims("mallory", "*")),
	} {
		status, _ := s.As(tok).Do(t, http.MethodGet, "/api/canvases/c", nil)
		require.Equal(t, http.StatusUnauthorized, status)
	}
	// Rotation: the file now holds k2; once re-read, k2 tokens pass and k1
	// tokens no longer do.
	next := filepath.Join(filepath.Dir(path), "next.json")
	require.NoError(t, os.WriteFile(next, jwks(t, map[string]any{"k2": k2}), 0o600))
	require.NoError(t, os.Rename(next, path))
	k2Token := sign(t, jwt.SigningMethodRS256, k2, "k2", claims("service", "*"))
	require.Eventually(t, func() bool {
		status, _ := s.As(k2Token).Do(t, http.MethodGet, "/api/canvases/c", nil)
		return status == http.StatusOK
	}, 10*time.Second, 100*time.Millisecond)
	status, _ := service.Do(t, http.MethodGet, "/api/canvases/c", nil)
	require.Equal(t, http.StatusUnauthorized, status, "the removed key is revoked")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestJWKSURLES256WithRotation(t *testing.T) {
	t.Parallel()
	e1, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	e2, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	var mu sync.Mutex
	current := jwks(t, map[string]any{"e1": e1})
	fetches := 0
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(current)
	}))
	t.Cleanup(keys.Close)
	s := newServer(t, func(_ *actorsConfig, h *httpConfig) {
		h.Auth.JWKSURL = keys.URL + "/.well-known/jwks.json"
		h.Auth.JWKSRefresh = time.Hour
	})
	es := func(k *ecdsa.PrivateKey, kid, sub string) *harness.Server {
		return s.As(sign(t, jwt.SigningMethodES256, k, kid, claims(sub, "*")))
	}
	es(e1, "e1", "service").CreateCanvas(t, "c")
	status, _ := es(e2, "e1", "mallory").Do(t, http.MethodGet, "/api/canvases/c", nil)
	require.Equal(t, http.StatusUnauthorized, status, "signed by another key")

	// A new key is published; a token naming it makes canvasd fetch the set
	// again (rate-limited), without waiting for the hourly refresh.
	mu.Lock()
	current = jwks(t, map[string]any{"e1": e1, "e2": e2})
	before := fetches
	mu.Unlock()
	status, body := es(e2, "e2", "service").Do(t, http.MethodGet, "/api/canvases/c", nil)
	require.Equal(t, http.StatusOK, status, string(body))
	mu.Lock()
	require.Equal(t, before+1, fetches)
	mu.Unlock()
	// Unknown kids cannot make canvasd hammer the key server.
	for range 5 {
		status, _ = es(e2, "nope", "mallory").Do(t, http.MethodGet, "/api/canvases/c", nil)
		require.Equal(t, http.StatusUnauthorized, status)
	}
	mu.Lock()
	require.LessOrEqual(t, fetches, before+2)
	mu.Unlock()
}
