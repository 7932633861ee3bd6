package main

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSummarize(t *testing.T) {
	// Odd count, unsorted input: the middle value; type-7 quartiles of
	// 1..5 fall on order statistics.
	require.Equal(t, Summary{N: 5, Median: 3, Min: 1, Max: 5, Q1: 2, Q3: 4}, summarize([]float64{5, 1, 4, 2, 3}))
	// Even count: the mean of the two middle values; h = 3*0.25 = 0.75, so
	// Q1 = 1 + 0.75*(2-1) and Q3 = 3 + 0.25*(4-3).
	require.Equal(t, Summary{N: 4, Median: 2.5, Min: 1, Max: 4, Q1: 1.75, Q3: 3.25}, summarize([]float64{4, 3, 2, 1}))
	// Uneven gaps: 10, 20, 40, 80, 160, 320 -> h(Q1) = 1.25, h(Q3) = 3.75.
	require.Equal(t, Summary{N: 6, Median: 60, Min: 10, Max: 320, Q1: 25, Q3: 140}, summarize([]float64{320, 10, 160, 20, 80, 40}))
	require.Equal(t, Summary{N: 1, Median: 7, Min: 7, Max: 7, Q1: 7, Q3: 7}, summarize([]float64{7}))
	require.Equal(t, Summary{}, summarize(nil))
	in := []float64{3, 1, 2}
	summarize(in)
	require.Equal(t, []float64{3, 1, 2}, in, "summarize must not reorder its input")
}

func TestScheduleInterleaves(t *testing.T) {
	var got []string
	for _, r := range schedule(2, []string{"A", "B", "C"}, 3) {
		got = append(got, strings.Join([]string{string(rune('0' + r.Round)), string(rune('a' + r.Point)), r.Mode}, ""))
	}
	require.Equal(t, []string{
		"1aA", "1aB", "1aC", "1bA", "1bB", "1bC",
		"2aA", "2aB", "2aC", "2bA", "2bB", "2bC",
		"3aA", "3aB", "3aC", "3bA", "3bB", "3bC",
	}, got)
	// One round is the order of a run without --repeat.
	require.Equal(t, []runSpec{{1, 0, "ceiling"}, {1, 0, "canvas"}}, schedule(1, []string{"ceiling", "canvas"}, 1))
}

// repeatedResults builds three interleaved rounds of canvas, global and
// ceiling with chosen throughputs; global fails in round 2.
func repeatedResults() []*Result {
	mut := map[string][]int64{"canvas": {300, 500, 400}, "global": {100, 0, 200}, "ceiling": {600, 1000, 500}}
	var rs []*Result
	for round := 1; round <= 3; round++ {
		for _, mode := range []string{"canvas", "global", "ceiling"} {
			r := newResult(Config{Canvases: 16, Clients: 4, Batch: 1, Dist: "uniform", Duration: time.Second}, mode)
			r.Round = round
			if mode == "global" && round == 2 {
				r.Err = "canvasd exited"
			} else {
				r.Mutations, r.Pushes = mut[mode][round-1], mut[mode][round-1]
				r.Push.Record(time.Duration(round) * time.Millisecond)
			}
			rs = append(rs, r)
		}
	}
	return rs
}

func TestRatioPerRound(t *testing.T) {
	rs := repeatedResults()
	// canvas/global per round: 300/100 = 3, round 2 has no global run, 400/200 = 2.
	require.Equal(t, Summary{N: 2, Median: 2.5, Min: 2, Max: 3, Q1: 2.25, Q3: 2.75}, ratioSummary(rs, "canvas", "global", 0))
	// canvas/ceiling per round: 0.5, 0.5, 0.8 -- not median(canvas)/median(ceiling) = 400/600.
	require.Equal(t, Summary{N: 3, Median: 0.5, Min: 0.5, Max: 0.8, Q1: 0.5, Q3: 0.65}, ratioSummary(rs, "canvas", "ceiling", 0))
}

func TestRepeatCSVAndTable(t *testing.T) {
	rs := repeatedResults()
	var buf bytes.Buffer
	require.NoError(t, writeSummaryCSV(&buf, rs))
	rows, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 4) // header + canvas, global, ceiling
	col := func(row []string, name string) string {
		for i, h := range rows[0] {
			if h == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	canvas, global := rows[1], rows[2]
	require.Equal(t, "canvas", canvas[0])
	require.Equal(t, []string{"400", "300", "350", "450", "500"}, []string{col(canvas, "mut_per_s_median"), col(canvas, "mut_per_s_min"),
		col(canvas, "mut_per_s_q1"), col(canvas, "mut_per_s_q3"), col(canvas, "mut_per_s_max")})
	require.Equal(t, "2", col(canvas, "push_p50_ms_median"))
	require.Equal(t, "2.5", col(canvas, "mut_per_s_over_global_median"))
	require.Equal(t, "2", col(canvas, "mut_per_s_over_global_rounds"))
	require.Equal(t, "0.65", col(canvas, "mut_per_s_over_ceiling_q3"))
	require.Equal(t, "1", col(global, "failed_runs"))
	require.Equal(t, "150", col(global, "mut_per_s_median"))
	require.Equal(t, "", col(global, "mut_per_s_over_global_median"))

	buf.Reset()
	require.NoError(t, writeRunsCSV(&buf, rs))
	rows, err = csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 10)
	require.Equal(t, []string{"round", "mode"}, rows[0][:2])
	require.Equal(t, []string{"2", "global"}, rows[5][:2])

	buf.Reset()
	writeRepeatTable(&buf, Config{Duration: time.Second, Repeat: 3}, rs)
	out := buf.String()
	require.Contains(t, out, "3 (1 failed)")
	require.Contains(t, out, "canvas/global: median 2.500  IQR 2.250-2.750  min-max 2.000-3.000  (2 rounds)")
	require.Contains(t, out, "350-450") // canvas mut/s IQR
}

func TestRepeatFlag(t *testing.T) {
	cfg, err := ParseConfig([]string{"compare", "--repeat", "5", "--csv", "out.csv"}, nil)
	require.NoError(t, err)
	require.Equal(t, 5, cfg.Repeat)
	require.Equal(t, "5", cfg.Flags["repeat"])
	require.Equal(t, "out.runs.csv", rawCSVPath(cfg.CSV))
	_, err = ParseConfig([]string{"compare", "--repeat", "0"}, nil)
	require.Error(t, err)
}

func TestProvenanceHidesPasswords(t *testing.T) {
	cfg, err := ParseConfig([]string{"compare", "--admin-database-url=postgres://u:secret@127.0.0.1/db", "--repeat", "2"}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"compare", "--admin-database-url=postgres://u:xxxxx@127.0.0.1/db", "--repeat", "2"}, cfg.Args)
	require.Equal(t, "postgres://u:xxxxx@127.0.0.1/db", cfg.Flags["admin-database-url"])
	require.Equal(t, "secret", strings.Split(strings.Split(cfg.AdminDBURL, ":")[2], "@")[0], "the config itself keeps the password")
}
