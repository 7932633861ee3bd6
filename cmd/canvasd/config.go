package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/canvas/store"
	"github.com/canvasd/canvasd/httpapi"
)

// config is every setting of the server. Each flag has an environment twin;
// a flag given on the command line wins over its variable.
type config struct {
	Addr            string
	DatabaseURL     string
	Versioning      string
	Batching        string
	Notify          string
	NotifyChannel   string
	DebugAddr       string
	MetricsAddr     string
	LogFormat       string
	LogLevel        string
	DBMaxConns      int
	ShutdownTimeout time.Duration
	DrainPeriod     time.Duration
	// Migrate applies the schema migrations at start-up; without it the
	// server only checks that they were applied (canvasd migrate up).
	Migrate bool

	// Security settings: see SECURITY in the README.
	JWTSecret         string
	JWTSecretFile     string
	InsecureNoAuth    bool
	CORSOrigins       string
	ReadHeaderTimeout time.Duration
	HTTPIdleTimeout   time.Duration
	// Which key sources were given (flag or environment, even empty): a
	// source given but yielding no key stops the server.
	keySourcesGiven map[string]bool

	Actors actors.Config
	HTTP   httpapi.Config
}

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func parseConfig(args []string) (*config, error) {
	cfg := &config{Actors: actors.DefaultConfig(), HTTP: httpapi.DefaultConfig()}
	fs := flag.NewFlagSet("canvasd", flag.ContinueOnError)
	fs.Usage = func() { printUsage(fs.Output(), fs) }
	var envErrs []error
	str := func(p *string, name, env, def, usage string) {
		fs.StringVar(p, name, envOr(env, def), usage+" (env "+env+")")
	}
	num := func(p *int, name, env string, def int, usage string) {
		v, err := envInt(env, def)
		envErrs = append(envErrs, err)
		fs.IntVar(p, name, v, usage+" (env "+env+")")
	}
	dur := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		v, err := envDuration(env, def)
		envErrs = append(envErrs, err)
		fs.DurationVar(p, name, v, usage+" (env "+env+")")
	}
	str(&cfg.Addr, "addr", "CANVASD_ADDR", "127.0.0.1:8080", "address to listen on")
	var dbURL secretFlag
	secretVar(fs, &dbURL, "database-url", "DATABASE_URL", defaultDatabaseURL, "PostgreSQL connection URL", showRedactedURL)
	str(&cfg.Versioning, "versioning", "CANVASD_VERSIONING", "canvas", "versioning: canvas (one version per canvas) or global (one version row for all, the baseline)")
	str(&cfg.Batching, "batching", "CANVASD_BATCHING", "auto", "commit the pushes waiting on a canvas in one transaction: on, off, or auto (on for canvas, off for global)")
	str(&cfg.Notify, "notify", "CANVASD_NOTIFY", "auto", "cross-instance pokes: coalesced (pg_notify outside writes), in-tx (inside every write), or auto (coalesced for canvas, in-tx for global)")
	str(&cfg.NotifyChannel, "notify-channel", "CANVASD_NOTIFY_CHANNEL", cfg.Actors.NotifyChannel, "PostgreSQL channel for pokes between instances")
	str(&cfg.DebugAddr, "debug-addr", "CANVASD_DEBUG_ADDR", "", "loopback address for pprof (/debug/pprof/); empty: off")
	str(&cfg.MetricsAddr, "metrics-addr", "CANVASD_METRICS_ADDR", "", "address serving /metrics without a token (empty: /metrics only on --addr, needing the \"metrics\" grant when auth is on)")
	str(&cfg.LogFormat, "log-format", "CANVASD_LOG_FORMAT", "json", "log format: json or console")
	str(&cfg.LogLevel, "log-level", "CANVASD_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	num(&cfg.DBMaxConns, "db-max-conns", "CANVASD_DB_MAX_CONNS", 16, "database connections in the pool")
	dur(&cfg.DrainPeriod, "drain-period", "CANVASD_DRAIN_PERIOD", 5*time.Second, "on SIGTERM, how long /readyz answers 503 while requests are still served, before the listener closes (0: close at once)")
	dur(&cfg.ShutdownTimeout, "shutdown-timeout", "CANVASD_SHUTDOWN_TIMEOUT", 15*time.Second, "how long shutdown waits for in-flight requests")
	dur(&cfg.Actors.PokeWindow, "poke-window", "CANVASD_POKE_WINDOW", cfg.Actors.PokeWindow, "longest a poke is held back to coalesce commits (the window grows by 1ms per subscriber up to this)")
	dur(&cfg.Actors.LockTimeout, "lock-timeout", "CANVASD_LOCK_TIMEOUT", cfg.Actors.LockTimeout, "longest a push waits for its canvas row while another session holds it locked, then 503 (0: up to the write timeout)")
	dur(&cfg.Actors.VersionCheck, "version-check", "CANVASD_VERSION_CHECK", cfg.Actors.VersionCheck, "how often the versions of canvases with local event streams are read, to poke for commits whose notification was lost (0: never)")
	dur(&cfg.Actors.IdleTimeout, "idle-timeout", "CANVASD_IDLE_TIMEOUT", cfg.Actors.IdleTimeout, "how long an unused canvas stays in memory")
	dur(&cfg.Actors.ClientGroupTTL, "client-group-ttl", "CANVASD_CLIENT_GROUP_TTL", cfg.Actors.ClientGroupTTL, "client groups unused this long are deleted with their clients (longer than the client's own 14-day purge)")
	dur(&cfg.Actors.TombstoneTTL, "tombstone-ttl", "CANVASD_TOMBSTONE_TTL", cfg.Actors.TombstoneTTL, "deleted nodes and edges are purged after this long; older cookies get a reset patch")
	dur(&cfg.Actors.GCInterval, "gc-interval", "CANVASD_GC_INTERVAL", cfg.Actors.GCInterval, "how often idle client groups and old tombstones are collected, on one instance at a time (0: never)")
	dur(&cfg.Actors.PresenceTTL, "presence-ttl", "CANVASD_PRESENCE_TTL", cfg.Actors.PresenceTTL, "how long a client's presence lasts without a refresh")
	num(&cfg.Actors.MaxQueuedPushes, "max-queued-pushes", "CANVASD_MAX_QUEUED_PUSHES", cfg.Actors.MaxQueuedPushes, "pushes waiting on one canvas before 503")
	num(&cfg.Actors.MaxBatchPushes, "max-batch-pushes", "CANVASD_MAX_BATCH_PUSHES", cfg.Actors.MaxBatchPushes, "pushes committed in one transaction at most")
	num(&cfg.HTTP.MaxMutationsPerPush, "max-mutations-per-push", "CANVASD_MAX_MUTATIONS_PER_PUSH", cfg.HTTP.MaxMutationsPerPush, "mutations in one push at most")
	var maxCanvasBytes int
	num(&maxCanvasBytes, "max-canvas-bytes", "CANVASD_MAX_CANVAS_BYTES", int(cfg.Actors.Limits.MaxBytes),
		"byte budget of one canvas's content (nodes, edges, their text); a mutation growing a canvas past it is refused (0: none; see the README for sizing)")
	var maxBody int
	num(&maxBody, "max-body-bytes", "CANVASD_MAX_BODY_BYTES", int(cfg.HTTP.MaxBodyBytes), "request body size limit")
	dur(&cfg.HTTP.PingInterval, "sse-ping", "CANVASD_SSE_PING", cfg.HTTP.PingInterval, "SSE heartbeat period (at most 15s)")
	flt := func(p *float64, name, env string, def float64, usage string) {
		v, err := envFloat(env, def)
		envErrs = append(envErrs, err)
		fs.Float64Var(p, name, v, usage+" (env "+env+")")
	}
	boolean := func(p *bool, name, env string, usage string) {
		v, err := envBool(env)
		envErrs = append(envErrs, err)
		fs.BoolVar(p, name, v, usage+" (env "+env+")")
	}
	auth := &cfg.HTTP.Auth
	var jwtSecret secretFlag
	secretVar(fs, &jwtSecret, "jwt-secret", "CANVASD_JWT_SECRET", "", "HS256 secret verifying bearer tokens, at least 32 bytes (prefer the env or a file: flags show in ps)", showSet)
	str(&cfg.JWTSecretFile, "jwt-secret-file", "CANVASD_JWT_SECRET_FILE", "", "file holding the HS256 secret")
	str(&auth.JWKSFile, "jwks-file", "CANVASD_JWKS_FILE", "", "JSON Web Key Set file verifying RS256/ES256 tokens (re-read when it changes)")
	var jwksURL secretFlag
	secretVar(fs, &jwksURL, "jwks-url", "CANVASD_JWKS_URL", "", "JSON Web Key Set URL verifying RS256/ES256 tokens (https; cached and refreshed)", showRedactedURL)
	dur(&auth.JWKSRefresh, "jwks-refresh", "CANVASD_JWKS_REFRESH", auth.JWKSRefresh, "how often the JWKS is read again")
	str(&auth.Issuer, "jwt-issuer", "CANVASD_JWT_ISSUER", "", "required token iss (empty: not checked)")
	str(&auth.Audience, "jwt-audience", "CANVASD_JWT_AUDIENCE", "", "required token aud (empty: not checked)")
	dur(&auth.ClockSkew, "jwt-clock-skew", "CANVASD_JWT_CLOCK_SKEW", auth.ClockSkew, "leeway for token exp, nbf and iat")
	boolean(&cfg.InsecureNoAuth, "insecure-no-auth", "CANVASD_INSECURE_NO_AUTH", "allow listening beyond loopback without authentication: anyone reaching the port reads and writes every canvas")
	str(&cfg.CORSOrigins, "cors-origins", "CANVASD_CORS_ORIGINS", "", "comma-separated origins allowed to call the API from browsers (empty: same origin only)")
	flt(&cfg.HTTP.PushRate.PerSecond, "rate-push", "CANVASD_RATE_PUSH", cfg.HTTP.PushRate.PerSecond, "pushes and creations per second per user (0: unlimited; needs auth)")
	num(&cfg.HTTP.PushRate.Burst, "rate-push-burst", "CANVASD_RATE_PUSH_BURST", cfg.HTTP.PushRate.Burst, "burst of pushes per user")
	flt(&cfg.HTTP.PullRate.PerSecond, "rate-pull", "CANVASD_RATE_PULL", cfg.HTTP.PullRate.PerSecond, "pulls and reads per second per user (0: unlimited; needs auth)")
	num(&cfg.HTTP.PullRate.Burst, "rate-pull-burst", "CANVASD_RATE_PULL_BURST", cfg.HTTP.PullRate.Burst, "burst of pulls per user")
	flt(&cfg.HTTP.PresenceRate.PerSecond, "rate-presence", "CANVASD_RATE_PRESENCE", cfg.HTTP.PresenceRate.PerSecond, "presence posts per second per client (0: unlimited; on without auth too)")
	num(&cfg.HTTP.PresenceRate.Burst, "rate-presence-burst", "CANVASD_RATE_PRESENCE_BURST", cfg.HTTP.PresenceRate.Burst, "burst of presence posts per client")
	num(&cfg.HTTP.MaxStreamsPerUser, "max-sse-per-user", "CANVASD_MAX_SSE_PER_USER", cfg.HTTP.MaxStreamsPerUser, "open event streams per user (0: unlimited; needs auth)")
	dur(&cfg.HTTP.BodyReadTimeout, "body-read-timeout", "CANVASD_BODY_READ_TIMEOUT", cfg.HTTP.BodyReadTimeout, "time a client may take to send a request body")
	dur(&cfg.ReadHeaderTimeout, "read-header-timeout", "CANVASD_READ_HEADER_TIMEOUT", 10*time.Second, "time a client may take to send request headers")
	dur(&cfg.HTTPIdleTimeout, "http-idle-timeout", "CANVASD_HTTP_IDLE_TIMEOUT", 2*time.Minute, "how long an idle keep-alive connection stays open")
	migrate, err := envBoolDefault("CANVASD_MIGRATE", true)
	envErrs = append(envErrs, err)
	fs.BoolVar(&cfg.Migrate, "migrate", migrate, "apply the schema migrations at start-up; false: only check them and stay unready until canvasd migrate up has run (env CANVASD_MIGRATE)")
	if err := errors.Join(envErrs...); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.HTTP.MaxBodyBytes = int64(maxBody)
	if maxCanvasBytes < 0 {
		return nil, errors.New("max-canvas-bytes must be >= 0 (0: no budget)")
	}
	cfg.Actors.Limits.MaxBytes = int64(maxCanvasBytes)
	cfg.HTTP.Limits.MaxBytes = int64(maxCanvasBytes)
	cfg.DatabaseURL = dbURL.value
	if strings.TrimSpace(cfg.DatabaseURL) == "" {
		cfg.DatabaseURL = defaultDatabaseURL
	}
	cfg.JWTSecret, auth.JWKSURL = jwtSecret.value, jwksURL.value
	cfg.keySourcesGiven = map[string]bool{
		"jwt-secret":      jwtSecret.given,
		"jwt-secret-file": givenFlag(fs, "jwt-secret-file", "CANVASD_JWT_SECRET_FILE"),
		"jwks-file":       givenFlag(fs, "jwks-file", "CANVASD_JWKS_FILE"),
		"jwks-url":        jwksURL.given,
	}
	cfg.Actors.NotifyChannel = cfg.NotifyChannel
	return cfg, cfg.resolve()
}

// resolve fills the derived settings and validates everything.
func (c *config) resolve() error {
	switch c.Versioning {
	case "canvas":
		c.Actors.Versioning = store.PerCanvas
	case "global":
		c.Actors.Versioning = store.Global
	default:
		return fmt.Errorf("versioning must be canvas or global, not %q", c.Versioning)
	}
	global := c.Actors.Versioning == store.Global
	switch c.Batching {
	case "auto":
		c.Actors.Batching = !global
	case "on", "true":
		c.Actors.Batching = true
	case "off", "false":
		c.Actors.Batching = false
	default:
		return fmt.Errorf("batching must be on, off or auto, not %q", c.Batching)
	}
	switch c.Notify {
	case "auto":
		c.Actors.Notify = actors.NotifyCoalesced
		if global {
			c.Actors.Notify = actors.NotifyInTx
		}
	case "coalesced":
		c.Actors.Notify = actors.NotifyCoalesced
	case "in-tx":
		c.Actors.Notify = actors.NotifyInTx
	default:
		return fmt.Errorf("notify must be coalesced, in-tx or auto, not %q", c.Notify)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		return fmt.Errorf("log format must be json or console, not %q", c.LogFormat)
	}
	if c.DBMaxConns < 2 {
		return errors.New("db-max-conns must be at least 2 (one is kept for LISTEN)")
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("shutdown-timeout must be positive")
	}
	if c.DrainPeriod < 0 {
		return errors.New("drain-period must not be negative (0: no drain)")
	}
	if c.ReadHeaderTimeout <= 0 || c.HTTPIdleTimeout <= 0 {
		return errors.New("read-header-timeout and http-idle-timeout must be positive")
	}
	if err := c.resolveAuth(); err != nil {
		return err
	}
	return errors.Join(c.Actors.Validate(), c.HTTP.Validate())
}

// resolveAuth reads the secret and applies the loopback rule: without
// authentication canvasd listens on loopback only, unless told otherwise.
func (c *config) resolveAuth() error {
	// Fail closed: a key source that was given but yields no key is a
	// mistake (an unset variable in a template, an empty secret file), not
	// a request to turn authentication off.
	given := c.keySourcesGiven
	for _, k := range []struct{ name, value string }{
		{"jwt-secret", c.JWTSecret}, {"jwt-secret-file", c.JWTSecretFile},
		{"jwks-file", c.HTTP.Auth.JWKSFile}, {"jwks-url", c.HTTP.Auth.JWKSURL},
	} {
		if given[k.name] && strings.TrimSpace(k.value) == "" {
			return fmt.Errorf("%s is given but empty: refusing to start without its key "+
				"(unset it, and its environment variable, to run without authentication on loopback)", k.name)
		}
	}
	switch {
	case given["jwt-secret"] && given["jwt-secret-file"]:
		return errors.New("give jwt-secret or jwt-secret-file, not both")
	case given["jwt-secret-file"]:
		b, err := os.ReadFile(c.JWTSecretFile)
		if err != nil {
			return fmt.Errorf("jwt-secret-file: %w", err)
		}
		c.HTTP.Auth.HS256Secret = bytes.TrimSpace(b)
		if len(c.HTTP.Auth.HS256Secret) == 0 {
			return fmt.Errorf("jwt-secret-file %s is empty or blank: refusing to start without its key", c.JWTSecretFile)
		}
	case given["jwt-secret"]:
		c.HTTP.Auth.HS256Secret = []byte(c.JWTSecret)
	}
	for o := range strings.SplitSeq(c.CORSOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.HTTP.CORSOrigins = append(c.HTTP.CORSOrigins, o)
		}
	}
	enabled := c.HTTP.Auth.Enabled()
	switch {
	case enabled && c.InsecureNoAuth:
		return errors.New("insecure-no-auth contradicts the token settings given: drop one")
	case !enabled && !c.InsecureNoAuth && !httpapi.IsLoopback(c.Addr):
		return fmt.Errorf("no authentication configured, so canvasd listens on loopback only, not on %q: "+
			"set --jwt-secret, --jwks-file or --jwks-url, or accept open access with --insecure-no-auth", c.Addr)
	case c.DebugAddr != "" && !httpapi.IsLoopback(c.DebugAddr):
		// pprof shows the command line (secrets given as flags included)
		// and can stall the process: never beyond this machine.
		return fmt.Errorf("debug-addr must be a loopback address, not %q", c.DebugAddr)
	}
	return nil
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && strings.TrimSpace(v) != "" {
		return v
	}
	return def
}

func envInt(name string, def int) (int, error) {
	v := envOr(name, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return def, fmt.Errorf("%s: %q is not a whole number", name, v)
	}
	return n, nil
}

func envFloat(name string, def float64) (float64, error) {
	v := envOr(name, "")
	if v == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return def, fmt.Errorf("%s: %q is not a number", name, v)
	}
	return f, nil
}

func envBool(name string) (bool, error) { return envBoolDefault(name, false) }

func envBoolDefault(name string, def bool) (bool, error) {
	v := envOr(name, "")
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %q is not true or false", name, v)
	}
	return b, nil
}

func envDuration(name string, def time.Duration) (time.Duration, error) {
	v := envOr(name, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return def, fmt.Errorf("%s: %q is not a duration (like 30s)", name, v)
	}
	return d, nil
}
