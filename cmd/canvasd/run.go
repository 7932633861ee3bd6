package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/canvasd/canvasd/actors"
	"github.com/canvasd/canvasd/canvas/store"
	"github.com/canvasd/canvasd/httpapi"
	migrations "github.com/canvasd/canvasd/sql"
)

func run(ctx context.Context, args []string) error {
	cfg, err := parseConfig(args)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	// hollywood logs its events through slog; the actor system forwards
	// the ones that matter to zap instead.
	slog.SetDefault(slog.New(slog.DiscardHandler))

	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	poolCfg.MaxConns = int32(cfg.DBMaxConns)
	ready := newReadiness()
	poolCfg.AfterConnect = func(context.Context, *pgx.Conn) error {
		ready.connected(log)
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("database pool: %w", err)
	}
	defer pool.Close() // last of all

	// One registry for every metric of the process, served at /metrics.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Actors.Registry, cfg.HTTP.Registry = reg, reg

	st := store.New(pool)
	sys, err := actors.New(cfg.Actors, st, log)
	if err != nil {
		return err
	}
	api, err := httpapi.New(cfg.HTTP, st, sys, log.Named("http"), ready.status)
	if err != nil {
		return err
	}
	defer api.Close()
	logAuth(log, cfg)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	if cfg.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.MetricsAddr, api.MetricsHandler(), log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("canvasd listening", zap.String("addr", ln.Addr().String()),
		zap.String("versioning", cfg.Versioning), zap.Bool("batching", cfg.Actors.Batching),
		zap.String("notify", map[actors.NotifyMode]string{actors.NotifyCoalesced: "coalesced", actors.NotifyInTx: "in-tx"}[cfg.Actors.Notify]))

	// /readyz answers from memory; the database is probed in the background.
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		ready.watch(ctx, pool, time.Second, log)
	}()

	// Migrate in the background so /healthz answers at once and /readyz
	// turns ready only when the schema and the LISTEN connection are up.
	started := make(chan struct{})
	go func() {
		defer close(started)
		if cfg.Migrate {
			ready.setPhase("starting: migrating the schema")
			if err := migrate(ctx, pool, log); err != nil {
				return
			}
		} else {
			ready.setPhase("starting: checking the schema")
			if err := awaitSchema(ctx, pool, ready, 2*time.Second, log); err != nil {
				return
			}
		}
		ready.setPhase("starting: actors")
		if err := sys.Start(ctx); err != nil {
			log.Error("actor system", zap.Error(err))
			return
		}
		ready.setPhase("")
		log.Info("canvasd ready")
	}()

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("shutting down", zap.Duration("drain_period", cfg.DrainPeriod))
	<-started
	<-watching

	// Load balancers see /readyz fail and move traffic away; requests that
	// still come are served, on connections that close after each answer.
	api.Drain(cfg.DrainPeriod)
	if cfg.DrainPeriod > 0 {
		srv.SetKeepAlivesEnabled(false)
		select {
		case <-time.After(cfg.DrainPeriod):
		case err := <-serveErr:
			log.Error("serve", zap.Error(err))
		}
	}

	// Reverse order: SSE streams told to go, HTTP drained, actors, pool.
	sys.Drain()
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("http shutdown", zap.Error(err))
	}
	sys.Stop()
	log.Info("stopped")
	return nil
}

// logAuth says at start-up how requests are authenticated, loudly when
// they are not.
func logAuth(log *zap.Logger, cfg *config) {
	a := cfg.HTTP.Auth
	if !a.Enabled() {
		msg := "authentication is off: every client can read and write every canvas; listening on loopback only"
		if cfg.InsecureNoAuth {
			msg = "authentication is off and --insecure-no-auth is set: anyone reaching " + cfg.Addr + " can read and write every canvas"
		}
		log.Warn(msg)
		return
	}
	if (a.JWKSFile != "" || a.JWKSURL != "") && a.Audience == "" {
		// A key set is usually an identity provider's, which signs tokens
		// for other services too: without an audience, any of them works here.
		log.Warn("a JWKS is configured without --jwt-audience: tokens the key set's issuer minted for any other service are accepted too")
	}
	log.Info("bearer tokens required", zap.Bool("hs256", len(a.HS256Secret) > 0),
		zap.String("jwks_file", a.JWKSFile), zap.String("jwks_url", showRedactedURL(a.JWKSURL)),
		zap.String("issuer", a.Issuer), zap.String("audience", a.Audience), zap.Strings("cors_origins", cfg.HTTP.CORSOrigins))
}

// migrate applies the schema, retrying while the database is unreachable.
func migrate(ctx context.Context, pool *pgxpool.Pool, log *zap.Logger) error {
	backoff := 200 * time.Millisecond
	for {
		err := migrations.Apply(ctx, pool)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Error("migrations failed, retrying", zap.Error(err), zap.Duration("retry_in", backoff))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func newLogger(format, level string) (*zap.Logger, error) {
	zc, err := loggerConfig(format, level)
	if err != nil {
		return nil, err
	}
	// Stack traces only for panics: warnings and errors here are about
	// the world (a database away, a client misbehaving), not about code.
	return zc.Build(zap.AddStacktrace(zapcore.DPanicLevel))
}

// loggerConfig is zap's configuration for format and level: ISO-8601
// timestamps, no stack traces.
func loggerConfig(format, level string) (zap.Config, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return zap.Config{}, errors.New("log level must be debug, info, warn or error")
	}
	zc := zap.NewProductionConfig()
	if format == "console" {
		zc = zap.NewDevelopmentConfig()
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	zc.DisableStacktrace = true
	return zc, nil
}
