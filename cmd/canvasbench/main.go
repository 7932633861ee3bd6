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
	"time"
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
	started := time.Now()
	if cfg.Scenario != "load" {
		rep, err := runScenario(ctx, cfg, prog)
		if rep != nil {
			writeScenario(os.Stdout, rep)
			if cfg.CSV != "" {
				if werr := writeFile(cfg.CSV, func(f *os.File) error { return writeScenarioCSV(f, rep) }); werr != nil {
					err = errors.Join(err, werr)
				} else if werr := writeProvenance(cfg.CSV, collectProvenance(context.WithoutCancel(ctx), cfg, started)); werr != nil {
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
		var files []string
		out := func(path string, fn func(*os.File) error) {
			if werr := writeFile(path, fn); werr != nil {
				err = errors.Join(err, werr)
				return
			}
			files = append(files, path)
		}
		if cfg.Repeat > 1 {
			writeRepeatTable(os.Stdout, cfg, results)
			if cfg.CSV != "" {
				out(cfg.CSV, func(f *os.File) error { return writeSummaryCSV(f, results) })
			}
			if raw := cfg.RawCSV; raw != "" || cfg.CSV != "" {
				if raw == "" {
					raw = rawCSVPath(cfg.CSV)
				}
				out(raw, func(f *os.File) error { return writeRunsCSV(f, results) })
			}
		} else {
			writeTable(os.Stdout, cfg, results)
			if cfg.CSV != "" {
				out(cfg.CSV, func(f *os.File) error { return writeCSV(f, results) })
			}
		}
		if cfg.SVG != "" {
			out(cfg.SVG, func(f *os.File) error { return writeSVG(f, cfg, results) })
		}
		if len(files) > 0 {
			p := collectProvenance(context.WithoutCancel(ctx), cfg, started)
			for _, path := range files {
				if werr := writeProvenance(path, p); werr != nil {
					err = errors.Join(err, werr)
				}
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
