package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/canvasd/canvasd/canvas"
)

// AuthConfig configures bearer-token authentication. With no key source
// (no secret, no JWKS) authentication is off and every request is the
// anonymous user "" holding every grant.
type AuthConfig struct {
	// HS256Secret verifies HS256 tokens (at least 32 bytes).
	HS256Secret []byte
	// JWKSFile and JWKSURL name a JSON Web Key Set verifying RS256 and
	// ES256 tokens; at most one of them.
	JWKSFile string
	JWKSURL  string
	// JWKSRefresh is how often the key set is read again. A token naming
	// an unknown key also triggers a refresh, at most once per 10s.
	JWKSRefresh time.Duration
	// Issuer and Audience, when set, must match the token's iss and aud.
	Issuer   string
	Audience string
	// ClockSkew is the leeway for exp, nbf and iat.
	ClockSkew time.Duration
	// CookieName and QueryParam carry the token on the events route only,
	// because EventSource cannot send headers.
	CookieName string
	QueryParam string
}

// DefaultAuthConfig returns authentication off, with the defaults used once
// a key source is set.
func DefaultAuthConfig() AuthConfig {
	return AuthConfig{
		JWKSRefresh: 15 * time.Minute,
		ClockSkew:   30 * time.Second,
		CookieName:  "canvasd_token",
		QueryParam:  "access_token",
	}
}

// Enabled reports whether requests need a token.
func (a AuthConfig) Enabled() bool {
	return len(a.HS256Secret) > 0 || a.JWKSFile != "" || a.JWKSURL != ""
}

// Validate checks a.
func (a AuthConfig) Validate() error {
	switch {
	case len(a.HS256Secret) > 0 && len(bytes.TrimSpace(a.HS256Secret)) == 0:
		return errors.New("the HS256 secret is blank")
	case len(a.HS256Secret) > 0 && len(a.HS256Secret) < 32:
		return errors.New("the HS256 secret must be at least 32 bytes")
	case a.JWKSFile != "" && a.JWKSURL != "":
		return errors.New("give a JWKS file or a JWKS URL, not both")
	case a.ClockSkew < 0 || a.ClockSkew > 5*time.Minute:
		return errors.New("clock skew must be in [0, 5m]")
	case (a.JWKSFile != "" || a.JWKSURL != "") && a.JWKSRefresh < time.Second:
		return errors.New("JWKS refresh must be at least 1s")
	case a.Enabled() && (a.CookieName == "" || a.QueryParam == ""):
		return errors.New("token cookie and query parameter names must be set")
	}
	if a.JWKSURL != "" {
		u, err := url.Parse(a.JWKSURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("JWKS URL %q is not an http(s) URL", a.JWKSURL)
		}
		// Keys fetched in clear text could be swapped on the way.
		if u.Scheme == "http" && !IsLoopback(u.Host) {
			return errors.New("JWKS URL must use https (http only on loopback)")
		}
	}
	return nil
}

// IsLoopback reports whether host (or host:port) names this machine only.
func IsLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Claims are the JWT claims canvasd reads. The user is sub; grants is a
// list of "read:<canvas>", "write:<canvas>" ("*" for every canvas),
// "create", "metrics", or "*" for everything.
type Claims struct {
	jwt.RegisteredClaims
	Grants []string `json:"grants"`
}

// access is what a route needs.
type access int

const (
	accessRead    access = iota // pull, GET canvas
	accessEvents                // read, token also from cookie or query
	accessWrite                 // push
	accessCreate                // POST /api/canvases
	accessMetrics               // GET /metrics on the API's listener
	accessList                  // GET /api/canvases: any caller; the listing shows what it may read
)

// principal is the authenticated caller of a request.
type principal struct {
	user              string
	all, create       bool
	metrics           bool
	readAll, writeAll bool
	read, write       map[string]bool
}

const principalKey = "canvasd.principal"

// newPrincipal reads the grants of user. Unknown grants give nothing (a
// newer issuer may know more kinds); grants naming an impossible canvas
// id give nothing either.
func newPrincipal(user string, grants []string) *principal {
	p := &principal{user: user}
	for _, g := range grants {
		kind, id, scoped := strings.Cut(g, ":")
		switch {
		case g == "*":
			p.all = true
		case g == "create":
			p.create = true
		case g == "metrics":
			p.metrics = true
		case !scoped || (id != "*" && !canvas.ValidID(id)):
		case kind == "read" && id == "*":
			p.readAll = true
		case kind == "write" && id == "*":
			p.writeAll = true
		case kind == "read":
			if p.read == nil {
				p.read = map[string]bool{}
			}
			p.read[id] = true
		case kind == "write":
			if p.write == nil {
				p.write = map[string]bool{}
			}
			p.write[id] = true
		}
	}
	return p
}

func (p *principal) canRead(id string) bool  { return p.all || p.readAll || p.read[id] }
func (p *principal) canWrite(id string) bool { return p.all || p.writeAll || p.write[id] }
func (p *principal) canCreate() bool         { return p.all || p.create }
func (p *principal) canMetrics() bool        { return p.all || p.metrics }

// anonymous is every caller when authentication is off.
var anonymous = &principal{all: true}

// maxTokenBytes bounds a token before any parsing.
const maxTokenBytes = 16 << 10

// authenticator verifies tokens.
type authenticator struct {
	cfg    AuthConfig
	parser *jwt.Parser
	jwks   func(*jwt.Token) (any, error)
	cancel context.CancelFunc
}

func newAuthenticator(cfg AuthConfig, log *zap.Logger) (*authenticator, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	a := &authenticator{cfg: cfg}
	var methods []string
	if len(cfg.HS256Secret) > 0 {
		methods = append(methods, "HS256")
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	switch {
	case cfg.JWKSFile != "":
		f := &jwksFile{path: cfg.JWKSFile, every: cfg.JWKSRefresh, log: log}
		if err := f.load(); err != nil {
			cancel()
			return nil, err
		}
		a.jwks = f.keyfunc
	case cfg.JWKSURL != "":
		noStartWithoutKeys := false
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
			// The first fetch must succeed: a server that starts without
			// keys answers every request 401 until a refresh works, and
			// hides a wrong URL until then.
			NoErrorReturnFirstHTTPReq: &noStartWithoutKeys,
			HTTPTimeout:               10 * time.Second,
			RefreshInterval:           cfg.JWKSRefresh,
			// jwkset's own unknown-kid limiter makes requests wait, and its
			// wait bound also bounds the fetch: unknownKID gates instead.
			RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
			RateLimitWaitMax:  10 * time.Second,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(_ context.Context, err error) {
					log.Warn("JWKS refresh failed", zap.String("url", u), zap.Error(err))
				}
			},
		})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("JWKS URL: %w", err)
		}
		if n, err := usableKeys(ctx, kf); err != nil || n == 0 {
			cancel()
			return nil, fmt.Errorf("JWKS URL %s yields no usable RS256 or ES256 key: refusing to start without keys", cfg.JWKSURL)
		}
		u := &unknownKID{kf: kf, ctx: ctx, limit: rate.NewLimiter(rate.Every(10*time.Second), 1)}
		a.jwks = u.keyfunc
	}
	if a.jwks != nil {
		methods = append(methods, "RS256", "ES256")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithLeeway(cfg.ClockSkew),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

func (a *authenticator) close() {
	if a != nil && a.cancel != nil {
		a.cancel()
	}
}

// keyFor picks the key by algorithm, so an HS256 token is never checked
// against a public key taken as a MAC secret, nor the reverse.
func (a *authenticator) keyFor(t *jwt.Token) (any, error) {
	if t.Method.Alg() == "HS256" {
		return a.cfg.HS256Secret, nil
	}
	return a.jwks(t)
}

// verify checks a token and returns its principal.
func (a *authenticator) verify(raw string) (*principal, error) {
	if len(raw) > maxTokenBytes {
		return nil, errors.New("token too large")
	}
	var claims Claims
	if _, err := a.parser.ParseWithClaims(raw, &claims, a.keyFor); err != nil {
		return nil, err
	}
	if !validUser(claims.Subject) {
		return nil, errors.New("sub must be 1 to 256 printable characters")
	}
	return newPrincipal(claims.Subject, claims.Grants), nil
}

// validUser accepts subjects PostgreSQL text and logs can hold.
func validUser(sub string) bool {
	if sub == "" || len(sub) > 256 || !utf8.ValidString(sub) {
		return false
	}
	for _, r := range sub {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// unknownKID lets a token naming a key the cached set lacks refetch the
// set at most once per 10s, without making any request wait: past the
// limit such a token is refused at once.
type unknownKID struct {
	kf    keyfunc.Keyfunc
	ctx   context.Context
	limit *rate.Limiter
}

func (u *unknownKID) keyfunc(t *jwt.Token) (any, error) {
	kid, ok := t.Header["kid"].(string)
	if !ok {
		return u.kf.Keyfunc(t) // tried against every cached key, no fetch
	}
	keys, err := u.kf.Storage().KeyReadAll(u.ctx)
	if err != nil {
		return nil, err
	}
	known := slices.ContainsFunc(keys, func(k jwkset.JWK) bool { return k.Marshal().KID == kid })
	if !known && !u.limit.Allow() {
		return nil, errors.New("unknown key id")
	}
	return u.kf.Keyfunc(t)
}

// jwksFile is a key set read from a file, read again when the file
// changes (checked at most once per refresh period).
type jwksFile struct {
	path  string
	every time.Duration
	log   *zap.Logger

	mu      sync.Mutex
	checked time.Time
	modTime time.Time
	size    int64
	kf      atomic.Value // keyfunc.Keyfunc
}

func (f *jwksFile) load() error {
	st, err := os.Stat(f.path)
	if err != nil {
		return fmt.Errorf("JWKS file: %w", err)
	}
	raw, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("JWKS file: %w", err)
	}
	kf, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		return fmt.Errorf("JWKS file %s: %w", f.path, err)
	}
	if n, err := usableKeys(context.Background(), kf); err != nil || n == 0 {
		return fmt.Errorf("JWKS file %s holds no usable RS256 or ES256 key", f.path)
	}
	f.kf.Store(kf)
	f.modTime, f.size, f.checked = st.ModTime(), st.Size(), time.Now()
	return nil
}

// usableKeys counts the keys of a set that can verify RS256 or ES256
// signatures.
func usableKeys(ctx context.Context, kf keyfunc.Keyfunc) (int, error) {
	keys, err := kf.Storage().KeyReadAll(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		m := k.Marshal()
		if m.USE == jwkset.UseEnc {
			continue
		}
		if m.KTY == jwkset.KtyRSA || (m.KTY == jwkset.KtyEC && m.CRV == jwkset.CrvP256) {
			n++
		}
	}
	return n, nil
}

func (f *jwksFile) keyfunc(t *jwt.Token) (any, error) {
	if f.mu.TryLock() {
		if time.Since(f.checked) >= f.every {
			f.checked = time.Now()
			if st, err := os.Stat(f.path); err == nil && (!st.ModTime().Equal(f.modTime) || st.Size() != f.size) {
				if err := f.load(); err != nil {
					// Keep the keys we have; a half-written file is not a revocation.
					f.log.Warn("JWKS file reload failed", zap.Error(err))
				}
			}
		}
		f.mu.Unlock()
	}
	return f.kf.Load().(keyfunc.Keyfunc).Keyfunc(t)
}

// bearerToken finds the token of a request: the Authorization header
// (with or without "Bearer ", as Replicache sends its auth verbatim), and
// for event streams also the cookie or query parameter.
func bearerToken(r *http.Request, cfg AuthConfig, stream bool) string {
	if h := strings.TrimSpace(r.Header.Get(echo.HeaderAuthorization)); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:])
		}
		return h
	}
	if !stream {
		return ""
	}
	if ck, err := r.Cookie(cfg.CookieName); err == nil && ck.Value != "" {
		return ck.Value
	}
	return r.URL.Query().Get(cfg.QueryParam)
}

// unauthorized is a 401 telling the client to get a new token.
func unauthorized(c echo.Context, msg string, invalid bool) error {
	v := `Bearer realm="canvasd"`
	if invalid {
		v += `, error="invalid_token"`
	}
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, v)
	return &apiError{status: http.StatusUnauthorized, message: msg}
}

func forbidden(msg string) error { return &apiError{status: http.StatusForbidden, message: msg} }

// authorize authenticates the caller and checks the grant a route needs,
// before the handler runs: a caller without the grant gets 403 whether or
// not the canvas exists.
func (s *Server) authorize(need access) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := anonymous
			if s.auth != nil {
				raw := bearerToken(c.Request(), s.cfg.Auth, need == accessEvents)
				if raw == "" {
					return unauthorized(c, "missing bearer token", false)
				}
				var err error
				if p, err = s.auth.verify(raw); err != nil {
					s.reqLog(c).Debug("token rejected", zap.String("path", c.Request().URL.Path), zap.String("reason", tokenProblem(err)))
					return unauthorized(c, tokenProblem(err), true)
				}
			}
			c.Set(principalKey, p)
			switch need {
			case accessRead, accessEvents:
				if !p.canRead(c.Param("canvasID")) {
					return forbidden("token does not grant read on this canvas")
				}
			case accessWrite:
				if !p.canWrite(c.Param("canvasID")) {
					return forbidden("token does not grant write on this canvas")
				}
			case accessMetrics:
				if !p.canMetrics() {
					return forbidden("token does not grant metrics")
				}
			case accessCreate:
				// The id in the body is checked by the handler, on the body
				// it decodes: one decode, after the rate limit.
				if !p.canCreate() {
					return forbidden("token does not grant creating canvases")
				}
			}
			return next(c)
		}
	}
}

// tokenProblem names what is wrong with a token, without echoing it.
func tokenProblem(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token has the wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token has the wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token lacks a required claim"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	}
	return "invalid token"
}

// principalOf returns the caller set by authorize.
func principalOf(c echo.Context) *principal {
	if p, ok := c.Get(principalKey).(*principal); ok {
		return p
	}
	return anonymous
}
