package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
)

// scenarioNames are the target scenarios besides the default "load".
var scenarioNames = []string{"pull", "fanout", "touch", "presence"}

// ScenarioConfig holds the parameters of the target scenarios.
type ScenarioConfig struct {
	ServerArgs string // extra canvasd flags for a started server
	StatsDB    string // database name whose pg_stat_database counters to read (external server)
	DebugURL   string // pprof base URL of the server (started servers get one automatically)

	// pull
	Changes      int // pushes (one mutation each) between two incremental pulls
	Reps         int // incremental pulls measured
	InitialPulls int
	Pullers      int

	// fanout
	Subscribers    int
	Samples        int           // latency pushes per canvas
	SampleInterval time.Duration // pause between latency rounds
	Burst          int           // commits per canvas in the coalescing burst
	Dials          int           // concurrent SSE connects

	// presence
	Cursors    int     // moving cursors (clients posting presence)
	CursorRate float64 // posts per second per cursor
	URL2       string  // a second instance on the same database (external server)

	// touch
	TouchOp     string // "push" or "pull"
	Concurrency int
	IdleTimeout time.Duration
	Settle      time.Duration // how long to wait for RSS after passivation
}

func (s *ScenarioConfig) addFlags(fs *flag.FlagSet) {
	fs.StringVar(&s.ServerArgs, "server-args", "", "extra canvasd flags for a started server (space-separated), e.g. \"--db-max-conns=32\"")
	fs.StringVar(&s.StatsDB, "stats-db", "", "scenarios with an external server: name of its database, whose pg_stat_database transaction counters are read through --admin-database-url")
	fs.StringVar(&s.DebugURL, "debug-url", "", "scenarios with an external server: its --debug-addr as http://host:port, to force a GC and read heap figures (started servers get one)")
	fs.IntVar(&s.Changes, "changes", 10, "pull: pushes (one change each) before every measured incremental pull")
	fs.IntVar(&s.Reps, "reps", 200, "pull: incremental pulls measured")
	fs.IntVar(&s.InitialPulls, "initial-pulls", 10, "pull: initial (cookie null) pulls measured")
	fs.IntVar(&s.Pullers, "pullers", 200, "pull: SSE clients that pull after one push")
	fs.IntVar(&s.Subscribers, "subscribers", 5000, "fanout: SSE subscribers in total, spread evenly over --canvases")
	fs.IntVar(&s.Samples, "samples", 20, "fanout: latency pushes per canvas (one per round)")
	fs.DurationVar(&s.SampleInterval, "sample-interval", 300*time.Millisecond, "fanout: pause between latency rounds")
	fs.IntVar(&s.Burst, "burst", 100, "fanout: commits per canvas in the coalescing burst (sequential one-mutation pushes)")
	fs.IntVar(&s.Dials, "dials", 64, "fanout/pull: SSE connections opened concurrently")
	fs.IntVar(&s.Cursors, "cursors", 100, "presence: moving cursors on the canvas")
	fs.Float64Var(&s.CursorRate, "cursor-rate", 20, "presence: presence posts per second per cursor")
	fs.StringVar(&s.URL2, "url2", "", "presence with an external server: a second instance on the same database (cross-instance latency)")
	fs.StringVar(&s.TouchOp, "touch-op", "push", "touch: what touches a canvas after its creation: push (one createNode) or pull (cookie null)")
	fs.IntVar(&s.Concurrency, "concurrency", 32, "touch/fanout: concurrent requests")
	fs.DurationVar(&s.IdleTimeout, "idle-timeout", 5*time.Second, "touch: canvasd --idle-timeout for a started server (unless --server-args has one); the wait for passivation")
	fs.DurationVar(&s.Settle, "settle", 30*time.Second, "touch: after passivation, how long to wait for the RSS to come back under 2x idle")
}

// applyScenarioDefaults changes the defaults of shared flags the user did
// not set to the ones of the scenario's target.
func (c *Config) applyScenarioDefaults(set map[string]bool) {
	def := func(name string, apply func()) {
		if !set[name] {
			apply()
		}
	}
	switch c.Scenario {
	case "pull":
		def("nodes", func() { c.Nodes = 10_000 })
		def("canvases", func() { c.Canvases = 1 })
	case "fanout":
		def("canvases", func() { c.Canvases = 1 })
		def("nodes", func() { c.Nodes = 10 })
	case "touch":
		def("canvases", func() { c.Canvases = 100_000 })
	case "presence":
		def("samples", func() { c.Scen.Samples = 200 })
		def("sample-interval", func() { c.Scen.SampleInterval = 50 * time.Millisecond })
		def("subscribers", func() { c.Scen.Subscribers = 100 })
	}
}

func (c Config) validateScenario() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	s := c.Scen
	if c.Compare {
		bad("compare runs the load scenario only")
	}
	if c.Timeout <= 0 {
		bad("--timeout must be > 0")
	}
	if c.Canvases < 1 || c.Canvases > 1_000_000 {
		bad("--canvases must be in 1..1000000")
	}
	if _, ok := modeByName(c.Mode); !ok || c.Mode == "ceiling" || c.Mode == "ceiling-global" {
		bad("--mode must be a server mode (canvas, canvas-nobatch, global, global-coalesced)")
	}
	if s.DebugURL != "" {
		if err := checkLoopbackURL(s.DebugURL, c.AllowRemote); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.Scenario {
	case "pull":
		if c.Nodes < 10 || c.Nodes > 100_000 {
			bad("--nodes must be in 10..100000")
		}
		if s.Changes < 1 || s.Changes > c.Nodes || s.Reps < 1 || s.InitialPulls < 1 || s.Pullers < 1 || s.Pullers > 50_000 {
			bad("pull needs --changes in 1..nodes, --reps >= 1, --initial-pulls >= 1, --pullers in 1..50000")
		}
	case "fanout":
		if s.Subscribers < c.Canvases || s.Subscribers > 200_000 {
			bad("--subscribers must be in canvases..200000")
		}
		if c.Nodes < 1 || c.Nodes > 10_000 {
			bad("--nodes must be in 1..10000")
		}
		if s.Samples < 1 || s.Burst < 0 || s.Dials < 1 || s.Concurrency < 1 || s.SampleInterval < 0 {
			bad("fanout needs --samples >= 1, --burst >= 0, --dials >= 1, --concurrency >= 1")
		}
	case "touch":
		if s.TouchOp != "push" && s.TouchOp != "pull" {
			bad("--touch-op must be push or pull")
		}
		if s.Concurrency < 1 || s.Concurrency > 10_000 || s.IdleTimeout <= 0 || s.Settle < 0 {
			bad("touch needs --concurrency in 1..10000, --idle-timeout > 0, --settle >= 0")
		}
	case "presence":
		if s.Samples < 1 || s.SampleInterval < 0 || s.Cursors < 1 || s.Cursors > 10_000 || s.Subscribers < 1 || s.Subscribers > 10_000 ||
			s.CursorRate <= 0 || s.CursorRate > 1000 {
			bad("presence needs --samples >= 1, --cursors and --subscribers in 1..10000, --cursor-rate in (0, 1000]")
		}
	default:
		bad("--scenario must be load, pull, fanout, touch or presence")
	}
	return errors.Join(errs...)
}

// Verdict of one target row.
const (
	verdictMet    = "met"
	verdictNotMet = "not met"
)

// Row is one line of a scenario's result table. Target and Verdict are
// empty for figures reported for context only.
type Row struct {
	Metric, Measured, Target, Verdict string
}

// check returns a row whose verdict is met when ok.
func check(metric, measured, target string, ok bool) Row {
	v := verdictNotMet
	if ok {
		v = verdictMet
	}
	return Row{Metric: metric, Measured: measured, Target: target, Verdict: v}
}

func info(metric, measured string) Row { return Row{Metric: metric, Measured: measured} }

// ScenarioReport is what a target scenario prints.
type ScenarioReport struct {
	Title  string
	Params string
	Rows   []Row
	Notes  []string
}

func (r *ScenarioReport) add(rows ...Row) { r.Rows = append(r.Rows, rows...) }
func (r *ScenarioReport) note(format string, a ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, a...))
}

// writeScenario prints the report as a table: metric, measured, target, verdict.
func writeScenario(w io.Writer, r *ScenarioReport) {
	fmt.Fprintf(w, "\n%s\n%s\n\n", r.Title, r.Params)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tmeasured\ttarget\tverdict\t")
	for _, row := range r.Rows {
		t, v := row.Target, row.Verdict
		if t == "" {
			t, v = "-", ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", row.Metric, row.Measured, t, v)
	}
	tw.Flush()
	met, total := 0, 0
	for _, row := range r.Rows {
		if row.Verdict != "" {
			total++
			if row.Verdict == verdictMet {
				met++
			}
		}
	}
	fmt.Fprintf(w, "\ntargets met: %d of %d\n", met, total)
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note: "+n)
	}
}

func writeScenarioCSV(w io.Writer, r *ScenarioReport) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"scenario", "metric", "measured", "target", "verdict"}); err != nil {
		return err
	}
	for _, row := range r.Rows {
		if err := cw.Write([]string{r.Title, row.Metric, row.Measured, row.Target, row.Verdict}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// scenEnv is the server a scenario runs against.
type scenEnv struct {
	cfg      Config
	api      *api
	base     string
	pid      int    // 0 = unknown (no RSS)
	debugURL string // "" = no pprof
	adminURL string
	statsDB  string // "" = no database counters
	prog     *progress
	// A second instance on the same database (presence only).
	base2 string
	pid2  int
}

// rss returns the server's VmRSS and VmHWM, or zeros when unknown.
func (e *scenEnv) rss() (int64, int64) {
	if e.pid <= 0 {
		return 0, 0
	}
	r, p, err := readRSS(e.pid)
	if err != nil {
		return 0, 0
	}
	return r, p
}

// metrics scrapes /metrics.
func (e *scenEnv) metrics(ctx context.Context) (map[string]float64, error) {
	data, err := e.api.get(ctx, "/metrics")
	if err != nil {
		return nil, err
	}
	return parseMetrics(string(data)), nil
}

// metric returns one metric, -1 when it cannot be read.
func (e *scenEnv) metric(ctx context.Context, name string) float64 {
	m, err := e.metrics(ctx)
	if err != nil {
		return -1
	}
	v, ok := m[name]
	if !ok {
		return -1
	}
	return v
}

// xacts returns xact_commit + xact_rollback of the server's database.
// PostgreSQL backends flush these counters about once a second, so callers
// wait (statsFlush) before reading a window's end.
func (e *scenEnv) xacts(ctx context.Context) (int64, error) {
	if e.statsDB == "" {
		return 0, errors.New("no --stats-db")
	}
	conn, err := pgx.Connect(ctx, e.adminURL)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int64
	err = conn.QueryRow(ctx, "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", e.statsDB).Scan(&n)
	return n, err
}

// statsFlush is how long to wait for backends to publish their counters:
// PostgreSQL 15 flushes at most once a second, and a backend that went idle
// within a second of its last flush holds its counts for PGSTAT_IDLE_INTERVAL
// (10 s).
const statsFlush = 11 * time.Second

// heap forces a GC through pprof and returns the Go heap in use and stack
// in use, in bytes; zeros when no pprof is known.
func (e *scenEnv) heap(ctx context.Context) (heapInuse, stackInuse int64) {
	m := e.memStats(ctx)
	return m["HeapInuse"], m["Stack"]
}

// memStats forces a GC through pprof and returns the runtime.MemStats
// figures of the heap profile (nil without pprof).
func (e *scenEnv) memStats(ctx context.Context) map[string]int64 {
	if e.debugURL == "" {
		return nil
	}
	dbg := &api{base: trimSlash(e.debugURL), hc: e.api.hc, timeout: 30 * time.Second}
	data, err := dbg.get(ctx, "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return nil
	}
	return parseMemStats(string(data))
}

// parseMetrics reads the Prometheus text format: "name{labels} value".
func parseMetrics(text string) map[string]float64 {
	m := map[string]float64{}
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[strings.TrimSpace(line[:i])] = v
	}
	return m
}

// parseHeapProfile reads HeapInuse and StackInuse from the runtime.MemStats
// comment block of /debug/pprof/heap?debug=1.
func parseHeapProfile(text string) (heapInuse, stackInuse int64) {
	m := parseMemStats(text)
	return m["HeapInuse"], m["Stack"]
}

// parseMemStats reads the "# Name = N" and "# Name = inuse / sys" lines of
// /debug/pprof/heap?debug=1 (for the latter, the first number).
func parseMemStats(text string) map[string]int64 {
	m := map[string]int64{}
	for line := range strings.SplitSeq(text, "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "# "), " = ")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, "/")
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		m[k] = n
	}
	return m
}

// parseNoFileLimit reads the soft "Max open files" of /proc/<pid>/limits;
// -1 for unlimited or unknown.
func parseNoFileLimit(text string) int64 {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Max open files") {
			continue
		}
		fs := strings.Fields(strings.TrimPrefix(line, "Max open files"))
		if len(fs) == 0 {
			return -1
		}
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	return -1
}

func processNoFile(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return -1
	}
	return parseNoFileLimit(string(data))
}

// raiseNoFile sets the soft RLIMIT_NOFILE to the hard limit and returns the
// new soft limit (a canvasd started from here inherits it).
func raiseNoFile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			return 0, err
		}
	}
	return rl.Cur, nil
}

// hasServerFlag reports whether args set the canvasd flag name.
func hasServerFlag(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// runScenario runs cfg.Scenario against a started or external canvasd.
func runScenario(ctx context.Context, cfg Config, prog *progress) (rep *ScenarioReport, err error) {
	limit, lerr := raiseNoFile()
	env := &scenEnv{cfg: cfg, prog: prog, adminURL: cfg.AdminDBURL}
	conns := 64
	if cfg.Scenario == "touch" {
		conns = cfg.Scen.Concurrency
	}
	if cfg.Scenario == "presence" {
		conns = max(conns, cfg.Scen.Cursors)
	}
	if cfg.Server == "external" {
		env.base, env.pid, env.debugURL, env.statsDB = cfg.URL, cfg.ServerPID, cfg.Scen.DebugURL, cfg.Scen.StatsDB
		env.base2 = cfg.Scen.URL2
		env.api = newAPI(env.base, cfg.Timeout, conns)
		defer env.api.close()
		rep, err = runScenarioOn(ctx, env)
	} else {
		rep, err = runScenarioStarted(ctx, env, conns)
	}
	if rep != nil {
		if lerr != nil {
			rep.note("could not raise RLIMIT_NOFILE: %v", lerr)
		} else {
			rep.note("canvasbench open-file limit: %d", limit)
		}
	}
	return rep, err
}

func runScenarioStarted(ctx context.Context, env *scenEnv, conns int) (rep *ScenarioReport, err error) {
	cfg := env.cfg
	logDir := cfg.LogDir
	if logDir == "" {
		d, err := os.MkdirTemp("", "canvasbench-")
		if err != nil {
			return nil, err
		}
		logDir = d
		defer func() {
			if err != nil {
				prog := env.prog
				prog.note("server logs kept in %s", d)
			} else {
				os.RemoveAll(d)
			}
		}()
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	bin := cfg.CanvasdBin
	if bin == "" {
		env.prog.note("building canvasd ...")
		if bin, err = buildCanvasd(ctx, cfg.Src, logDir); err != nil {
			return nil, err
		}
	}
	mode, _ := modeByName(cfg.Mode)
	extra := strings.Fields(cfg.Scen.ServerArgs)
	if cfg.Scenario == "touch" && !hasServerFlag(extra, "idle-timeout") {
		extra = append(extra, "--idle-timeout="+cfg.Scen.IdleTimeout.String())
	}
	if !hasServerFlag(extra, "debug-addr") {
		port, err := freeLoopbackPort()
		if err != nil {
			return nil, err
		}
		env.debugURL = "http://127.0.0.1:" + strconv.Itoa(port)
		extra = append(extra, "--debug-addr=127.0.0.1:"+strconv.Itoa(port))
	}
	mode.Args = append(append([]string{}, mode.Args...), extra...)

	db, err := createDB(ctx, cfg.AdminDBURL, cfg.Scenario)
	if err != nil {
		return nil, err
	}
	env.statsDB = db.name
	defer func() {
		if cfg.KeepDB {
			env.prog.note("kept database %s", db.name)
			return
		}
		if derr := db.drop(); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop database %s: %w", db.name, derr))
		}
	}()
	srv, err := startServer(ctx, bin, db.url, mode, logDir)
	if err != nil {
		return nil, err
	}
	env.base, env.pid = srv.url, srv.pid()
	if cfg.Scenario == "presence" {
		// A second instance on the same database, for cross-instance
		// delivery (without pprof: the debug port is taken).
		second := mode
		second.Args = nil
		for _, a := range mode.Args {
			if !strings.HasPrefix(strings.TrimLeft(a, "-"), "debug-addr") {
				second.Args = append(second.Args, a)
			}
		}
		srv2, err := startServer(ctx, bin, db.url, second, logDir)
		if err != nil {
			_ = srv.stop()
			return nil, err
		}
		defer func() { _ = srv2.stop() }()
		env.base2, env.pid2 = srv2.url, srv2.pid()
	}
	env.api = newAPI(env.base, cfg.Timeout, conns)
	defer env.api.close()
	rep, err = runScenarioOn(ctx, env)
	if rep != nil {
		rep.note("canvasd started as: %s %s (log %s)", bin, strings.Join(mode.Args, " "), srv.log)
	}
	if serr := srv.stop(); serr != nil {
		msg := fmt.Errorf("canvasd did not stop cleanly (%v); log %s", serr, srv.log)
		if rep != nil && err == nil {
			rep.note("%v", msg)
		} else {
			err = errors.Join(err, msg)
		}
	}
	if err != nil {
		err = fmt.Errorf("%w\nlog %s (tail):\n%s", err, srv.log, tail(srv.log, 10))
	}
	return rep, err
}

func runScenarioOn(ctx context.Context, env *scenEnv) (*ScenarioReport, error) {
	if env.pid > 0 {
		if n := processNoFile(env.pid); n >= 0 && env.cfg.Scenario == "fanout" && n < int64(env.cfg.Scen.Subscribers)+256 {
			env.prog.note("warning: canvasd's open-file limit is %d, below %d subscribers + 256", n, env.cfg.Scen.Subscribers)
		}
	}
	var rep *ScenarioReport
	var err error
	switch env.cfg.Scenario {
	case "pull":
		rep, err = runPullScenario(ctx, env)
	case "fanout":
		rep, err = runFanoutScenario(ctx, env)
	case "touch":
		rep, err = runTouchScenario(ctx, env)
	case "presence":
		rep, err = runPresenceScenario(ctx, env)
	default:
		return nil, fmt.Errorf("unknown scenario %q", env.cfg.Scenario)
	}
	if rep != nil && env.pid > 0 {
		rep.note("canvasd pid %d, open-file limit %d", env.pid, processNoFile(env.pid))
	}
	return rep, err
}

// Formatting helpers of the scenario tables.
func fmtBytes(b int64) string {
	switch {
	case b < 0:
		return "-"
	case b >= 1<<20:
		return strconv.FormatFloat(float64(b)/(1<<20), 'f', 2, 64) + " MiB"
	case b >= 1<<10:
		return strconv.FormatFloat(float64(b)/(1<<10), 'f', 1, 64) + " KiB"
	default:
		return strconv.FormatInt(b, 10) + " B"
	}
}

func fmtHist(h *Hist) string {
	if h.Count() == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s p99 %s max %s (n=%d)", ms(h.Quantile(.5)), ms(h.Quantile(.99)), ms(h.Quantile(1)), h.Count())
}
