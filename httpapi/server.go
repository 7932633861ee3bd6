// Package httpapi serves canvasd's HTTP contract with echo: canvases, the
// Replicache push and pull endpoints, the SSE poke stream, health and
// metrics.
package httpapi

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/canvas"
	"github.com/canvasd/canvasd/canvas/store"
	"github.com/canvasd/canvasd/httpapi/web"
)

// Config tunes the HTTP layer.
type Config struct {
	// MaxBodyBytes bounds a request body (413 past it).
	MaxBodyBytes int64
	// MaxMutationsPerPush bounds the mutations of one push (400 past it).
	MaxMutationsPerPush int
	// PingInterval is the SSE heartbeat period.
	PingInterval time.Duration
	// RetryAfter is the Retry-After sent with 503s.
	RetryAfter time.Duration
	// Limits apply to canvas titles given at creation.
	Limits canvas.Limits
	// Auth configures bearer tokens; without a key source it is off.
	Auth AuthConfig
	// CORSOrigins may call the API from a browser (none by default).
	CORSOrigins []string
	// PushRate bounds each user's pushes and canvas creations, PullRate
	// their pulls and reads; both need authentication (per user).
	PushRate, PullRate RateLimit
	// PresenceRate bounds the presence posts of each client of a canvas
	// (on with or without authentication).
	PresenceRate RateLimit
	// MaxStreamsPerUser bounds the SSE streams one user holds open.
	MaxStreamsPerUser int
	// BodyReadTimeout bounds reading a request body.
	BodyReadTimeout time.Duration
	// Registry receives the HTTP layer's metrics and is what /metrics
	// serves: give the actor system the same one. nil keeps a registry of
	// its own (never Prometheus's global default).
	Registry *prometheus.Registry
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:        8 << 20,
		MaxMutationsPerPush: 1000,
		PingInterval:        15 * time.Second,
		RetryAfter:          time.Second,
		Limits:              canvas.DefaultLimits(),
		Auth:                DefaultAuthConfig(),
		PushRate:            RateLimit{PerSecond: 50, Burst: 100},
		PullRate:            RateLimit{PerSecond: 50, Burst: 100},
		PresenceRate:        RateLimit{PerSecond: 60, Burst: 120},
		MaxStreamsPerUser:   32,
		BodyReadTimeout:     30 * time.Second,
	}
}

// Validate checks c.
func (c Config) Validate() error {
	switch {
	case c.MaxBodyBytes < 1024:
		return errors.New("max body bytes must be at least 1024")
	case c.MaxMutationsPerPush < 1:
		return errors.New("max mutations per push must be at least 1")
	case c.PingInterval <= 0 || c.PingInterval > 15*time.Second:
		return errors.New("ping interval must be in (0, 15s]")
	case c.RetryAfter < time.Second:
		return errors.New("retry-after must be at least 1s")
	case c.MaxStreamsPerUser < 0:
		return errors.New("max streams per user must be >= 0 (0: no bound)")
	case c.BodyReadTimeout < 0:
		return errors.New("body read timeout must be >= 0 (0: no bound)")
	}
	return errors.Join(c.Auth.Validate(), c.PushRate.validate("push"), c.PullRate.validate("pull"), c.PresenceRate.validate("presence"))
}

// Server is the HTTP API.
type Server struct {
	cfg   Config
	store *store.Store
	sys   *actors.System
	log   *zap.Logger
	ready func() (status string, ok bool)
	// draining is set once shutdown begins: /readyz answers 503 so load
	// balancers move traffic away while requests are still served.
	draining atomic.Bool
	// drained is closed when the drain begins, after drainStart and
	// drainPeriod are set: event streams then move on during the period.
	drained     chan struct{}
	drainOnce   sync.Once
	drainStart  time.Time
	drainPeriod time.Duration
	echo        *echo.Echo
	meters      *httpMetrics
	scrape      echo.HandlerFunc // serves the registry
	auth        *authenticator   // nil: authentication off
	// presenceRate bounds each client's presence posts.
	presenceRate *limiter
}

// New builds the API. ready answers /readyz from memory: whether start-up
// has finished and the database is reachable, with a short status saying
// why not; it must not wait on the database.
func New(cfg Config, st *store.Store, sys *actors.System, log *zap.Logger, ready func() (status string, ok bool)) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	auth, err := newAuthenticator(cfg.Auth, log)
	if err != nil {
		return nil, err
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	metrics, err := newHTTPMetrics(reg, st)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	s := &Server{cfg: cfg, store: st, sys: sys, log: log, ready: ready, echo: echo.New(), auth: auth, drained: make(chan struct{}), meters: metrics, scrape: metricsHandler(reg)}
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Pre(s.requestID)    // first, so every answer carries the id
	e.Pre(s.guardRequest) // every route, unknown ones too, before authentication
	e.Use(s.logRequests)  // logs what Recover made of a panic too
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		// Through zap, with the request's id, as one JSON line.
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.reqLog(c).Error("panic serving request", zap.Error(err), zap.ByteString("stack", stack))
			return &loggedError{err}
		},
	}))
	if len(cfg.CORSOrigins) > 0 {
		e.Use(cors(cfg.CORSOrigins))
	}
	pushes, pulls := newLimiter(cfg.PushRate), newLimiter(cfg.PullRate)
	s.presenceRate = newLimiter(cfg.PresenceRate)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	// With authentication on, metrics on the API's listener need the
	// "metrics" grant; MetricsHandler serves them on a listener of their own.
	e.GET("/metrics", s.metrics, s.authorize(accessMetrics))
	web.Mount(e) // the demo canvas app: /, /c/:canvasID, /assets/
	api := e.Group("/api")
	// Every grant is checked before the handler, so a caller without one
	// learns nothing about the canvas, not even whether it exists.
	api.POST("/canvases", s.createCanvas, s.authorize(accessCreate), s.rateLimit(pushes))
	api.GET("/canvases/:canvasID", s.getCanvas, s.authorize(accessRead), s.rateLimit(pulls))
	api.POST("/canvases/:canvasID/replicache/push", s.push, s.observe(metrics.pushSeconds, metrics.pushOutcomes, nil), s.authorize(accessWrite), s.rateLimit(pushes))
	// Initial pulls of large canvases are big and compress well; small
	// patches are not worth the CPU.
	gzip := middleware.GzipWithConfig(middleware.GzipConfig{Level: 1, MinLength: 4096})
	api.POST("/canvases/:canvasID/replicache/pull", s.pull, s.observe(metrics.pullSeconds, nil, metrics.pullBytes), s.authorize(accessRead), s.rateLimit(pulls), gzip)
	api.GET("/canvases/:canvasID/events", s.events, s.authorize(accessEvents), s.limitStreams(newStreams(cfg.MaxStreamsPerUser)))
	api.GET("/canvases", s.listCanvases, s.authorize(accessList), s.rateLimit(pulls))
	api.DELETE("/canvases/:canvasID", s.deleteCanvas, s.authorize(accessWrite), s.rateLimit(pushes))
	// Presence is rate limited per client (in the handler), with or
	// without authentication.
	api.POST("/canvases/:canvasID/presence", s.presence, s.authorize(accessRead))
	return s, nil
}

// MetricsHandler serves /metrics without a token, for a listener apart
// from the API's (one only the scraper can reach).
func (s *Server) MetricsHandler() http.Handler {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Pre(s.guardRequest)
	e.Use(middleware.Recover())
	e.GET("/metrics", s.metrics)
	return e
}

// Close stops the background work of the API (JWKS refreshes). Safe to
// call twice.
func (s *Server) Close() { s.auth.close() }

// AuthEnabled reports whether requests need a token.
func (s *Server) AuthEnabled() bool { return s.auth != nil }

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// logRequests logs each request at debug level, without its query string
// (which may carry credentials).
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			// Answer the error here, so the status logged is the one sent.
			c.Error(err)
		}
		if ce := s.log.Check(zap.DebugLevel, "request"); ce != nil {
			status := c.Response().Status
			id, _ := c.Get(requestIDKey).(string)
			ce.Write(zap.String("request_id", id), zap.String("method", c.Request().Method), zap.String("path", c.Request().URL.Path),
				zap.Int("status", status), zap.Duration("took", time.Since(start)))
		}
		return nil
	}
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// Drain makes /readyz answer 503 from now on; everything else is still
// served. Each event stream is ended at a random moment of the second half
// of period, once the load balancer has seen /readyz fail, with a short
// retry hint: its client reconnects to another instance while this one
// still serves, instead of losing its pokes for seconds when the listener
// closes. Safe to call twice.
func (s *Server) Drain(period time.Duration) {
	s.drainOnce.Do(func() {
		s.draining.Store(true)
		s.drainStart, s.drainPeriod = time.Now(), period
		close(s.drained)
	})
}

// drainLeave returns when an event stream should end during the drain (a
// nil channel if the drain has no period), with its timer to stop.
func (s *Server) drainLeave() (<-chan time.Time, *time.Timer) {
	if s.drainPeriod <= 0 {
		return nil, nil
	}
	spread := max(s.drainPeriod*2/5, time.Millisecond)
	at := s.drainStart.Add(s.drainPeriod/2 + rand.N(spread))
	t := time.NewTimer(time.Until(at))
	return t.C, t
}

func (s *Server) readyz(c echo.Context) error {
	if s.draining.Load() {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "draining"})
	}
	status, ok := s.ready()
	if ok && !s.sys.Ready() {
		status, ok = "database notifications reconnecting", false
	}
	if !ok {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": status})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
