package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	migrations "github.com/canvasd/canvasd/sql"
)

// versionString describes this build from the information the Go toolchain
// records in every binary: the module version (a tag when installed with
// go install …@vX.Y.Z, "(devel)" when built from a checkout) and, when
// built from a version-controlled checkout, the revision.
func versionString() string {
	version, rev := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		var revision, at string
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if revision != "" {
			rev = " revision " + revision
			if at != "" {
				rev += " (" + at + ")"
			}
			if modified {
				rev += " with local changes"
			}
		}
	}
	return fmt.Sprintf("canvasd %s%s %s %s/%s", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// printUsage lists the subcommands and, given them, the server's flags
// (secret flags show only whether they are set: see secretFlag).
func printUsage(w io.Writer, serverFlags *flag.FlagSet) {
	fmt.Fprint(w, `usage: canvasd [flags]                 run the server
       canvasd migrate up|status [flags]  apply or show the schema migrations
       canvasd token --sub USER ...       mint a development token (canvasd token --help)
       canvasd version                    print the version and exit (also --version)
       canvasd healthcheck [--url URL]    exit 0 if the local server answers /healthz (for container health checks)
`)
	if serverFlags == nil {
		return
	}
	fmt.Fprint(w, `
Every server flag has an environment twin, shown in parentheses; the flag wins.

server flags:
`)
	serverFlags.SetOutput(w)
	serverFlags.PrintDefaults()
}

// runMigrate is `canvasd migrate up|status`.
func runMigrate(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("canvasd migrate", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: canvasd migrate up [flags]      apply every pending migration
       canvasd migrate status [flags]  show the schema version and the pending migrations

The server migrates at start-up unless started with --migrate=false.

flags:
`)
		fs.PrintDefaults()
	}
	var dbURL string
	var timeout time.Duration
	fs.StringVar(&dbURL, "database-url", envOr("DATABASE_URL", defaultDatabaseURL), "PostgreSQL connection URL (env DATABASE_URL)")
	fs.DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long (waiting for another instance's migration included)")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fs.Usage()
			return nil
		}
		fs.Usage()
		return errors.New("migrate needs up or status")
	}
	verb := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if verb != "up" && verb != "status" {
		return fmt.Errorf("migrate %s: want up or status", verb)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	poolCfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	poolCfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return fmt.Errorf("database pool: %w", err)
	}
	defer pool.Close()
	before, err := migrations.Status(ctx, pool)
	if err != nil {
		return err
	}
	if verb == "status" {
		_, err = fmt.Fprintln(out, before)
		return err
	}
	if err := migrations.Apply(ctx, pool); err != nil {
		return err
	}
	after, err := migrations.Status(ctx, pool)
	if err != nil {
		return err
	}
	applied := max(after.Current-before.Current, 0)
	_, err = fmt.Fprintf(out, "%s (applied %d)\n", after, applied)
	return err
}

// runHealthcheck is `canvasd healthcheck`: it exits 0 when the server on
// this machine answers GET /healthz with 200. Container images without a
// shell or curl use it as their health check.
func runHealthcheck(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("canvasd healthcheck", flag.ContinueOnError)
	fs.SetOutput(out)
	target := fs.String("url", healthURL(envOr("CANVASD_ADDR", "127.0.0.1:8080")), "URL to check (default: /healthz on CANVASD_ADDR, wildcard hosts as loopback)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *target, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *target, resp.Status)
	}
	return nil
}

// healthURL is the /healthz URL of a server listening on addr, reached
// over loopback when it listens on every address.
func healthURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/healthz"
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz"
}
