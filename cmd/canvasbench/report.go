package main

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }

func mb(b int64) string {
	if b <= 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64)
}

func xLabel(r *Result) string {
	if r.Param == "" {
		return ""
	}
	return strconv.FormatFloat(r.X, 'g', -1, 64)
}

// summaryLine is the one-line result printed as each run finishes.
func summaryLine(r *Result) string {
	pt := ""
	if r.Param != "" {
		pt = " " + r.Param + "=" + xLabel(r)
	}
	if r.Err != "" && r.Push.Count() == 0 {
		return fmt.Sprintf("%-16s%s  FAILED: %s", r.Mode, pt, firstLine(r.Err))
	}
	s := fmt.Sprintf("%-16s%s  %8.0f mut/s  push p50 %s p99 %s ms", r.Mode, pt, r.MutPerSec(), ms(r.Push.Quantile(.5)), ms(r.Push.Quantile(.99)))
	if r.Poke.Count() > 0 {
		s += fmt.Sprintf("  poke p99 %s ms", ms(r.Poke.Quantile(.99)))
	}
	if n := sumErrors(r.Errors); n > 0 {
		s += fmt.Sprintf("  errors %d", n)
	}
	if r.Err != "" {
		s += "  NOTE: " + firstLine(r.Err)
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func sumErrors(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

const legend = `push: request sent -> 200 (open loop: from the intended send time). visible: push ack -> the observer's pull showing it.
poke: push ack -> the SSE poke that led to that pull (0 if it beat the ack). pull: observer pull round trip.
stale: observers behind their canvas's final version at the end of the drain (a missed poke); unseen: measured pushes those never saw. ceiling rows: one SQL transaction per mutation, latency = transaction time.
RSS: server VmRSS at the end of the window / peak VmHWM (MB).`

// writeTable prints the results as an aligned table plus the legend.
func writeTable(w io.Writer, cfg Config, results []*Result) {
	loop := "closed loop"
	if cfg.Rate > 0 || cfg.Sweep.Param == "rate" {
		loop = "open loop"
	}
	fmt.Fprintf(w, "\ncanvases=%d clients/canvas=%d batch=%d dist=%s mix=%s %s duration=%s warmup=%s\n\n",
		cfg.Canvases, cfg.Clients, cfg.Batch, distLabel(cfg), cfg.Mix, loop, cfg.Duration, cfg.Warmup)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"mode"}
	if cfg.Sweep.Param != "" {
		head = append(head, cfg.Sweep.Param)
	}
	head = append(head, "mut/s", "push/s", "push p50", "p95", "p99", "max", "poke p50", "p99", "visible p50", "p99", "pull p50", "p99", "stale", "unseen", "errors", "RSS MB", "peak", "")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, r := range results {
		row := []string{r.Mode}
		if cfg.Sweep.Param != "" {
			row = append(row, xLabel(r))
		}
		if r.Err != "" && r.Push.Count() == 0 {
			row = append(row, "FAILED: "+firstLine(r.Err))
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
			continue
		}
		obs := func(h *Hist, q float64) string {
			if h.Count() == 0 {
				return "-"
			}
			return ms(h.Quantile(q))
		}
		errs := formatErrors(r.Errors)
		if errs == "" {
			errs = "0"
		}
		if r.NotSent > 0 {
			errs += fmt.Sprintf(" (not sent %d)", r.NotSent)
		}
		row = append(row,
			strconv.FormatFloat(r.MutPerSec(), 'f', 0, 64),
			strconv.FormatFloat(float64(r.Pushes)/r.Duration.Seconds(), 'f', 0, 64),
			ms(r.Push.Quantile(.5)), ms(r.Push.Quantile(.95)), ms(r.Push.Quantile(.99)), ms(r.Push.Quantile(1)),
			obs(r.Poke, .5), obs(r.Poke, .99), obs(r.Visible, .5), obs(r.Visible, .99), obs(r.Pull, .5), obs(r.Pull, .99),
			strconv.FormatInt(r.Stale, 10), strconv.FormatInt(r.Unseen, 10), errs, mb(r.RSS), mb(r.PeakRSS), firstLine(r.Err))
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w, "\n(latencies in ms)\n"+legend)
}

func distLabel(cfg Config) string {
	if cfg.Dist == "zipf" {
		return fmt.Sprintf("zipf(s=%g)", cfg.ZipfS)
	}
	return cfg.Dist
}

var csvHeader = []string{"mode", "sweep_param", "sweep_value", "canvases", "clients_per_canvas", "batch", "rate", "dist",
	"duration_s", "mutations", "mut_per_s", "pushes",
	"push_p50_ms", "push_p95_ms", "push_p99_ms", "push_max_ms",
	"poke_p50_ms", "poke_p95_ms", "poke_p99_ms", "poke_max_ms",
	"visible_p50_ms", "visible_p99_ms", "pull_p50_ms", "pull_p99_ms",
	"poke_samples", "stale_observers", "unseen", "early", "not_sent", "errors_total", "errors", "rss_bytes", "peak_rss_bytes", "error"}

// writeCSV writes one row per result.
func writeCSV(w io.Writer, results []*Result) error { return writeRows(w, results, false) }

// writeRunsCSV writes one row per run of a repeated comparison: the round
// (1-based, in run order) and then the columns of writeCSV.
func writeRunsCSV(w io.Writer, results []*Result) error { return writeRows(w, results, true) }

func writeRows(w io.Writer, results []*Result, withRound bool) error {
	cw := csv.NewWriter(w)
	head := csvHeader
	if withRound {
		head = append([]string{"round"}, csvHeader...)
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	d := func(x time.Duration) string { return strconv.FormatFloat(float64(x)/1e6, 'f', 3, 64) }
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	for _, r := range results {
		var row []string
		if withRound {
			row = []string{i(int64(r.Round))}
		}
		if err := cw.Write(append(row, r.Mode, r.Param, f(r.X), i(int64(r.Canvases)), i(int64(r.Clients)), i(int64(r.Batch)), f(r.Rate), r.Dist,
			f(r.Duration.Seconds()), i(r.Mutations), f(r.MutPerSec()), i(r.Pushes),
			d(r.Push.Quantile(.5)), d(r.Push.Quantile(.95)), d(r.Push.Quantile(.99)), d(r.Push.Quantile(1)),
			d(r.Poke.Quantile(.5)), d(r.Poke.Quantile(.95)), d(r.Poke.Quantile(.99)), d(r.Poke.Quantile(1)),
			d(r.Visible.Quantile(.5)), d(r.Visible.Quantile(.99)), d(r.Pull.Quantile(.5)), d(r.Pull.Quantile(.99)),
			i(r.Poke.Count()), i(r.Stale), i(r.Unseen), i(r.Early), i(r.NotSent), i(sumErrors(r.Errors)), formatErrors(r.Errors),
			i(r.RSS), i(r.PeakRSS), r.Err)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// writeSVG draws two panels — committed mutations/s and push p99 — against
// the sweep value (evenly spaced categories), one line per mode.
func writeSVG(w io.Writer, cfg Config, results []*Result) error {
	var modes []string
	var xs []float64
	for _, r := range results {
		if !slices.Contains(modes, r.Mode) {
			modes = append(modes, r.Mode)
		}
		if !slices.Contains(xs, r.X) {
			xs = append(xs, r.X)
		}
	}
	slices.Sort(xs)
	xTitle := cfg.Sweep.Param
	if xTitle == "" {
		xTitle = "single run"
	}
	if xTitle == "rate" {
		xTitle = "offered load (mutations/s)"
	}

	const (
		panelW, panelH = 460.0, 300.0
		left, right    = 70.0, 20.0
		top, bottom    = 40.0, 50.0
	)
	legendH := 22.0 * float64((len(modes)+2)/3)
	width, height := 2*panelW, panelH+legendH+50

	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		_ = xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")

	panel := func(ox float64, title string, value func(*Result) (float64, bool)) {
		maxY := 0.0
		for _, r := range results {
			if v, ok := value(r); ok {
				maxY = max(maxY, v)
			}
		}
		maxY = niceCeil(maxY)
		pw, ph := panelW-left-right, panelH-top-bottom
		px := func(x float64) float64 {
			i := slices.Index(xs, x)
			if len(xs) == 1 {
				return ox + left + pw/2
			}
			return ox + left + pw*float64(i)/float64(len(xs)-1)
		}
		py := func(v float64) float64 { return top + ph - ph*v/maxY }
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="14" font-weight="bold">%s</text>`+"\n", ox+left+pw/2, top-16, esc(title))
		for k := 0; k <= 5; k++ {
			v := maxY * float64(k) / 5
			y := py(v)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", ox+left, y, ox+left+pw, y)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", ox+left-6, y+4, esc(shortNum(v)))
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", ox+left, top+ph, ox+left+pw, top+ph)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", ox+left, top, ox+left, top+ph)
		for _, x := range xs {
			label := strconv.FormatFloat(x, 'g', -1, 64)
			if cfg.Sweep.Param == "" {
				label = ""
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px(x), top+ph+16, esc(label))
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", ox+left+pw/2, top+ph+36, esc(xTitle))
		for mi, m := range modes {
			color := palette[mi%len(palette)]
			// Every run is a dot; the line joins the medians over the
			// repeated runs at each sweep value (the run itself without
			// --repeat).
			perX := map[float64][]float64{}
			for _, r := range results {
				if r.Mode != m {
					continue
				}
				v, ok := value(r)
				if !ok {
					continue
				}
				perX[r.X] = append(perX[r.X], v)
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s %s: %s</title></circle>`+"\n",
					px(r.X), py(v), color, esc(m), esc(xLabel(r)), esc(shortNum(v)))
			}
			var pts []string
			for _, x := range xs {
				if vs := perX[x]; len(vs) > 0 {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x), py(summarize(vs).Median)))
				}
			}
			if len(pts) > 1 {
				fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), color)
			}
		}
	}
	ok := func(r *Result) bool { return !(r.Err != "" && r.Push.Count() == 0) }
	panel(0, "committed mutations/s", func(r *Result) (float64, bool) { return r.MutPerSec(), ok(r) })
	panel(panelW, "push latency p99 (ms)", func(r *Result) (float64, bool) {
		return float64(r.Push.Quantile(.99)) / 1e6, ok(r) && r.Push.Count() > 0
	})
	for mi, m := range modes {
		x := left + float64(mi%3)*280
		y := panelH + 20 + 22*float64(mi/3)
		color := palette[mi%len(palette)]
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="18" height="4" fill="%s"/>`+"\n", x, y-4, color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", x+24, y, esc(m))
	}
	loop := "closed loop"
	if cfg.Rate > 0 || cfg.Sweep.Param == "rate" {
		loop = "open loop"
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#555">%s</text>`+"\n", left, height-12, esc(fmt.Sprintf(
		"canvases=%d clients/canvas=%d batch=%d dist=%s %s, %s measured (%s warm-up); ceiling = raw SQL, one transaction per mutation",
		cfg.Canvases, cfg.Clients, cfg.Batch, distLabel(cfg), loop, cfg.Duration, cfg.Warmup)))
	fmt.Fprintln(&b, `</svg>`)
	_, err := w.Write(b.Bytes())
	return err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v <= 0).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func shortNum(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	case v >= 100:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
