package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is everything canvasbench is told on the command line.
type Config struct {
	Compare bool // run every mode of Modes (the "compare" subcommand)

	// Server under test.
	Server      string // "start" (build/start canvasd per run) or "external" (use URL)
	URL         string // base URL of an external canvasd
	CanvasdBin  string // prebuilt canvasd binary; empty = go build ./cmd/canvasd
	Src         string // module root to build canvasd from; empty = found from the working directory
	AdminDBURL  string // database used to CREATE/DROP the fresh databases
	KeepDB      bool   // keep the fresh databases (for post-mortems)
	ServerPID   int    // pid of an external server, for RSS
	LogDir      string // where started servers write their logs; empty = a temp dir
	AllowRemote bool   // permit non-loopback server and database addresses
	Mode        string // mode of a single run (with --server=start)
	Modes       []string

	// Workload.
	Canvases   int
	Clients    int // clients per canvas
	Batch      int // mutations per push
	Nodes      int // node pool per canvas, created before the measured window
	Mix        Mix
	Rate       float64 // offered mutations/s in total; 0 = closed loop
	Dist       string  // "uniform" or "zipf"
	ZipfS      float64
	Duration   time.Duration
	Warmup     time.Duration
	Drain      time.Duration // how long to wait for the observers to see the last pushes
	Timeout    time.Duration // per HTTP request
	Seed       uint64
	NoObserver bool
	// CeilingConns is the connection pool size of the raw SQL ceiling.
	CeilingConns int

	Sweep Sweep
	// Repeat is how many rounds compare runs; each round runs every
	// (sweep point, mode) pair once.
	Repeat int

	// Scenario is "load" (the push workload above) or one of the target
	// scenarios "pull", "fanout", "touch" (scenario.go); Scen holds their
	// parameters.
	Scenario string
	Scen     ScenarioConfig

	// Output.
	CSV    string
	RawCSV string // per-run rows of a repeated run; "" = <CSV>.runs.csv
	SVG    string
	Quiet  bool

	// Flags is every flag's effective value and Args the command line, for
	// the provenance of the result files.
	Flags map[string]string
	Args  []string
}

// Sweep varies one workload parameter across runs.
type Sweep struct {
	Param  string // "canvases", "clients", "batch" or "rate"; "" = no sweep
	Values []float64
}

func (s Sweep) String() string {
	if s.Param == "" {
		return ""
	}
	vs := make([]string, len(s.Values))
	for i, v := range s.Values {
		vs[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return s.Param + "=" + strings.Join(vs, ",")
}

// ParseSweep reads "param=v1,v2,...".
func ParseSweep(s string) (Sweep, error) {
	if s == "" {
		return Sweep{}, nil
	}
	param, list, ok := strings.Cut(s, "=")
	if !ok {
		return Sweep{}, fmt.Errorf("sweep %q: want param=v1,v2 (comma-separated values)", s)
	}
	param = strings.TrimSpace(param)
	switch param {
	case "canvases", "clients", "batch", "rate":
	default:
		return Sweep{}, fmt.Errorf("sweep %q: param must be canvases, clients, batch or rate", s)
	}
	var sw Sweep
	sw.Param = param
	for _, f := range strings.Split(list, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			return Sweep{}, fmt.Errorf("sweep %q: bad value %q", s, f)
		}
		if param != "rate" && v != float64(int(v)) {
			return Sweep{}, fmt.Errorf("sweep %q: %s needs whole numbers", s, param)
		}
		sw.Values = append(sw.Values, v)
	}
	return sw, nil
}

// Apply returns a copy of c with the sweep parameter set to v.
func (s Sweep) Apply(c Config, v float64) Config {
	switch s.Param {
	case "canvases":
		c.Canvases = int(v)
	case "clients":
		c.Clients = int(v)
	case "batch":
		c.Batch = int(v)
	case "rate":
		c.Rate = v
	}
	return c
}

const usageText = `canvasbench — load generator and research harness for canvasd.

It speaks the real protocol (Replicache push/pull over HTTP, pokes over SSE)
with C canvases x K clients, and measures committed mutations/s, push latency,
poke latency, visibility latency, pull latency, errors by kind and the
server's RSS.

Usage:
  canvasbench [flags]            one run (starts canvasd on a fresh database,
                                 or --url for a running server)
  canvasbench compare [flags]    the same workload against every --modes entry,
                                 each on a fresh database, plus the raw SQL ceiling

Modes (--mode / --modes):
  canvas            --versioning=canvas --batching=true  --notify=coalesced
  canvas-nobatch    --versioning=canvas --batching=false --notify=coalesced
  global            --versioning=global --batching=false --notify=in-tx   (faithful baseline)
  global-coalesced  --versioning=global --batching=false --notify=coalesced
  ceiling           raw SQL, no HTTP/actors: one transaction per mutation
                    (bump canvases.version, update the node, upsert the client)
  ceiling-global    the same, bumping the single global_version row instead

Examples:
  canvasbench --duration 5s --canvases 16 --clients 4
  canvasbench --url http://127.0.0.1:8080 --server-pid 1234 --rate 2000
  canvasbench compare --duration 5s --sweep canvases=1,4,16,64 --csv out.csv --svg out.svg
  canvasbench compare --modes canvas,global --sweep rate=500,1000,2000 --dist zipf
  canvasbench compare --modes ceiling,canvas,global --repeat 5 --csv out.csv
                                 (median, IQR and min-max of 5 interleaved
                                 rounds; per-run rows in out.runs.csv)

Latency legend (what is measured):
  push     request sent -> HTTP 200 (open loop: from the intended send time,
           so a slow server cannot hide queueing: no coordinated omission)
  visible  push ack -> completion of the first pull by a separate observer
           client of that canvas whose patch shows the push (its tag in a node
           value) or a push sent after this ack (canvas versions only grow);
           0 when the observer saw it before the pusher got its ack
  poke     push ack -> arrival of the latest SSE poke that preceded that
           observer pull (0 when the poke beat the ack)
  pull     the observer's pull request -> response (pulls are driven by pokes)
  stale    observers still behind their canvas's final version (read by a
           fresh pull once the load stops) at the end of --drain: a missed poke
  unseen   measured pushes the stale observers never saw

Scenarios (--scenario NAME, or NAME as the first argument; each prints its
figures next to the performance targets with met / not met; see SCENARIOS.md):
  load     the push workload above (default)
  pull     one canvas of --nodes (default 10000): initial pulls with
           Accept-Encoding: gzip (time, wire and decoded bytes), --reps
           incremental pulls after --changes pushes each, then one push poking
           --pullers SSE clients that all pull (database transactions seen,
           canvasd_pulls_from_store_total)
  fanout   --subscribers SSE streams over --canvases (default 1): idle memory
           per subscriber, --samples spaced pushes (push ack -> poke with that
           version or later, at every subscriber), then --burst commits per
           canvas (pokes received per subscriber)
  touch    --canvases (default 100000) each created and pushed (or pulled,
           --touch-op pull) once with --concurrency workers; server RSS idle,
           peak and after passivation (--idle-timeout, default 5s, passed to a
           started canvasd), canvasd_active_canvases at the end

  canvasbench pull
  canvasbench fanout --subscribers 5000 --canvases 500
  canvasbench touch --canvases 100000 --concurrency 32
  canvasbench fanout --url http://127.0.0.1:8080 --server-pid 1234 --debug-url http://127.0.0.1:6060

canvasbench raises its open-file limit (RLIMIT_NOFILE) to the hard limit; a
canvasd it starts inherits it. An external canvasd needs ulimit -n above its
subscribers too (5,000 streams = 5,000 descriptors and more).

Flags:
`

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, usageText)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// ParseConfig reads the command line (without the program name).
func ParseConfig(args []string, stderr io.Writer) (Config, error) {
	var c Config
	c.Args = slices.Clone(args)
	if len(args) > 0 && args[0] == "compare" {
		c.Compare = true
		args = args[1:]
	} else if len(args) > 0 && slices.Contains(scenarioNames, args[0]) {
		c.Scenario = args[0] // "canvasbench pull ..." = "canvasbench --scenario pull ..."
		args = args[1:]
	}
	fs := flag.NewFlagSet("canvasbench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}

	var mix, sweep, modes string
	fs.BoolVar(&c.Compare, "compare", c.Compare, "same as the compare subcommand")
	fs.StringVar(&c.Server, "server", "", "start = build and start canvasd on a fresh database per run; external = use --url (default: external if --url is set, else start)")
	fs.StringVar(&c.URL, "url", "", "base URL of a running canvasd (loopback only unless --allow-remote)")
	fs.StringVar(&c.CanvasdBin, "canvasd-bin", "", "canvasd binary to start (default: go build ./cmd/canvasd into a temp dir)")
	fs.StringVar(&c.Src, "src", "", "module root to build canvasd from (default: found upward from the working directory)")
	fs.StringVar(&c.AdminDBURL, "admin-database-url", envOr("CANVASBENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "admin connection used to create and drop the fresh databases (env CANVASBENCH_ADMIN_DATABASE_URL)")
	fs.BoolVar(&c.KeepDB, "keep-db", false, "do not drop the fresh databases afterwards")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "pid of an external canvasd, to report its RSS")
	fs.StringVar(&c.LogDir, "log-dir", "", "directory for the logs of started servers (default: a temp dir, kept if a run fails)")
	fs.BoolVar(&c.AllowRemote, "allow-remote", false, "allow non-loopback server and database addresses")
	fs.StringVar(&c.Mode, "mode", "canvas", "mode of a single run with --server=start (see Modes)")
	fs.StringVar(&modes, "modes", "ceiling,canvas,canvas-nobatch,global,global-coalesced", "modes of compare, in order")

	fs.IntVar(&c.Canvases, "canvases", 16, "number of canvases")
	fs.IntVar(&c.Clients, "clients", 4, "clients per canvas (closed loop: one goroutine each; each is one Replicache client group with one client)")
	fs.IntVar(&c.Batch, "batch", 1, "mutations per push")
	fs.IntVar(&c.Nodes, "nodes", 50, "nodes created per canvas before the measured window")
	fs.StringVar(&mix, "mix", "move=90,update=5,create=3,edge=1,unedge=1", "mutation mix, weights of move,update,create,delete,edge,unedge")
	fs.Float64Var(&c.Rate, "rate", 0, "offered load in mutations/s over all clients (open loop); 0 = closed loop")
	fs.StringVar(&c.Dist, "dist", "uniform", "canvas choice: uniform or zipf")
	fs.Float64Var(&c.ZipfS, "zipf-s", 1.1, "Zipf exponent s (> 1)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "warm-up before the measured window (load runs, nothing is recorded)")
	fs.DurationVar(&c.Drain, "drain", 2*time.Second, "after the load stops, how long to wait for the observers to see the last pushes")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "timeout of each push/pull request")
	fs.Uint64Var(&c.Seed, "seed", 1, "random seed (canvas choice, mix, coordinates)")
	fs.IntVar(&c.CeilingConns, "ceiling-conns", 16, "database connections of the raw SQL ceiling (canvasd's --db-max-conns default is 16)")
	fs.BoolVar(&c.NoObserver, "no-observer", false, "no SSE observers (no poke/visible/pull latency)")
	fs.StringVar(&sweep, "sweep", "", "vary one parameter: canvases=1,4,16 | clients=... | batch=... | rate=...")
	fs.IntVar(&c.Repeat, "repeat", 1, "run every configuration this many times, interleaved (round r runs every mode once); the table and --csv report the median, interquartile range and min-max")
	fs.StringVar(&c.CSV, "csv", "", "write results as CSV to this file (with --repeat > 1: one summary row per mode and sweep value)")
	fs.StringVar(&c.RawCSV, "raw-csv", "", "with --repeat > 1: write one row per run to this file (default: the --csv name with .runs.csv)")
	fs.StringVar(&c.SVG, "svg", "", "write an SVG chart (throughput and push p99 vs the sweep value) to this file")
	fs.BoolVar(&c.Quiet, "quiet", false, "no progress line")
	if c.Scenario == "" {
		c.Scenario = "load"
	}
	fs.StringVar(&c.Scenario, "scenario", c.Scenario, "load (the push workload), pull, fanout or touch (see Scenarios)")
	c.Scen.addFlags(fs)

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(fs, stderr)
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c.Flags = map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { c.Flags[f.Name] = redactURL(f.Value.String()) })
	for i, a := range c.Args {
		c.Args[i] = redactURL(a)
	}
	c.applyScenarioDefaults(set)
	var err error
	if c.Mix, err = ParseMix(mix); err != nil {
		return c, err
	}
	if c.Sweep, err = ParseSweep(sweep); err != nil {
		return c, err
	}
	for _, m := range strings.Split(modes, ",") {
		if m = strings.TrimSpace(m); m != "" {
			c.Modes = append(c.Modes, m)
		}
	}
	if c.Server == "" {
		c.Server = "start"
		if c.URL != "" {
			c.Server = "external"
		}
	}
	return c, c.Validate()
}

// Validate checks the config as a whole.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch c.Server {
	case "start":
		if err := checkLoopbackDB(c.AdminDBURL, c.AllowRemote); err != nil {
			errs = append(errs, err)
		}
	case "external":
		if c.URL == "" {
			bad("--server=external needs --url")
		} else if err := checkLoopbackURL(c.URL, c.AllowRemote); err != nil {
			errs = append(errs, err)
		}
		if c.Compare {
			bad("compare needs --server=start (it restarts the server in each mode on a fresh database)")
		}
	default:
		bad("--server must be start or external")
	}
	if c.Scenario != "load" {
		return errors.Join(append(errs, c.validateScenario())...)
	}
	modes := c.Modes
	if !c.Compare {
		modes = []string{c.Mode}
	}
	if len(modes) == 0 {
		bad("no modes")
	}
	for _, m := range modes {
		md, ok := modeByName(m)
		if !ok {
			bad("unknown mode %q", m)
			continue
		}
		if md.Ceiling != "" {
			if err := checkLoopbackDB(c.AdminDBURL, c.AllowRemote); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if c.Repeat < 1 || c.Repeat > 1000 {
		bad("--repeat must be in 1..1000")
	}
	if c.Canvases < 1 || c.Canvases > 100_000 {
		bad("--canvases must be in 1..100000")
	}
	if c.Clients < 1 || c.Clients > 10_000 {
		bad("--clients must be in 1..10000")
	}
	if c.Canvases*c.Clients > 100_000 {
		bad("canvases x clients must be at most 100000")
	}
	if c.Batch < 1 || c.Batch > 1000 {
		bad("--batch must be in 1..1000")
	}
	if c.Nodes < 2 || c.Nodes > 10_000 {
		bad("--nodes must be in 2..10000")
	}
	if c.Rate < 0 {
		bad("--rate must be >= 0")
	}
	switch c.Dist {
	case "uniform":
	case "zipf":
		if !(c.ZipfS > 1) {
			bad("--zipf-s must be > 1")
		}
	default:
		bad("--dist must be uniform or zipf")
	}
	if c.Duration <= 0 || c.Duration > time.Hour {
		bad("--duration must be in (0, 1h]")
	}
	if c.Warmup < 0 || c.Drain < 0 {
		bad("--warmup and --drain must be >= 0")
	}
	if c.CeilingConns < 1 || c.CeilingConns > 500 {
		bad("--ceiling-conns must be in 1..500")
	}
	if c.Timeout <= 0 {
		bad("--timeout must be > 0")
	}
	if c.Mix.total() == 0 {
		bad("--mix has no positive weight")
	}
	if c.Sweep.Param != "" && len(c.Sweep.Values) == 0 {
		bad("--sweep has no values")
	}
	for _, v := range c.Sweep.Values {
		if err := c.Sweep.Apply(c, v).validateSize(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c Config) validateSize() error {
	if c.Canvases < 1 || c.Clients < 1 || c.Batch < 1 || c.Canvases*c.Clients > 100_000 || c.Batch > 1000 {
		return fmt.Errorf("sweep value out of range: canvases=%d clients=%d batch=%d", c.Canvases, c.Clients, c.Batch)
	}
	return nil
}

// redactURL hides the password of a URL (any other string is returned as
// is), so the provenance of a result file carries no secret.
func redactURL(s string) string {
	k, v, isFlag := strings.Cut(s, "=")
	if !isFlag || !strings.HasPrefix(k, "-") {
		k, v = "", s
	}
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	if k != "" {
		return k + "=" + u.Redacted()
	}
	return u.Redacted()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func checkLoopbackURL(raw string, allowRemote bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want http://host:port", raw)
	}
	if !allowRemote && !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("--url %q is not a loopback address (use --allow-remote to permit it)", raw)
	}
	return nil
}

func checkLoopbackDB(raw string, allowRemote bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return fmt.Errorf("--admin-database-url %q: want postgres://user@host:port/db", raw)
	}
	host := u.Hostname()
	if h := u.Query().Get("host"); h != "" {
		host = h
	}
	if allowRemote || host == "" || strings.HasPrefix(host, "/") || isLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("--admin-database-url host %q is not loopback (use --allow-remote to permit it)", host)
}

// Mutation kinds of the mix.
const (
	opMove = iota
	opUpdate
	opCreate
	opDelete
	opEdge
	opUnedge
	numOps
)

var opNames = [numOps]string{"move", "update", "create", "delete", "edge", "unedge"}

// Mix holds the relative weights of the mutation kinds.
type Mix [numOps]int

// ParseMix reads "move=90,update=5,...". Kinds not named get weight 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return m, fmt.Errorf("mix %q: want kind=weight", part)
		}
		i := slices.Index(opNames[:], strings.TrimSpace(k))
		if i < 0 {
			return m, fmt.Errorf("mix: unknown kind %q (want %s)", k, strings.Join(opNames[:], ", "))
		}
		w, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || w < 0 || w > 1_000_000 {
			return m, fmt.Errorf("mix: bad weight %q for %s", v, k)
		}
		m[i] = w
	}
	if m.total() == 0 {
		return m, fmt.Errorf("mix %q: no positive weight", s)
	}
	return m, nil
}

func (m Mix) total() int {
	t := 0
	for _, w := range m {
		t += w
	}
	return t
}

// pick maps r in [0, total) to a kind.
func (m Mix) pick(r int) int {
	for i, w := range m {
		if r < w {
			return i
		}
		r -= w
	}
	return opMove
}

func (m Mix) String() string {
	var parts []string
	for i, w := range m {
		if w > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", opNames[i], w))
		}
	}
	return strings.Join(parts, ",")
}

// Mode is one server configuration under test.
type Mode struct {
	Name    string
	Args    []string // canvasd flags
	Ceiling string   // "" = a canvasd run; "canvas" / "global" = the raw SQL ceiling variant
}

var modes = []Mode{
	{Name: "canvas", Args: []string{"--versioning=canvas", "--batching=true", "--notify=coalesced"}},
	{Name: "canvas-nobatch", Args: []string{"--versioning=canvas", "--batching=false", "--notify=coalesced"}},
	{Name: "global", Args: []string{"--versioning=global", "--batching=false", "--notify=in-tx"}},
	{Name: "global-coalesced", Args: []string{"--versioning=global", "--batching=false", "--notify=coalesced"}},
	{Name: "ceiling", Ceiling: "canvas"},
	{Name: "ceiling-global", Ceiling: "global"},
}

func modeByName(name string) (Mode, bool) {
	for _, m := range modes {
		if m.Name == name {
			return m, true
		}
	}
	return Mode{}, false
}
