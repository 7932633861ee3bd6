// Command canvasbench is the load generator and research harness of canvasd:
// it speaks the real protocol (Replicache push/pull over HTTP, pokes over
// SSE) against a running canvasd or one it starts on a fresh database, and
// compares versioning modes against the raw SQL ceiling. See canvasbench -h.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "canvasbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := ParseConfig(os.Args[1:], os.Stderr)
	if err != nil {
		return err
	}
	prog := newProgress(os.Stderr, cfg.Quiet)
	if cfg.Scenario != "load" {
		rep, err := runScenario(ctx, cfg, prog)
		if rep != nil {
			writeScenario(os.Stdout, rep)
			if cfg.CSV != "" {
				if werr := writeFile(cfg.CSV, func(f *os.File) error { return writeScenarioCSV(f, rep) }); werr != nil {
					err = errors.Join(err, werr)
				}
			}
		}
		return err
	}
	if _, err := raiseNoFile(); err != nil {
		prog.note("could not raise the open-file limit: %v", err)
	}
	results, err := runAll(ctx, cfg, prog)
	if len(results) > 0 {
		writeTable(os.Stdout, cfg, results)
		if cfg.CSV != "" {
			if werr := writeFile(cfg.CSV, func(f *os.File) error { return writeCSV(f, results) }); werr != nil {
				err = errors.Join(err, werr)
			}
		}
		if cfg.SVG != "" {
			if werr := writeFile(cfg.SVG, func(f *os.File) error { return writeSVG(f, cfg, results) }); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	return err
}

func writeFile(path string, fn func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
