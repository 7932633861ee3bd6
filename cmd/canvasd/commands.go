package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
