package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// runAll runs every (sweep point, mode) pair in turn, --repeat rounds of
// them interleaved (see schedule), each run on a fresh database (and a
// freshly started server), and returns the results in run order.
// A failing pair is recorded with Err and does not stop the others.
func runAll(ctx context.Context, cfg Config, prog *progress) ([]*Result, error) {
	names := cfg.Modes
	if !cfg.Compare {
		names = []string{cfg.Mode}
	}
	if cfg.Server == "external" {
		names = []string{"external"}
	}

	var bin string
	logDir := cfg.LogDir
	failed := false
	if cfg.Server == "start" {
		if logDir == "" {
			d, err := os.MkdirTemp("", "canvasbench-")
			if err != nil {
				return nil, err
			}
			logDir = d
			defer func() {
				if failed {
					prog.note("server logs kept in %s", d)
				} else {
					os.RemoveAll(d)
				}
			}()
		} else if err := os.MkdirAll(logDir, 0o755); err != nil {
			return nil, err
		}
		needServer := false
		for _, n := range names {
			m, _ := modeByName(n)
			needServer = needServer || m.Ceiling == ""
		}
		bin = cfg.CanvasdBin
		if needServer && bin == "" {
			prog.note("building canvasd ...")
			var err error
			if bin, err = buildCanvasd(ctx, cfg.Src, logDir); err != nil {
				failed = true
				return nil, err
			}
		}
	}

	points := cfg.Sweep.Values
	if cfg.Sweep.Param == "" {
		points = []float64{0}
	}
	// A rate sweep does not change the ceiling: it runs once per round.
	ceilings := map[int]map[string]*Result{}
	var results []*Result
	for _, run := range schedule(len(points), names, max(cfg.Repeat, 1)) {
		x := points[run.Point]
		pc := cfg.Sweep.Apply(cfg, x)
		if prog != nil {
			prog.point = cfg.Sweep.Param
			if cfg.Sweep.Param != "" {
				prog.point = fmt.Sprintf("%s=%g", cfg.Sweep.Param, x)
			}
			if cfg.Repeat > 1 {
				prog.point = strings.TrimSpace(fmt.Sprintf("round %d/%d %s", run.Round, cfg.Repeat, prog.point))
			}
		}
		if ceilings[run.Round] == nil {
			ceilings[run.Round] = map[string]*Result{}
		}
		name := run.Mode
		mode, _ := modeByName(name)
		var res *Result
		var err error
		if c := ceilings[run.Round][name]; c != nil && cfg.Sweep.Param == "rate" {
			cp := *c
			res = &cp
		} else {
			res, err = runPoint(ctx, pc, name, mode, bin, logDir, prog)
		}
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
		if err != nil {
			failed = true
			res = newResult(pc, name)
			res.Err = err.Error()
		}
		if mode.Ceiling != "" && res.Err == "" {
			ceilings[run.Round][name] = res
		}
		res.Param, res.X, res.Round = cfg.Sweep.Param, x, run.Round
		results = append(results, res)
		line := summaryLine(res)
		if cfg.Repeat > 1 {
			line = fmt.Sprintf("[%d/%d] %s", run.Round, cfg.Repeat, line)
		}
		prog.note("%s", line)
	}
	return results, nil
}

// runPoint runs one mode at one workload.
func runPoint(ctx context.Context, cfg Config, name string, mode Mode, bin, logDir string, prog *progress) (res *Result, err error) {
	if cfg.Server == "external" {
		var rss func() (int64, int64, error)
		if cfg.ServerPID > 0 {
			rss = func() (int64, int64, error) { return readRSS(cfg.ServerPID) }
		}
		return runLoad(ctx, cfg, name, cfg.URL, rss, prog)
	}

	db, err := createDB(ctx, cfg.AdminDBURL, name)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cfg.KeepDB {
			prog.note("kept database %s", db.name)
			return
		}
		if derr := db.drop(); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop database %s: %w", db.name, derr))
		}
	}()

	if mode.Ceiling != "" {
		return runCeiling(ctx, cfg, name, mode.Ceiling, db.url, prog)
	}

	srv, err := startServer(ctx, bin, db.url, mode, logDir)
	if err != nil {
		return nil, err
	}
	res, err = runLoad(ctx, cfg, name, srv.url, func() (int64, int64, error) { return readRSS(srv.pid()) }, prog)
	stopStart := time.Now()
	if serr := srv.stop(); serr != nil {
		msg := fmt.Sprintf("canvasd did not stop cleanly after %.1fs (%v); log %s", time.Since(stopStart).Seconds(), serr, srv.log)
		if res != nil && err == nil {
			res.Err = msg // keep the numbers, flag the exit
		} else {
			err = errors.Join(err, errors.New(msg))
		}
	}
	if err != nil {
		err = fmt.Errorf("%w\nlog %s (tail):\n%s", err, srv.log, tail(srv.log, 10))
	}
	return res, err
}
