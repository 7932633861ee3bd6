package main

import (
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
	LogFormat       string
	LogLevel        string
	DBMaxConns      int
	ShutdownTimeout time.Duration

	Actors actors.Config
	HTTP   httpapi.Config
}

const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

func parseConfig(args []string) (*config, error) {
	cfg := &config{Actors: actors.DefaultConfig(), HTTP: httpapi.DefaultConfig()}
	fs := flag.NewFlagSet("canvasd", flag.ContinueOnError)
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
	str(&cfg.DatabaseURL, "database-url", "DATABASE_URL", defaultDatabaseURL, "PostgreSQL connection URL")
	str(&cfg.Versioning, "versioning", "CANVASD_VERSIONING", "canvas", "versioning: canvas (one version per canvas) or global (one version row for all, the baseline)")
	str(&cfg.Batching, "batching", "CANVASD_BATCHING", "auto", "commit the pushes waiting on a canvas in one transaction: on, off, or auto (on for canvas, off for global)")
	str(&cfg.Notify, "notify", "CANVASD_NOTIFY", "auto", "cross-instance pokes: coalesced (pg_notify outside writes), in-tx (inside every write), or auto (coalesced for canvas, in-tx for global)")
	str(&cfg.NotifyChannel, "notify-channel", "CANVASD_NOTIFY_CHANNEL", cfg.Actors.NotifyChannel, "PostgreSQL channel for pokes between instances")
	str(&cfg.DebugAddr, "debug-addr", "CANVASD_DEBUG_ADDR", "", "address for pprof (/debug/pprof/); empty: off. Keep it on loopback")
	str(&cfg.LogFormat, "log-format", "CANVASD_LOG_FORMAT", "json", "log format: json or console")
	str(&cfg.LogLevel, "log-level", "CANVASD_LOG_LEVEL", "info", "log level: debug, info, warn, error")
	num(&cfg.DBMaxConns, "db-max-conns", "CANVASD_DB_MAX_CONNS", 16, "database connections in the pool")
	dur(&cfg.ShutdownTimeout, "shutdown-timeout", "CANVASD_SHUTDOWN_TIMEOUT", 15*time.Second, "how long shutdown waits for in-flight requests")
	dur(&cfg.Actors.IdleTimeout, "idle-timeout", "CANVASD_IDLE_TIMEOUT", cfg.Actors.IdleTimeout, "how long an unused canvas stays in memory")
	num(&cfg.Actors.MaxQueuedPushes, "max-queued-pushes", "CANVASD_MAX_QUEUED_PUSHES", cfg.Actors.MaxQueuedPushes, "pushes waiting on one canvas before 503")
	num(&cfg.Actors.MaxBatchPushes, "max-batch-pushes", "CANVASD_MAX_BATCH_PUSHES", cfg.Actors.MaxBatchPushes, "pushes committed in one transaction at most")
	num(&cfg.HTTP.MaxMutationsPerPush, "max-mutations-per-push", "CANVASD_MAX_MUTATIONS_PER_PUSH", cfg.HTTP.MaxMutationsPerPush, "mutations in one push at most")
	var maxBody int
	num(&maxBody, "max-body-bytes", "CANVASD_MAX_BODY_BYTES", int(cfg.HTTP.MaxBodyBytes), "request body size limit")
	dur(&cfg.HTTP.PingInterval, "sse-ping", "CANVASD_SSE_PING", cfg.HTTP.PingInterval, "SSE heartbeat period (at most 15s)")
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
	return errors.Join(c.Actors.Validate(), c.HTTP.Validate())
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
