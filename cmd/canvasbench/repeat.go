package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// runSpec is one run of the schedule: the mode at one sweep point in one
// round.
type runSpec struct {
	Round int // 1-based
	Point int // index into the sweep values
	Mode  string
}

// schedule lists the runs of --repeat rounds. Every round runs every (sweep
// point, mode) pair once, in the order of one round without repetition, so
// the modes alternate (A B C A B C ..., never A A A B B B): slow drift of
// the machine and background load fall on every mode alike.
func schedule(points int, modes []string, repeat int) []runSpec {
	var out []runSpec
	for r := 1; r <= repeat; r++ {
		for p := 0; p < points; p++ {
			for _, m := range modes {
				out = append(out, runSpec{Round: r, Point: p, Mode: m})
			}
		}
	}
	return out
}

// Summary describes a sample of one figure over repeated runs. Q1 and Q3 are
// the 25th and 75th percentiles by linear interpolation between order
// statistics (Hyndman & Fan type 7, the default of R and NumPy): the p-th
// quantile of the sorted x[0..n-1] is x[h] + (h-floor(h))*(x[floor(h)+1]-x[h])
// with h = (n-1)p. The median is the same rule at p = 0.5, i.e. the middle
// value of an odd count and the mean of the two middle values of an even one.
type Summary struct {
	N                        int
	Median, Min, Max, Q1, Q3 float64
}

func summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return Summary{N: len(s), Median: quantile7(s, .5), Min: s[0], Max: s[len(s)-1], Q1: quantile7(s, .25), Q3: quantile7(s, .75)}
}

// quantile7 is the type-7 p-quantile of sorted, non-empty s.
func quantile7(s []float64, p float64) float64 {
	h := float64(len(s)-1) * p
	lo := int(math.Floor(h))
	if lo+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// figure is one reported number of a run; ok is false when the run has no
// value for it (a failed run, or no observer samples).
type figure struct {
	name   string // CSV column stem
	head   string // table column
	digits int    // decimals in the table
	value  func(r *Result) (float64, bool)
}

func runOK(r *Result) bool { return !(r.Err != "" && r.Push.Count() == 0) }

func histFig(name, head string, h func(*Result) *Hist, q float64) figure {
	return figure{name, head, 2, func(r *Result) (float64, bool) {
		hh := h(r)
		if !runOK(r) || hh.Count() == 0 {
			return 0, false
		}
		return float64(hh.Quantile(q)) / 1e6, true
	}}
}

func countFig(name, head string, digits int, v func(*Result) float64) figure {
	return figure{name, head, digits, func(r *Result) (float64, bool) { return v(r), runOK(r) }}
}

func memFig(name, head string, v func(*Result) int64) figure {
	return figure{name, head, 1, func(r *Result) (float64, bool) {
		b := v(r)
		return float64(b) / (1 << 20), runOK(r) && b > 0
	}}
}

var (
	hPush    = func(r *Result) *Hist { return r.Push }
	hPoke    = func(r *Result) *Hist { return r.Poke }
	hVisible = func(r *Result) *Hist { return r.Visible }
	hPull    = func(r *Result) *Hist { return r.Pull }
)

// figures are the numbers summarized over repeated runs, in table order.
var figures = []figure{
	countFig("mut_per_s", "mut/s", 0, (*Result).MutPerSec),
	countFig("push_per_s", "push/s", 0, func(r *Result) float64 { return float64(r.Pushes) / r.Duration.Seconds() }),
	histFig("push_p50_ms", "push p50", hPush, .5),
	histFig("push_p95_ms", "p95", hPush, .95),
	histFig("push_p99_ms", "p99", hPush, .99),
	histFig("push_max_ms", "max", hPush, 1),
	histFig("poke_p50_ms", "poke p50", hPoke, .5),
	histFig("poke_p99_ms", "p99", hPoke, .99),
	histFig("visible_p50_ms", "visible p50", hVisible, .5),
	histFig("visible_p99_ms", "p99", hVisible, .99),
	histFig("pull_p50_ms", "pull p50", hPull, .5),
	histFig("pull_p99_ms", "p99", hPull, .99),
	countFig("stale_observers", "stale", 0, func(r *Result) float64 { return float64(r.Stale) }),
	countFig("unseen", "unseen", 0, func(r *Result) float64 { return float64(r.Unseen) }),
	countFig("errors_total", "errors", 0, func(r *Result) float64 { return float64(sumErrors(r.Errors)) }),
	countFig("not_sent", "not sent", 0, func(r *Result) float64 { return float64(r.NotSent) }),
	memFig("rss_mb", "RSS MB", func(r *Result) int64 { return r.RSS }),
	memFig("peak_rss_mb", "peak", func(r *Result) int64 { return r.PeakRSS }),
}

// group is every run of one mode at one sweep point.
type group struct {
	Mode string
	X    float64
	Runs []*Result
}

// groupRuns collects the runs by (mode, sweep value) in the order of their
// first appearance (the order of one round).
func groupRuns(results []*Result) []*group {
	var gs []*group
	for _, r := range results {
		i := slices.IndexFunc(gs, func(g *group) bool { return g.Mode == r.Mode && g.X == r.X })
		if i < 0 {
			gs = append(gs, &group{Mode: r.Mode, X: r.X})
			i = len(gs) - 1
		}
		gs[i].Runs = append(gs[i].Runs, r)
	}
	return gs
}

func (g *group) summary(f figure) Summary {
	var xs []float64
	for _, r := range g.Runs {
		if v, ok := f.value(r); ok {
			xs = append(xs, v)
		}
	}
	return summarize(xs)
}

func (g *group) failed() int {
	n := 0
	for _, r := range g.Runs {
		if !runOK(r) {
			n++
		}
	}
	return n
}

// ratioDens are the denominators of the ratio columns: every mode's mut/s
// over the baseline's and over the raw SQL ceiling's in the same round.
var ratioDens = []string{"global", "ceiling"}

// ratioSummary summarizes num's committed mutations/s over den's at sweep
// value x, taken per round: only rounds in which both runs succeeded count.
func ratioSummary(results []*Result, num, den string, x float64) Summary {
	find := func(mode string, round int) *Result {
		for _, r := range results {
			if r.Mode == mode && r.X == x && r.Round == round && runOK(r) {
				return r
			}
		}
		return nil
	}
	var xs []float64
	var rounds []int
	for _, r := range results {
		if !slices.Contains(rounds, r.Round) {
			rounds = append(rounds, r.Round)
		}
	}
	for _, round := range rounds {
		a, b := find(num, round), find(den, round)
		if a == nil || b == nil || b.MutPerSec() <= 0 {
			continue
		}
		xs = append(xs, a.MutPerSec()/b.MutPerSec())
	}
	return summarize(xs)
}

func fmtF(v float64, digits int) string { return strconv.FormatFloat(v, 'f', digits, 64) }

// writeRepeatTable prints, for every mode and sweep point, three rows per
// figure set: the median, the interquartile range and the min-max range over
// the repeated runs; then the per-round throughput ratios.
func writeRepeatTable(w io.Writer, cfg Config, results []*Result) {
	loop := "closed loop"
	if cfg.Rate > 0 || cfg.Sweep.Param == "rate" {
		loop = "open loop"
	}
	fmt.Fprintf(w, "\ncanvases=%d clients/canvas=%d batch=%d dist=%s mix=%s %s duration=%s warmup=%s repeat=%d (interleaved)\n\n",
		cfg.Canvases, cfg.Clients, cfg.Batch, distLabel(cfg), cfg.Mix, loop, cfg.Duration, cfg.Warmup, cfg.Repeat)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"mode"}
	if cfg.Sweep.Param != "" {
		head = append(head, cfg.Sweep.Param)
	}
	head = append(head, "runs", "")
	for _, f := range figures {
		head = append(head, f.head)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	gs := groupRuns(results)
	for _, g := range gs {
		sums := make([]Summary, len(figures))
		for i, f := range figures {
			sums[i] = g.summary(f)
		}
		for k, stat := range []string{"median", "IQR", "min-max"} {
			row := []string{"", ""}
			if k == 0 {
				runs := strconv.Itoa(len(g.Runs))
				if n := g.failed(); n > 0 {
					runs += fmt.Sprintf(" (%d failed)", n)
				}
				row = []string{g.Mode, runs}
			}
			if cfg.Sweep.Param != "" {
				x := ""
				if k == 0 {
					x = strconv.FormatFloat(g.X, 'g', -1, 64)
				}
				row = append(row[:1], append([]string{x}, row[1:]...)...)
			}
			row = append(row, stat)
			for i, f := range figures {
				s := sums[i]
				switch {
				case s.N == 0:
					row = append(row, "-")
				case k == 0:
					row = append(row, fmtF(s.Median, f.digits))
				case k == 1:
					row = append(row, fmtF(s.Q1, f.digits)+"-"+fmtF(s.Q3, f.digits))
				default:
					row = append(row, fmtF(s.Min, f.digits)+"-"+fmtF(s.Max, f.digits))
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
	}
	tw.Flush()

	var lines []string
	for _, g := range gs {
		if m, _ := modeByName(g.Mode); m.Ceiling != "" {
			continue // the ceiling over the baseline says nothing about canvasd
		}
		for _, den := range ratioDens {
			if g.Mode == den {
				continue
			}
			s := ratioSummary(results, g.Mode, den, g.X)
			if s.N == 0 {
				continue
			}
			pt := ""
			if cfg.Sweep.Param != "" {
				pt = fmt.Sprintf(" %s=%g", cfg.Sweep.Param, g.X)
			}
			lines = append(lines, fmt.Sprintf("  %s/%s%s: median %.3f  IQR %.3f-%.3f  min-max %.3f-%.3f  (%d rounds)",
				g.Mode, den, pt, s.Median, s.Q1, s.Q3, s.Min, s.Max, s.N))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w, "\nthroughput ratios (mut/s, per round: each run over the same round's run of the other mode):")
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
	fmt.Fprintln(w, "\n(latencies in ms; RSS in MB; median over the runs, IQR = 25th-75th percentile by linear interpolation (type 7), min-max over the runs; failed runs are left out)\n"+legend)
}

// writeSummaryCSV writes one row per (mode, sweep value) with, for every
// figure and every throughput ratio, the median, min, q1, q3 and max over
// the repeated runs (empty when no run has the figure).
func writeSummaryCSV(w io.Writer, results []*Result) error {
	cw := csv.NewWriter(w)
	stats := []string{"median", "min", "q1", "q3", "max"}
	head := []string{"mode", "sweep_param", "sweep_value", "canvases", "clients_per_canvas", "batch", "rate", "dist", "duration_s", "runs", "failed_runs"}
	for _, f := range figures {
		for _, s := range stats {
			head = append(head, f.name+"_"+s)
		}
	}
	for _, den := range ratioDens {
		head = append(head, "mut_per_s_over_"+den+"_rounds")
		for _, s := range stats {
			head = append(head, "mut_per_s_over_"+den+"_"+s)
		}
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	cells := func(s Summary) []string {
		if s.N == 0 {
			return []string{"", "", "", "", ""}
		}
		return []string{f(s.Median), f(s.Min), f(s.Q1), f(s.Q3), f(s.Max)}
	}
	for _, g := range groupRuns(results) {
		r := g.Runs[0]
		row := []string{g.Mode, r.Param, f(g.X), strconv.Itoa(r.Canvases), strconv.Itoa(r.Clients), strconv.Itoa(r.Batch), f(r.Rate), r.Dist,
			f(r.Duration.Seconds()), strconv.Itoa(len(g.Runs)), strconv.Itoa(g.failed())}
		for _, fig := range figures {
			row = append(row, cells(g.summary(fig))...)
		}
		for _, den := range ratioDens {
			s := Summary{}
			if g.Mode != den {
				s = ratioSummary(results, g.Mode, den, g.X)
			}
			row = append(row, strconv.Itoa(s.N))
			row = append(row, cells(s)...)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// rawCSVPath is where the per-run rows go when --raw-csv is not given:
// out.csv -> out.runs.csv.
func rawCSVPath(csvPath string) string {
	return strings.TrimSuffix(csvPath, ".csv") + ".runs.csv"
}
